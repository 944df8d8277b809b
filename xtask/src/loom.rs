//! `cargo xtask loom`: the loom model-checking tests, built with `--cfg loom` in `loom/` under
//! the target directory (`target/loom` unless `CARGO_TARGET_DIR` is set).

use std::env;
use std::ffi::OsString;

use crate::Error;
use crate::cargo::{CargoCommand, target_dir};

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set.
const DEFAULT_MAX_PREEMPTIONS: &str = "3";

pub fn main(args: &[OsString]) -> Result<(), Error> {
    let Some(extra) = crate::trailing_args("loom", args)? else {
        crate::print_help();
        return Ok(());
    };
    command(extra).run().map_err(Error::Failed)
}

/// `cargo test -p governance --release --test loom -- --test-threads=2 EXTRA...`
/// with `--cfg loom` added to the rustflags and its own target directory, so
/// switching rustflags does not invalidate the normal build cache.
pub fn command(extra: &[OsString]) -> CargoCommand {
    let preemptions = env::var_os("LOOM_MAX_PREEMPTIONS")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_MAX_PREEMPTIONS));
    let command = CargoCommand::new(
        "loom",
        &[
            "test",
            "-p",
            "governance",
            "--release",
            "--test",
            "loom",
            "--",
            "--test-threads=2",
        ],
    )
    .args(extra);
    // Cargo ignores RUSTFLAGS when CARGO_ENCODED_RUSTFLAGS is set (even if empty).
    let command = match env::var_os("CARGO_ENCODED_RUSTFLAGS") {
        Some(encoded) => command.env(
            "CARGO_ENCODED_RUSTFLAGS",
            append_flags(encoded, "\x1f", "--cfg\x1floom"),
        ),
        None => command.env(
            "RUSTFLAGS",
            append_flags(
                env::var_os("RUSTFLAGS").unwrap_or_default(),
                " ",
                "--cfg loom",
            ),
        ),
    };
    command
        .env("LOOM_MAX_PREEMPTIONS", preemptions)
        .env("CARGO_TARGET_DIR", target_dir().join("loom"))
}

/// `existing` + `sep` + `flags`, without a separator when `existing` is blank.
fn append_flags(existing: OsString, sep: &str, flags: &str) -> OsString {
    let blank = existing.to_string_lossy().trim().is_empty();
    let mut out = if blank { OsString::new() } else { existing };
    if !out.is_empty() {
        out.push(sep);
    }
    out.push(flags);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustflags_are_appended() {
        assert_eq!(append_flags("".into(), " ", "--cfg loom"), "--cfg loom");
        assert_eq!(append_flags("  ".into(), " ", "--cfg loom"), "--cfg loom");
        assert_eq!(
            append_flags("-Cdebuginfo=1".into(), " ", "--cfg loom"),
            "-Cdebuginfo=1 --cfg loom"
        );
        assert_eq!(
            append_flags("-C\x1fdebuginfo=1".into(), "\x1f", "--cfg\x1floom"),
            "-C\x1fdebuginfo=1\x1f--cfg\x1floom"
        );
    }
}
