//! Running tools other than cargo: finding a program on `PATH`, echoing then spawning it.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Command;

use crate::cargo::{quote, workspace_root};

/// A program and its arguments, run from the workspace root with inherited stdio.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    /// Shown as `==> [label] ...` when the command is echoed.
    label: &'static str,
    program: OsString,
    /// What the echo calls the program (`cargo` rather than the full path in `$CARGO`).
    shown_as: Option<&'static str>,
    args: Vec<OsString>,
    envs: Vec<(&'static str, OsString)>,
}

impl ToolCommand {
    pub fn new(label: &'static str, program: impl Into<OsString>, args: &[&str]) -> Self {
        Self {
            label,
            program: program.into(),
            shown_as: None,
            args: args.iter().map(OsString::from).collect(),
            envs: Vec::new(),
        }
    }

    /// Echoes the program under this name.
    pub fn shown_as(mut self, name: &'static str) -> Self {
        self.shown_as = Some(name);
        self
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

    /// The command as a shell-like line, e.g. `promtool check rules alerts.yml`.
    pub fn display(&self) -> String {
        let mut line = match self.shown_as {
            Some(name) => name.to_owned(),
            None => quote(&self.program),
        };
        for arg in &self.args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        line
    }

    /// Echoes the environment and command, then runs it to completion.
    pub fn run(&self) -> Result<(), String> {
        let mut echo = String::new();
        for (key, value) in &self.envs {
            echo += &format!("{key}={} ", quote(value));
        }
        let display = self.display();
        eprintln!("==> [{}] {echo}{display}", self.label);
        let status = Command::new(&self.program)
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

/// The first file named `name` in the directories of `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    find_in(&env::var_os("PATH")?, name)
}

/// The first file named `name` in the directories of `path_var` (a `PATH`-style list).
fn find_in(path_var: &OsStr, name: &str) -> Option<PathBuf> {
    env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = ToolCommand::new("x", "promtool", &["test", "rules", "a b.yml"]);
        assert_eq!(cmd.display(), r#"promtool test rules "a b.yml""#);
    }

    #[test]
    fn find_in_takes_the_first_directory_holding_the_file() {
        let root = workspace_root();
        let path = env::join_paths([
            root.join("no-such-dir"),
            PathBuf::new(),
            root.join("xtask"),
            root.to_path_buf(),
        ])
        .expect("paths without separators");
        assert_eq!(
            find_in(&path, "Cargo.toml"),
            Some(root.join("xtask").join("Cargo.toml"))
        );
        // A directory of that name is not a program.
        assert_eq!(find_in(&path, "src"), None);
        assert_eq!(find_in(&path, "no-such-program"), None);
    }
}
