//! Running tools other than cargo: finding a program on `PATH`, installing one with apt-get,
//! echoing then spawning it.

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

/// Installs Debian's `package` with apt-get and returns where `binary` now is on `PATH`.
///
/// Runs `apt-get install -y --no-install-recommends PACKAGE` (with
/// `DEBIAN_FRONTEND=noninteractive`), and if that fails an `apt-get update` and the install
/// again (a fresh container has no package lists). Needs root. Commands are echoed under
/// `label`. Every error ends with what to do (install `binary` from `package`, or put it on
/// `PATH`), so that a caller can append its own alternative, e.g. ` or set PROMTOOL`.
pub fn apt_install(label: &'static str, package: &str, binary: &str) -> Result<PathBuf, String> {
    apt_install_on(env::var_os("PATH"), label, package, binary)
}

/// [`apt_install`], looking for apt-get and `binary` in `path_var` (a `PATH`-style list).
fn apt_install_on(
    path_var: Option<OsString>,
    label: &'static str,
    package: &str,
    binary: &str,
) -> Result<PathBuf, String> {
    let find = |name: &str| find_in(path_var.as_deref()?, name);
    let hint = format!("install {binary} (Debian/Ubuntu: `apt-get install {package}`)");
    if find("apt-get").is_none() {
        return Err(format!(
            "{binary} is not on PATH and apt-get is not available: {hint}"
        ));
    }
    eprintln!("==> [{label}] {binary} is not on PATH: installing Debian's `{package}` package");
    let apt_get = |args: &[&str]| {
        ToolCommand::new(label, "apt-get", args).env("DEBIAN_FRONTEND", "noninteractive")
    };
    let install = apt_get(&["install", "-y", "--no-install-recommends", package]);
    install
        .run()
        .or_else(|_| apt_get(&["update"]).run().and_then(|()| install.run()))
        .map_err(|e| format!("{e}: {hint}"))?;
    find(binary).ok_or_else(|| {
        format!(
            "Debian's `{package}` is installed but `{binary}` is not on PATH: add its directory to PATH"
        )
    })
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
    fn apt_install_without_apt_get_says_what_to_install() {
        let empty = workspace_root().join("no-such-dir").into_os_string();
        for path_var in [None, Some(empty)] {
            let err = apt_install_on(path_var, "x", "protobuf-compiler", "protoc")
                .expect_err("no apt-get there");
            assert_eq!(
                err,
                "protoc is not on PATH and apt-get is not available: \
                 install protoc (Debian/Ubuntu: `apt-get install protobuf-compiler`)"
            );
        }
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
