//! `cargo xtask fuzz`: the libFuzzer targets in `fuzz/` (cargo-fuzz), each run for a bounded
//! time; fails with the crash's file and the command that reproduces it.
//!
//! Built with `cargo fuzz build --release --sanitizer none` on the stable toolchain:
//! optimised, with debug assertions and overflow checks in the crates under test only (see
//! `fuzz/Cargo.toml`'s profile). No sanitizer: the workspace denies `unsafe`, and
//! AddressSanitizer needs nightly flags (`RUSTC_BOOTSTRAP=1` on stable).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::Error;
use crate::cargo::{CargoCommand, quote, workspace_root};

/// Every target, in the order they run (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [&str; 5] = [
    "config_file",
    "config_env",
    "store_records",
    "admin_api",
    "evm_rpc",
];

/// Seconds per target when `--seconds` is not given, and in `validate`: five targets and a
/// cold build (about 3 minutes on 2 cores) stay within 5 minutes.
pub const DEFAULT_SECONDS: u64 = 10;

/// The cargo-fuzz release installed when `cargo fuzz` is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// One input running longer than this is a failure (a hang), in seconds.
const INPUT_TIMEOUT_SECS: u64 = 10;

pub fn about() -> String {
    format!(
        "cargo xtask fuzz --seconds {DEFAULT_SECONDS}: every fuzz target (cargo-fuzz, \
         installed if missing)"
    )
}

/// The `validate` step.
pub fn run() -> Result<(), String> {
    fuzz(DEFAULT_SECONDS, &TARGETS)
}

pub fn main(args: &[OsString]) -> Result<(), Error> {
    let Some((seconds, targets)) = parse_args(args)? else {
        crate::print_help();
        return Ok(());
    };
    let targets = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets
    };
    fuzz(seconds, &targets).map_err(Error::Failed)
}

/// Parses `[--seconds S | --seconds=S] [TARGET...] [-h | --help]`.
///
/// Returns the seconds per target and the targets named (none: all), or `None` for help.
fn parse_args(args: &[OsString]) -> Result<Option<(u64, Vec<&'static str>)>, Error> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        let value = match arg.as_ref() {
            "-h" | "--help" => return Ok(None),
            "--seconds" => Some(
                args.next()
                    .ok_or_else(|| Error::Usage("`--seconds` needs a number".to_owned()))?,
            ),
            other => other
                .strip_prefix("--seconds=")
                .map(|s| s.to_owned().into()),
        };
        if let Some(value) = value {
            seconds = match value.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(Error::Usage(format!(
                        "`--seconds` takes a positive number of seconds, got `{value}`"
                    )));
                }
            };
            continue;
        }
        match TARGETS.iter().find(|t| **t == arg) {
            Some(target) if !targets.contains(target) => targets.push(*target),
            Some(_) => {}
            None if arg.starts_with('-') => {
                return Err(Error::Usage(format!(
                    "unexpected argument `{arg}` for `fuzz`"
                )));
            }
            None => {
                return Err(Error::Usage(format!(
                    "unknown fuzz target `{arg}` (targets: {})",
                    TARGETS.join(", ")
                )));
            }
        }
    }
    Ok(Some((seconds, targets)))
}

/// Installs cargo-fuzz if needed, builds every target, runs each of `targets` for
/// `seconds`; fails if the build fails or any target crashed.
fn fuzz(seconds: u64, targets: &[&str]) -> Result<(), String> {
    let start = Instant::now();
    ensure_cargo_fuzz()?;
    let build: Vec<&str> = ["fuzz", "build"].into_iter().chain(BUILD_FLAGS).collect();
    CargoCommand::new("fuzz", &build).run()?;
    let mut failed = Vec::new();
    for target in targets {
        if let Err(reason) = run_target(target, seconds) {
            eprintln!("==> [fuzz] {target}: FAILED: {reason}");
            failed.push(*target);
        }
    }
    eprintln!(
        "==> [fuzz] {} target(s), {seconds} s each: {:.0} s in all",
        targets.len(),
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz target(s) failed: {}", failed.join(", ")))
    }
}

/// Passed to every `cargo fuzz` command alike: a difference would rebuild everything.
const BUILD_FLAGS: [&str; 3] = ["--release", "--sanitizer", "none"];

/// Runs `cargo install cargo-fuzz` unless `cargo fuzz` already runs.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new(crate::cargo::cargo_program())
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    let start = Instant::now();
    CargoCommand::new(
        "fuzz",
        &[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ],
    )
    .run()?;
    eprintln!(
        "==> [fuzz] cargo-fuzz installed in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where each target's paths are, relative to the workspace root.
struct Paths {
    /// Grows as the fuzzer finds new inputs; git-ignored (under `fuzz/target`).
    working: PathBuf,
    /// The committed seeds: read, never written.
    seeds: PathBuf,
    /// Inputs that once crashed: run first, every time.
    regressions: PathBuf,
    /// Where libFuzzer writes a crashing input (cargo-fuzz's `-artifact_prefix`).
    artifacts: PathBuf,
    /// The run's output.
    log: PathBuf,
}

impl Paths {
    fn of(target: &str) -> Paths {
        let fuzz = Path::new("fuzz");
        Paths {
            working: fuzz.join("target").join("corpus").join(target),
            seeds: fuzz.join("corpus").join(target),
            regressions: fuzz.join("regressions").join(target),
            artifacts: fuzz.join("artifacts").join(target),
            log: fuzz
                .join("target")
                .join("logs")
                .join(format!("{target}.log")),
        }
    }
}

/// `cargo fuzz run` for `seconds`, its output in a log (libFuzzer prints a line per new
/// input); prints the final statistics, or the failure's tail and how to reproduce it.
fn run_target(target: &str, seconds: u64) -> Result<(), String> {
    let root = workspace_root();
    let paths = Paths::of(target);
    let logs = paths.log.parent().unwrap_or(Path::new("fuzz"));
    for dir in [paths.working.as_path(), logs] {
        fs::create_dir_all(root.join(dir))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut args: Vec<OsString> = ["fuzz", "run"]
        .into_iter()
        .chain(BUILD_FLAGS)
        .chain([target])
        .map(OsString::from)
        .collect();
    args.push(paths.working.clone().into());
    args.push(paths.seeds.clone().into());
    if root.join(&paths.regressions).is_dir() {
        args.push(paths.regressions.clone().into());
    }
    args.extend(
        [
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
            format!("-timeout={INPUT_TIMEOUT_SECS}"),
        ]
        .map(OsString::from),
    );
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    eprintln!(
        "==> [fuzz] cargo {} > {}",
        line.join(" "),
        paths.log.display()
    );
    let log = fs::File::create(root.join(&paths.log))
        .map_err(|e| format!("cannot create {}: {e}", paths.log.display()))?;
    let started = SystemTime::now();
    let status = Command::new(crate::cargo::cargo_program())
        .args(&args)
        .current_dir(root)
        .stdout(
            log.try_clone()
                .map_err(|e| format!("cannot write {}: {e}", paths.log.display()))?,
        )
        .stderr(log)
        .status()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
    let output = fs::read_to_string(root.join(&paths.log)).unwrap_or_default();
    if status.success() {
        eprintln!("==> [fuzz] {target}: {}", final_stats(&output));
        return Ok(());
    }
    eprintln!("--- from {} ---", paths.log.display());
    for line in failure_summary(&output) {
        eprintln!("    {line}");
    }
    match newest_file(&root.join(&paths.artifacts), started) {
        Some(artifact) => {
            let artifact = artifact.strip_prefix(root).unwrap_or(&artifact).to_owned();
            let shown = quote(artifact.as_os_str());
            eprintln!("==> [fuzz] {target}: the crashing input is {shown}");
            let flags = BUILD_FLAGS.join(" ");
            eprintln!("    reproduce: cargo fuzz run {flags} {target} {shown}");
            eprintln!("    minimize:  cargo fuzz tmin {flags} {target} {shown}");
            eprintln!(
                "    then keep the minimized input as a regression test: \
                 {}/<name>",
                paths.regressions.display()
            );
            Err(format!("crashed on {shown} ({status})"))
        }
        None => Err(format!(
            "cargo fuzz run failed ({status}); see {}",
            paths.log.display()
        )),
    }
}

/// libFuzzer's closing line (`#N DONE cov: … exec/s: …`) and run count, or a note.
fn final_stats(output: &str) -> String {
    let done = output
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("DONE "));
    let runs = output.lines().rev().find(|l| l.starts_with("Done "));
    match (done, runs) {
        (Some(done), Some(runs)) => format!("{} ({})", runs.trim(), done.trim()),
        (Some(line), None) | (None, Some(line)) => line.trim().to_owned(),
        (None, None) => "finished (no statistics in the log)".to_owned(),
    }
}

/// What failed, from a run's output: the panic's message (without its backtrace) and
/// libFuzzer's verdict; the last 40 lines when neither is there.
fn failure_summary(output: &str) -> Vec<&str> {
    let mut summary = Vec::new();
    let mut in_panic = false;
    for line in output.lines() {
        if line.contains(" panicked at ") {
            in_panic = true;
        } else if line.starts_with("stack backtrace:") || line.starts_with("note: ") {
            in_panic = false;
        }
        if in_panic || line.contains("ERROR: libFuzzer") || line.starts_with("SUMMARY: ") {
            summary.push(line);
        }
    }
    if summary.is_empty() {
        let lines: Vec<&str> = output.lines().collect();
        summary = lines[lines.len().saturating_sub(40)..].to_vec();
    }
    summary
}

/// The most recently modified file in `dir` written at or after `since`.
fn newest_file(dir: &Path, since: SystemTime) -> Option<PathBuf> {
    let since = since.checked_sub(Duration::from_secs(1)).unwrap_or(since);
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let modified = entry.metadata().ok()?.modified().ok()?;
            (modified >= since && entry.path().is_file()).then(|| (modified, entry.path()))
        })
        .max()
        .map(|(_, path)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<(u64, Vec<&'static str>)>, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn seconds_and_targets_are_parsed() {
        assert_eq!(parse(&[]), Ok(Some((DEFAULT_SECONDS, vec![]))));
        assert_eq!(
            parse(&["--seconds", "3", "evm_rpc", "config_env", "evm_rpc"]),
            Ok(Some((3, vec!["evm_rpc", "config_env"])))
        );
        assert_eq!(parse(&["--seconds=7"]), Ok(Some((7, vec![]))));
        assert_eq!(parse(&["--help"]), Ok(None));
        for bad in [
            &["--seconds"][..],
            &["--seconds", "0"],
            &["--seconds=x"],
            &["nope"],
            &["--fast"],
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    /// Every target has its source, a `[[bin]]` in fuzz/Cargo.toml and committed seeds.
    #[test]
    fn every_target_is_declared_and_seeded() {
        let fuzz = workspace_root().join("fuzz");
        let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
        let declared = manifest.matches("[[bin]]").count();
        assert_eq!(declared, TARGETS.len(), "fuzz/Cargo.toml's [[bin]]s");
        for target in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target} in fuzz/Cargo.toml"
            );
            assert!(
                fuzz.join("fuzz_targets")
                    .join(format!("{target}.rs"))
                    .is_file(),
                "fuzz/fuzz_targets/{target}.rs"
            );
            let seeds = fs::read_dir(fuzz.join("corpus").join(target))
                .map(|dir| dir.count())
                .unwrap_or(0);
            assert!(seeds > 0, "no seeds in fuzz/corpus/{target}");
        }
    }

    #[test]
    fn failure_summary_keeps_the_panic_and_the_verdict() {
        let log = "INFO: Seed: 1\n\nthread '<unnamed>' (7) panicked at src/a.rs:1:2:\n\
                   attempt to add with overflow\nstack backtrace:\n   0: a::b\n\
                   ==7== ERROR: libFuzzer: deadly signal\nSUMMARY: libFuzzer: deadly signal\n";
        assert_eq!(
            failure_summary(log),
            [
                "thread '<unnamed>' (7) panicked at src/a.rs:1:2:",
                "attempt to add with overflow",
                "==7== ERROR: libFuzzer: deadly signal",
                "SUMMARY: libFuzzer: deadly signal",
            ]
        );
        assert_eq!(failure_summary("a\nb"), ["a", "b"]);
    }

    #[test]
    fn final_stats_quotes_libfuzzer_closing_lines() {
        let log = "#1\tINITED cov: 5\n#9\tDONE   cov: 9 exec/s: 3\nDone 9 runs in 3 second(s)\n";
        assert_eq!(
            final_stats(log),
            "Done 9 runs in 3 second(s) (#9\tDONE   cov: 9 exec/s: 3)"
        );
        assert_eq!(final_stats(""), "finished (no statistics in the log)");
    }
}
