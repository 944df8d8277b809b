//! `cargo xtask validate`: the list of validation steps and its `--skip` option.

use std::ffi::OsString;

use crate::Error;
use crate::cargo::CargoCommand;
use crate::steps::{self, Status, Step};

/// The validation steps, in the order they run.
pub fn steps() -> Vec<Step> {
    vec![
        cargo_step("fmt", &["fmt", "--all", "--", "--check"]),
        cargo_step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        cargo_step(
            "clippy-no-default",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--no-default-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        Step::new("promtool", crate::promtool::about(), crate::promtool::run),
        // Plain `cargo test` so CI can read its `test result:` lines. The node's EVM
        // tests need anvil: installed first (from npm, into .tools/) if missing. The etcd
        // tests need etcd: installed first (Debian's etcd-server) if missing. The node's
        // `etcd` feature is off by default (a plain build needs no protoc): on here, so its
        // high-availability tests run.
        Step::new(
            "test",
            "cargo test --workspace --features node/etcd (ANVIL_BIN and ETCD_BIN set to anvil and etcd, installed if missing)",
            || {
                let anvil = crate::anvil::ensure()?;
                let etcd = crate::etcd::ensure_etcd()?;
                CargoCommand::new("test", &["test", "--workspace", "--features", "node/etcd"])
                    .env("ANVIL_BIN", anvil)
                    .env("ETCD_BIN", etcd)
                    .run()
            },
        ),
        Step::new(
            "failover",
            crate::failover::about(),
            crate::failover::run_both,
        ),
        Step::new("chaos", crate::chaos::about(), crate::chaos::run),
        Step::new("ha", crate::ha::about(), crate::ha::run),
        Step::new("loom", "same as `cargo xtask loom`", || {
            crate::loom::command(&[]).run()
        }),
        Step::new("fuzz", crate::fuzz::about(), crate::fuzz::run),
    ]
}

fn cargo_step(name: &'static str, args: &[&str]) -> Step {
    let command = CargoCommand::new(name, args);
    Step::new(name, command.display(), move || command.run())
}

pub fn main(args: &[OsString]) -> Result<(), Error> {
    let steps = steps();
    let Some(skip) = parse_args(args, &steps)? else {
        crate::print_help();
        return Ok(());
    };
    // Every step that builds the workspace (clippy first) compiles the etcd client, whose
    // build script runs protoc: without it they would all fail, each with the same error.
    let protoc = crate::etcd::ensure_protoc().map_err(|e| {
        Error::Failed(format!(
            "validate: protoc is needed to build the etcd client and could not be found or installed: {e}"
        ))
    })?;
    eprintln!("==> [validate] protoc: {}", protoc.to_string_lossy());
    let reports = steps::run_all(&steps, &skip);
    steps::print_summary(&reports);
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "validate: {} of {} steps failed: {}",
            failed.len(),
            reports.len(),
            failed.join(", ")
        )))
    }
}

/// Parses `[--skip STEP | --skip=STEP]... [-h | --help]`.
///
/// Returns the step names to skip, or `None` when help was asked for.
fn parse_args(args: &[OsString], steps: &[Step]) -> Result<Option<Vec<&'static str>>, Error> {
    let mut skip = Vec::new();
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        let name = match arg.as_ref() {
            "-h" | "--help" => return Ok(None),
            "--skip" => args
                .next()
                .ok_or_else(|| Error::Usage("`--skip` needs a step name".to_owned()))?,
            other => match other.strip_prefix("--skip=") {
                Some(name) => name.to_owned().into(),
                None => {
                    return Err(Error::Usage(format!(
                        "unexpected argument `{other}` for `validate`"
                    )));
                }
            },
        };
        let Some(step) = steps.iter().find(|s| s.name == name) else {
            let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
            return Err(Error::Usage(format!(
                "unknown step `{name}` (steps: {})",
                names.join(", ")
            )));
        };
        skip.push(step.name);
    }
    Ok(Some(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Vec<&'static str>>, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args, &steps())
    }

    #[test]
    fn skip_accepts_both_spellings_and_rejects_unknown_steps() {
        assert_eq!(
            parse(&["--skip", "loom", "--skip=clippy"]),
            Ok(Some(vec!["loom", "clippy"]))
        );
        assert_eq!(parse(&[]), Ok(Some(vec![])));
        assert_eq!(parse(&["--help"]), Ok(None));
        assert!(matches!(parse(&["--skip", "nope"]), Err(Error::Usage(_))));
        assert!(matches!(parse(&["--skip"]), Err(Error::Usage(_))));
        assert!(matches!(parse(&["--fast"]), Err(Error::Usage(_))));
    }

    #[test]
    fn steps_run_in_the_documented_order() {
        let names: Vec<&str> = steps().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "fmt",
                "clippy",
                "clippy-no-default",
                "promtool",
                "test",
                "failover",
                "chaos",
                "ha",
                "loom",
                "fuzz"
            ]
        );
    }
}
