//! The `promtool` step of `cargo xtask validate`: check the alert rules and run their unit tests,
//! installing promtool from Debian's `prometheus` package when it is missing.

use std::env;
use std::ffi::OsString;

use crate::steps::StepResult;
use crate::tool::{ToolCommand, find_on_path};

/// The alert rules, relative to the workspace root.
const RULES: &str = "telemetry/prometheus/alerts.yml";
/// Their `promtool test rules` unit tests.
const RULE_TESTS: &str = "telemetry/prometheus/alerts_test.yml";

/// One line for the help text.
pub fn about() -> String {
    format!(
        "promtool check rules {RULES}, promtool test rules alerts_test.yml, promtool check metrics on a live node"
    )
}

/// Runs the step: both promtool commands, the tests even if the check failed.
pub fn run() -> StepResult {
    let promtool = locate_or_install()?;
    let check = ToolCommand::new("promtool", &promtool, &["check", "rules", RULES]).run();
    let test = ToolCommand::new("promtool", &promtool, &["test", "rules", RULE_TESTS]).run();
    let live = crate::scrape::check_live_metrics(&promtool);
    check.and(test).and(live)
}

/// `$PROMTOOL`, else `promtool` on `PATH`, else installed with apt-get.
fn locate_or_install() -> Result<OsString, String> {
    if let Some(promtool) = env::var_os("PROMTOOL").filter(|v| !v.is_empty()) {
        return Ok(promtool);
    }
    if let Some(promtool) = find_on_path("promtool") {
        return Ok(promtool.into());
    }
    install()?;
    find_on_path("promtool").map(OsString::from).ok_or_else(|| {
        "Debian's `prometheus` is installed but `promtool` is not on PATH".to_owned()
    })
}

/// `apt-get install prometheus`, after an `apt-get update` if the first attempt fails (a fresh
/// container has no package lists).
fn install() -> Result<(), String> {
    const HINT: &str =
        "install promtool (Debian/Ubuntu: `apt-get install prometheus`) or set PROMTOOL";
    if find_on_path("apt-get").is_none() {
        return Err(format!(
            "promtool is not on PATH and apt-get is not available: {HINT}"
        ));
    }
    eprintln!("==> [promtool] promtool is not on PATH: installing Debian's `prometheus` package");
    let install = apt_get(&["install", "-y", "--no-install-recommends", "prometheus"]);
    if install.run().is_ok() {
        return Ok(());
    }
    apt_get(&["update"])
        .run()
        .and_then(|()| install.run())
        .map_err(|e| format!("{e}: {HINT}"))
}

fn apt_get(args: &[&str]) -> ToolCommand {
    ToolCommand::new("promtool", "apt-get", args).env("DEBIAN_FRONTEND", "noninteractive")
}
