//! The `promtool` step of `cargo xtask validate`: check the alert rules and run their unit tests,
//! installing promtool from Debian's `prometheus` package when it is missing.

use std::env;
use std::ffi::OsString;

use crate::steps::StepResult;
use crate::tool::{ToolCommand, apt_install, find_on_path};

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

/// `$PROMTOOL`, else `promtool` on `PATH`, else installed with apt-get (Debian's `prometheus`).
fn locate_or_install() -> Result<OsString, String> {
    if let Some(promtool) = env::var_os("PROMTOOL").filter(|v| !v.is_empty()) {
        return Ok(promtool);
    }
    if let Some(promtool) = find_on_path("promtool") {
        return Ok(promtool.into());
    }
    apt_install("promtool", "prometheus", "promtool")
        .map(OsString::from)
        .map_err(|e| format!("{e} or set PROMTOOL"))
}
