//! Named admin tokens on the real binary: each call is recorded under its token's name
//! (`X-Actor` only as an unverified note), a viewer reads and cannot change, and a peer
//! that keeps failing to authenticate gets 429 for the rest of the minute (a valid token
//! still passes), counted in `treasury_admin_auth_failures_total`.

mod common;

use std::path::Path;

use common::NodeProcess;
use serde_json::Value;

const ALICE: &str = "alice-token-0123456789-0123456789-0123";
const VIEWER: &str = "viewer-token-0123456789-0123456789-012";
const FAST: &str = "poll_interval_ms = 100\n[dev_ledger]\nblock_time_ms = 100\n";

fn start(dir: &Path, limit: u32) -> NodeProcess {
    std::fs::write(dir.join("alice.token"), format!("{ALICE}\n")).expect("token");
    std::fs::write(dir.join("viewer.token"), VIEWER).expect("token");
    let config = format!(
        "{FAST}\n[admin]\nauth_failures_per_minute = {limit}\n\
         [[admin.tokens]]\nname = \"alice\"\ntoken_file = {:?}\n\
         [[admin.tokens]]\nname = \"auditor\"\ntoken_file = {:?}\nrole = \"viewer\"\n",
        dir.join("alice.token"),
        dir.join("viewer.token"),
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, config).expect("config");
    NodeProcess::start(&path, &dir.join("governance.db"))
}

fn call(
    node: &NodeProcess,
    method: &str,
    path: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    let body = (method == "POST").then_some(r#"{"reason":"drill"}"#);
    let (code, text) = common::http_request(&node.address, method, path, &headers, body);
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn calls_are_recorded_under_the_tokens_name_and_a_viewer_only_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start(dir.path(), 10);

    let (code, body) = call(
        &node,
        "POST",
        "/admin/breaker/force-open",
        ALICE,
        &[("x-actor", "root")],
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(&node, "POST", "/admin/breaker/reset", VIEWER, &[]);
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("viewer")),
        "{body}"
    );
    let (code, audit) = call(&node, "GET", "/admin/audit", VIEWER, &[]);
    assert_eq!(code, 200, "a viewer reads: {audit}");
    let records = audit["records"].as_array().expect("records");
    assert_eq!(
        records.len(),
        1,
        "the viewer's refused call changed nothing: {audit}"
    );
    assert_eq!(
        records[0]["actor"], "alice",
        "the token's name, not X-Actor"
    );
    assert_eq!(records[0]["unverified_actor"], "root");
    let (code, _) = call(&node, "GET", "/admin/breaker", VIEWER, &[]);
    assert_eq!(code, 200);
    assert_eq!(
        common::http_request(&node.address, "GET", "/status", &[], None).0,
        200
    );
    assert!(
        !node.stderr().contains(ALICE) && !node.stderr().contains(VIEWER),
        "a token in the log"
    );
    node.stop_cleanly();
}

#[test]
fn a_peer_that_keeps_failing_is_refused_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start(dir.path(), 3);
    for _ in 0..3 {
        let (code, body) = call(&node, "GET", "/admin/audit", "wrong-token-0123456789", &[]);
        assert_eq!(code, 401, "{body}");
    }
    let (code, body) = call(&node, "GET", "/admin/audit", "wrong-token-0123456789", &[]);
    assert_eq!(code, 429, "limited: {body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many failed")),
        "{body}"
    );
    let (code, body) = call(&node, "GET", "/admin/audit", ALICE, &[]);
    assert_eq!(code, 200, "a valid token is never locked out: {body}");
    let (code, _) = common::http_request(&node.address, "GET", "/status", &[], None);
    assert_eq!(code, 200, "the public endpoints stay open");
    #[cfg(feature = "telemetry")]
    {
        let (_, metrics) = common::http_request(&node.address, "GET", "/metrics", &[], None);
        for line in [
            "treasury_admin_auth_failures_total{reason=\"wrong\"} 3",
            "treasury_admin_auth_failures_total{reason=\"limited\"} 1",
            "treasury_admin_auth_failures_total{reason=\"missing\"} 0",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "no {line} in:\n{metrics}"
            );
        }
    }
    node.stop_cleanly();
}

/// With admin tokens, listening beyond loopback over plain HTTP draws a warning at start
/// (the tokens would cross the network in clear); on loopback it does not.
#[test]
fn a_non_loopback_admin_api_is_warned_about() {
    let warning = "listens on a non-loopback address over plain HTTP";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start(dir.path(), 10);
    assert!(!node.stderr().contains(warning), "{}", node.stderr());
    node.stop_cleanly();

    let path = dir.path().join("wide.toml");
    std::fs::write(
        &path,
        format!("listen = \"0.0.0.0:0\"\nadmin_token = \"{ALICE}\"\n{FAST}"),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_node"))
        .arg("run")
        .env_remove("TB_ADMIN_TOKEN")
        .env_remove("TB_LISTEN")
        .env("TB_CONFIG", &path)
        .env("TB_GOVERNANCE_DB_PATH", dir.path().join("wide.db"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (found, warned) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        for line in lines.map_while(Result::ok) {
            if line.contains(warning) {
                let _ = found.send(());
            }
        }
    });
    // The warning comes before the node serves; a minute bounds a node that never says it.
    let warned = warned
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_ok();
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no warning for an admin API on 0.0.0.0");
}
