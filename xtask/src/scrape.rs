//! `promtool check metrics` on a live scrape: builds the node, starts it on an ephemeral
//! port with a throwaway database, fetches `/metrics`, and lints it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::cargo::fresh_dir;

/// Runs the check with `promtool`.
pub fn check_live_metrics(promtool: &std::ffi::OsStr) -> Result<(), String> {
    let binary = crate::cargo::build_node("promtool")?;
    let scratch = crate::cargo::target_dir().join("xtask-scrape");
    fresh_dir(&scratch)?;
    eprintln!(
        "==> [promtool] starting {} on an ephemeral port",
        binary.display()
    );
    let mut node = Command::new(&binary)
        .arg("run")
        .env("TB_LISTEN", "127.0.0.1:0")
        .env("TB_GOVERNANCE_DB_PATH", scratch.join("governance.db"))
        .env_remove("TB_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let result = scrape_and_check(&mut node, promtool, &scratch);
    stop(&mut node);
    result
}

fn scrape_and_check(
    node: &mut Child,
    promtool: &std::ffi::OsStr,
    scratch: &Path,
) -> Result<(), String> {
    let address = listening_address(node)?;
    let metrics = crate::http::get(&address, "/metrics")?;
    let file = scratch.join("metrics.txt");
    std::fs::write(&file, &metrics).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    eprintln!(
        "==> [promtool] {} check metrics < {} ({} bytes scraped from http://{address}/metrics)",
        promtool.to_string_lossy(),
        file.display(),
        metrics.len()
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("promtool has no stdin")?
        .write_all(metrics.as_bytes())
        .map_err(|e| format!("cannot feed promtool: {e}"))?;
    let status = child.wait().map_err(|e| format!("promtool: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`promtool check metrics` found problems in the node's /metrics ({status})"
        ))
    }
}

/// The address a node started with piped stdout prints (`listening on ADDR`), within 60 s.
pub fn listening_address(node: &mut Child) -> Result<String, String> {
    let stdout = node.stdout.take().ok_or("the node has no stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("listening on ") {
                let _ = tx.send(address.to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the node did not start listening within 60 s".to_owned())
}

/// SIGTERM (the node drains and exits), then reap it; kill it if it lingers.
pub fn stop(node: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = node.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = node.kill();
    let _ = node.wait();
}
