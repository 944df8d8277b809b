//! Running cargo: the workspace root, the target and scratch directories, the cargo binary,
//! and echoing then spawning a command.

use crate::chaos::json::Json;
use crate::tool::ToolCommand;
use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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
/// With the `crash-points` feature, which stays inert unless `TB_CRASH_AT` is set, and
/// `etcd` (for `ha`): validate's test step builds the node's tests with both (a self
/// dev-dependency, and `--features node/etcd`), and building it the same way here lets
/// both share one artifact instead of rebuilding it at every switch.
pub fn build_node(label: &'static str) -> Result<PathBuf, String> {
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
            "crash-points,etcd",
        ],
    )
    .run()?;
    Ok(target_dir().join("debug").join("node"))
}

/// Where cargo puts what it builds, as cargo itself resolves it: the `target_directory` of
/// `cargo metadata`, which follows `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR` and
/// `build.target-dir` in a `.cargo/config.toml` (else `target/` at the workspace root).
/// Cargo is asked once per xtask run. Without this, a drill run with another target
/// directory would start whatever stale `node` binary `target/debug` holds, or none.
///
/// If `cargo metadata` fails, says why and falls back to `$CARGO_TARGET_DIR` (or
/// `$CARGO_BUILD_TARGET_DIR`), else `target/`, taken from the workspace root.
pub fn target_dir() -> &'static Path {
    static TARGET_DIR: OnceLock<PathBuf> = OnceLock::new();
    TARGET_DIR.get_or_init(|| {
        metadata_target_dir(&[]).unwrap_or_else(|reason| {
            let fallback = target_dir_from_env();
            eprintln!(
                "==> [xtask] warning: cannot ask cargo for its target directory ({reason}); \
                 using {}",
                fallback.display()
            );
            fallback
        })
    })
}

/// Runs `cargo metadata --format-version 1 --no-deps` from the workspace root, with `envs`
/// set (`Some`) or removed (`None`) in its environment, and returns its `target_directory`.
fn metadata_target_dir(envs: &[(&str, Option<&OsStr>)]) -> Result<PathBuf, String> {
    let root = workspace_root();
    let mut command = Command::new(cargo_program());
    command
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .current_dir(root)
        .stdin(Stdio::null());
    for (key, value) in envs {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| "`cargo metadata` printed something that is not UTF-8".to_owned())?;
    target_dir_of_metadata(&text)
}

/// The `target_directory` in `cargo metadata`'s JSON (a full parse: the path may hold
/// escaped characters).
fn target_dir_of_metadata(text: &str) -> Result<PathBuf, String> {
    let json = Json::parse(text).map_err(|e| format!("`cargo metadata` printed {e}"))?;
    match json.get("target_directory") {
        Some(Json::String(dir)) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        Some(other) => Err(format!(
            "`cargo metadata`'s target_directory is not a path: {other}"
        )),
        None => Err("`cargo metadata` printed no target_directory".to_owned()),
    }
}

/// The fallback when cargo cannot be asked: `$CARGO_TARGET_DIR` (or
/// `$CARGO_BUILD_TARGET_DIR`) taken from the workspace root, else `target/` there.
fn target_dir_from_env() -> PathBuf {
    target_dir_from(
        env::var_os("CARGO_TARGET_DIR")
            .filter(|v| !v.is_empty())
            .or_else(|| env::var_os("CARGO_BUILD_TARGET_DIR").filter(|v| !v.is_empty())),
    )
}

fn target_dir_from(configured: Option<OsString>) -> PathBuf {
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

    /// `cargo metadata` run as a child, `CARGO_TARGET_DIR` set or removed in its own
    /// environment only (the tests run in parallel: this process's is left alone).
    #[test]
    fn cargo_metadata_gives_the_target_directory() {
        let unset = [("CARGO_TARGET_DIR", None), ("CARGO_BUILD_TARGET_DIR", None)];
        // Assumes no `build.target-dir` in a cargo config outside the workspace.
        assert_eq!(
            metadata_target_dir(&unset).expect("cargo metadata"),
            workspace_root().join("target")
        );
        let set = |dir: &'static str| {
            [
                ("CARGO_TARGET_DIR", Some(OsStr::new(dir))),
                ("CARGO_BUILD_TARGET_DIR", None),
            ]
        };
        assert_eq!(
            metadata_target_dir(&set("/tmp/some-dir")).expect("cargo metadata"),
            Path::new("/tmp/some-dir")
        );
        // Relative: from the workspace root, where the xtasks run cargo.
        assert_eq!(
            metadata_target_dir(&set("t2")).expect("cargo metadata"),
            workspace_root().join("t2")
        );
        assert_eq!(
            metadata_target_dir(&set("/tmp/a \"quoted\" dir")).expect("cargo metadata"),
            Path::new("/tmp/a \"quoted\" dir")
        );
    }

    #[test]
    fn target_directory_is_read_from_metadata_json() {
        let sample = r#"{"packages":[{"name":"xtask","targets":[{"kind":["bin"]}]}],
            "workspace_members":[],"target_directory":"C:\\work\\t \"x\"\u00e9",
            "version":1,"workspace_root":"C:\\work"}"#;
        assert_eq!(
            target_dir_of_metadata(sample).expect("a target directory"),
            Path::new("C:\\work\\t \"x\"é")
        );
        assert_eq!(
            target_dir_of_metadata(r#"{"target_directory":"/w/target"}"#).expect("a path"),
            Path::new("/w/target")
        );
        for bad in [
            r#"{"workspace_root":"/w"}"#,
            r#"{"target_directory":null}"#,
            r#"{"target_directory":""}"#,
            r#"{"target_directory":"/w/t"#,
            "error: could not find `Cargo.toml`",
        ] {
            assert!(target_dir_of_metadata(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_fallback_target_directory_follows_cargo_target_dir() {
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
