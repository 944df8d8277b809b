//! Running cargo: the workspace root, the target and scratch directories, the cargo binary,
//! and echoing then spawning a command.

use crate::tool::ToolCommand;
use std::env;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory is inside the workspace root")
}

/// Empties `dir` (creating it if missing): an xtask's scratch directory for one run.
pub fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// The cargo binary: `$CARGO` (set by cargo when it runs xtask), else `cargo`.
pub(crate) fn cargo_program() -> OsString {
    env::var_os("CARGO")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("cargo"))
}

/// A cargo invocation, run from the workspace root with inherited stdio.
#[derive(Debug, Clone)]
pub struct CargoCommand(ToolCommand);

impl CargoCommand {
    pub fn new(label: &'static str, args: &[&str]) -> Self {
        Self(ToolCommand::new(label, cargo_program(), args).shown_as("cargo"))
    }

    /// Appends arguments.
    pub fn args<I, S>(self, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self(self.0.args(extra))
    }

    /// Sets an environment variable for the child (and echoes it).
    pub fn env(self, key: &'static str, value: impl Into<OsString>) -> Self {
        Self(self.0.env(key, value))
    }

    /// The command as a shell-like line, e.g. `cargo fmt --all -- --check`.
    pub fn display(&self) -> String {
        self.0.display()
    }

    /// Echoes the environment and command, then runs it to completion.
    pub fn run(&self) -> Result<(), String> {
        self.0.run()
    }
}

/// Quotes an argument for display if it is empty or has characters a shell would treat specially.
pub fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=+.,:/@%^".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("{s:?}")
    }
}

/// Builds the `node` binary (debug) for the xtasks that run it, and returns its path.
///
/// With the `crash-points` feature, which stays inert unless `TB_CRASH_AT` is set: the
/// node's own tests build it so (a self dev-dependency), and building it the same way
/// here lets both share one artifact instead of rebuilding it at every switch.
pub fn build_node(label: &'static str) -> Result<std::path::PathBuf, String> {
    CargoCommand::new(
        label,
        &[
            "build",
            "--quiet",
            "-p",
            "node",
            "--bin",
            "node",
            "--features",
            "crash-points",
        ],
    )
    .run()?;
    Ok(target_dir().join("debug").join("node"))
}

/// Where cargo puts what it builds: `$CARGO_TARGET_DIR` (or `$CARGO_BUILD_TARGET_DIR`), a
/// relative one taken from the workspace root (where the xtasks run cargo), else
/// `target/` there. Without this, a drill run with another target directory would start
/// whatever stale `node` binary `target/debug` holds.
pub fn target_dir() -> std::path::PathBuf {
    target_dir_from(
        env::var_os("CARGO_TARGET_DIR")
            .filter(|v| !v.is_empty())
            .or_else(|| env::var_os("CARGO_BUILD_TARGET_DIR").filter(|v| !v.is_empty())),
    )
}

fn target_dir_from(configured: Option<OsString>) -> std::path::PathBuf {
    match configured {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = CargoCommand::new("x", &["test", "--", "--test-threads=2"]).args(["a b", ""]);
        assert_eq!(cmd.display(), r#"cargo test -- --test-threads=2 "a b" """#);
        assert_eq!(quote(OsStr::new("--cfg loom")), r#""--cfg loom""#);
    }

    #[test]
    fn the_target_directory_follows_cargo_target_dir() {
        let root = workspace_root();
        assert_eq!(target_dir_from(None), root.join("target"));
        assert_eq!(
            target_dir_from(Some("/elsewhere/t".into())),
            Path::new("/elsewhere/t")
        );
        assert_eq!(target_dir_from(Some("t2".into())), root.join("t2"));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
