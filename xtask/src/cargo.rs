//! Running cargo: the workspace root, the cargo binary, and echoing then spawning a command.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory is inside the workspace root")
}

/// The cargo binary: `$CARGO` (set by cargo when it runs xtask), else `cargo`.
fn cargo_program() -> OsString {
    env::var_os("CARGO")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("cargo"))
}

/// A cargo invocation, run from the workspace root with inherited stdio.
#[derive(Debug, Clone)]
pub struct CargoCommand {
    /// Shown as `==> [label] ...` when the command is echoed.
    label: &'static str,
    args: Vec<OsString>,
    envs: Vec<(&'static str, OsString)>,
}

impl CargoCommand {
    pub fn new(label: &'static str, args: &[&str]) -> Self {
        Self {
            label,
            args: args.iter().map(OsString::from).collect(),
            envs: Vec::new(),
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(extra.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the child (and echoes it).
    pub fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Self {
        self.envs.push((key, value.into()));
        self
    }

    /// The command as a shell-like line, e.g. `cargo fmt --all -- --check`.
    pub fn display(&self) -> String {
        let mut line = String::from("cargo");
        for arg in &self.args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        line
    }

    /// Echoes the environment and command, then runs it to completion.
    pub fn run(&self) -> Result<(), String> {
        if !self.envs.is_empty() {
            let envs: Vec<String> = self
                .envs
                .iter()
                .map(|(k, v)| format!("{k}={}", quote(v)))
                .collect();
            eprintln!("==> [{}] env {}", self.label, envs.join(" "));
        }
        let display = self.display();
        eprintln!("==> [{}] {display}", self.label);
        let status = Command::new(cargo_program())
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("could not run `{display}`: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{display}` failed ({status})"))
        }
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
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
