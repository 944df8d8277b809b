//! End to end: the real `node` binary on an ephemeral port with a temporary data dir.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use node::governance::{DisbursementStatus, GovStore, NewDisbursement};

use crate::common::wait_until;

struct Node {
    child: Child,
    address: String,
    db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// A failed test must not leave its node running: kill it (a no-op once it has exited).
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(db: &Path, config: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_node"));
    command
        .arg("run")
        .env_remove("TB_CONFIG")
        .env_remove("TB_ADMIN_TOKEN")
        .env_remove("TB_LEDGER")
        .env("TB_LISTEN", "127.0.0.1:0")
        .env("TB_GOVERNANCE_DB_PATH", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(config) = config {
        command.env("TB_CONFIG", config);
    }
    command
}

/// Starts a node on `db` (and a TOML config, if given) and waits for its address.
fn start_on(db: PathBuf, config: Option<&str>, dir: Option<tempfile::TempDir>) -> Node {
    let config_path = config.map(|text| {
        let path = db.with_extension("toml");
        std::fs::write(&path, text).expect("write config");
        path
    });
    let mut child = command(&db, config_path.as_deref())
        .spawn()
        .expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("listening on ") {
                let _ = tx.send(address.to_owned());
            }
        }
    });
    let address = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(address) => address,
        Err(_) => {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("node did not start: {stderr}");
        }
    };
    Node {
        child,
        address,
        db,
        _dir: dir,
    }
}

fn start(config: Option<&str>) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    start_on(db, config, Some(dir))
}

/// One HTTP/1.1 request; returns the status code and the body.
fn http(address: &str, method: &str, path: &str) -> (u16, String) {
    request(address, method, path, &[], "")
}

/// One HTTP/1.1 request with headers and a body (sent with a POST only).
fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let body = (method == "POST").then_some(body);
    common::http_request(address, method, path, headers, body)
}

fn status(node: &Node) -> serde_json::Value {
    let (code, body) = http(&node.address, "GET", "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status is JSON")
}

/// The value of a metric line (`name{labels} value`), 0 if absent.
#[cfg(feature = "telemetry")]
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Sends SIGTERM and waits for the exit. Returns the status, the database path and the
/// directory holding it (dropping that deletes the database).
fn terminate(mut node: Node) -> (ExitStatus, PathBuf, Option<tempfile::TempDir>) {
    let pid = node.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = node.child.try_wait().expect("wait") {
            return (status, node.db.clone(), node._dir.take());
        }
        assert!(Instant::now() < deadline, "node did not stop after SIGTERM");
        thread::sleep(Duration::from_millis(50));
    }
}

fn queue(store: &GovStore, n: u64) {
    for i in 0..n {
        store
            .queue(
                &NewDisbursement {
                    destination: format!("grantee-{i}"),
                    amount: 1_000 + u128::from(i),
                    memo: "e2e".into(),
                    activation_epoch: 0,
                    depends_on: vec![],
                    external_key: None,
                    asset: "native".into(),
                },
                0,
            )
            .expect("queue");
    }
    store.flush().expect("flush");
}

const FAST: &str = "poll_interval_ms = 100\n[dev_ledger]\nblock_time_ms = 100\n";

#[cfg(feature = "telemetry")]
#[test]
fn metrics_show_the_seed_gauges() {
    let node = start(None);
    let (code, body) = http(&node.address, "GET", "/metrics");
    assert_eq!(code, 200);
    for series in [
        "treasury_circuit_breaker_state",
        "treasury_circuit_breaker_failures",
        "treasury_circuit_breaker_successes",
    ] {
        assert!(
            body.lines()
                .any(|l| l.starts_with(series) && l.ends_with(" 0")),
            "{series} = 0 in:\n{body}"
        );
    }
    let (status, ..) = terminate(node);
    assert!(status.success());
}

#[test]
fn status_reports_breaker_executor_and_backlog() {
    let node = start(Some(FAST));
    wait_until("a tick", Duration::from_secs(30), || {
        status(&node)["executor"]["ticks"].as_u64() > Some(0)
    });
    let status = status(&node);
    assert_eq!(status["breaker"]["state"], "closed");
    assert_eq!(status["breaker"]["forced"], false);
    assert_eq!(status["breaker"]["failures"], 0);
    assert_eq!(status["breaker"]["successes"], 0);
    assert_eq!(status["backlog"]["ready"], 0);
    assert_eq!(status["executor"]["halted"], serde_json::Value::Null);
    let (code, body) = http(&node.address, "GET", "/healthz");
    assert_eq!((code, body.trim()), (200, "ok"));
    let (code, _) = http(&node.address, "GET", "/nope");
    assert_eq!(code, 404);
    assert!(terminate(node).0.success());
}

#[test]
fn an_invalid_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let output = command(&db, None)
        .env("TB_LISTEN", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TB_LISTEN"), "{stderr}");

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[circuit_breaker]\ntimeout_secs = 0\n").expect("write");
    let output = command(&db, Some(&config)).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("circuit_breaker.timeout_secs"), "{stderr}");

    // The EVM ledger: a missing endpoint, an unreadable key file, a key file holding
    // no key (whose content is never echoed), a URL the client cannot use.
    let evm = |extra: &[(&str, &str)]| {
        let mut command = command(&db, None);
        command.env("TB_LEDGER", "evm");
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = command.output().expect("run");
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(evm(&[]).contains("rpc_url"));
    let url = ("TB_RPC_URL", "http://127.0.0.1:1");
    let stderr = evm(&[url, ("TB_TREASURY_KEY_FILE", "/no/such/key")]);
    assert!(stderr.contains("treasury_key_file"), "{stderr}");
    let key = dir.path().join("treasury.key");
    std::fs::write(&key, "not-a-key-secret-words\n").expect("write");
    let key = key.to_str().expect("utf-8 path");
    let stderr = evm(&[url, ("TB_TREASURY_KEY_FILE", key)]);
    assert!(stderr.contains("treasury_key_file"), "{stderr}");
    assert!(
        !stderr.contains("secret-words"),
        "the file's content is never shown: {stderr}"
    );
    let stderr = evm(&[
        ("TB_RPC_URL", "ftp://example"),
        ("TB_TREASURY_KEY_FILE", key),
    ]);
    assert!(stderr.contains("rpc_url"), "{stderr}");

    // An https endpoint's CA file that is not there, or holds no certificate.
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("write");
    for ca_file in [Path::new("/no/such/ca.pem"), not_pem.as_path()] {
        let config = dir.path().join("ca.toml");
        let table = format!("[evm]\nca_file = {:?}\n", ca_file.display().to_string());
        std::fs::write(&config, table).expect("write");
        let output = command(&db, Some(&config))
            .env("TB_LEDGER", "evm")
            .env("TB_RPC_URL", "https://127.0.0.1:1")
            .env("TB_TREASURY_KEY_FILE", dir.path().join("treasury.key"))
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(2), "{ca_file:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("invalid configuration: evm.ca_file: ")
                && stderr.contains(&ca_file.display().to_string()),
            "{stderr}"
        );
    }
}

#[test]
fn a_queued_disbursement_is_executed_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    {
        let store = GovStore::open(&db).expect("store");
        queue(&store, 3);
    }
    let node = start_on(db, Some(FAST), Some(dir));
    wait_until("3 executed", Duration::from_secs(30), || {
        status(&node)["executor"]["totals"]["executed"].as_u64() == Some(3)
    });
    let (exit, db, _dir) = terminate(node);
    assert!(exit.success(), "SIGTERM exits 0: {exit}");
    let store = GovStore::open(&db).expect("the store reopens cleanly");
    for id in 0..3 {
        let record = store
            .get(id)
            .expect("get")
            .unwrap_or_else(|| panic!("{id} missing; have {:?}", store.list(None, 10)));
        assert!(
            matches!(record.status, DisbursementStatus::Executed { .. }),
            "{record:?}"
        );
    }
    assert!(
        store.breaker_snapshot().expect("snapshot").is_some(),
        "the breaker was persisted"
    );
}

/// A dev-ledger outage opens the breaker after exactly 5 failed submissions; it closes
/// again after the outage ends, and the backlog drains.
#[cfg(feature = "telemetry")]
#[test]
fn a_dev_ledger_outage_opens_the_breaker_and_it_recovers() {
    let config = "poll_interval_ms = 100\n\
                  [circuit_breaker]\ntimeout_secs = 8\n\
                  [dev_ledger]\nblock_time_ms = 100\n\
                  [[dev_ledger.outages]]\nafter_secs = 0\nfor_secs = 5\nmode = \"refuse\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    {
        let store = GovStore::open(&db).expect("store");
        queue(&store, 10);
    }
    let node = start_on(db, Some(config), Some(dir));
    let scrape = || http(&node.address, "GET", "/metrics").1;
    wait_until("open after 5 failures", Duration::from_secs(20), || {
        let text = scrape();
        metric(&text, "treasury_circuit_breaker_state") == 1.0
            && metric(
                &text,
                "treasury_submissions_total{asset=\"native\",result=\"failed\"}",
            ) == 5.0
    });
    // Ten more ticks while it is open (the breaker waits 8 s before a probe).
    let ticks = || status(&node)["executor"]["ticks"].as_u64().expect("ticks");
    let opened_at = ticks();
    wait_until("ten ticks while open", Duration::from_secs(20), || {
        ticks() >= opened_at + 10
    });
    let text = scrape();
    assert_eq!(
        metric(&text, "treasury_circuit_breaker_state"),
        1.0,
        "still open"
    );
    assert_eq!(
        metric(
            &text,
            "treasury_submissions_total{asset=\"native\",result=\"failed\"}"
        ),
        5.0,
        "no call while open"
    );

    wait_until("closed and drained", Duration::from_secs(40), || {
        let status = status(&node);
        status["breaker"]["state"] == "closed"
            && status["executor"]["totals"]["executed"].as_u64() == Some(10)
    });
    let text = scrape();
    assert_eq!(
        metric(
            &text,
            "treasury_circuit_breaker_transitions_total{from=\"half_open\",to=\"closed\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "treasury_submissions_total{asset=\"native\",result=\"failed\"}"
        ),
        5.0
    );
    assert!(terminate(node).0.success());
}

const TOKEN: &str = "test-admin-token-0123456789";

fn admin_config(extra: &str) -> String {
    format!("admin_token = \"{TOKEN}\"\n{extra}\n{FAST}")
}

fn admin(node: &Node, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {TOKEN}");
    let (code, text) = request(
        &node.address,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("X-Actor", "alice"),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[test]
fn without_a_token_the_admin_api_is_off() {
    let node = start(Some(FAST));
    let (code, body) = request(
        &node.address,
        "POST",
        "/admin/breaker/force-open",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        r#"{"reason":"test"}"#,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("TB_ADMIN_TOKEN"), "{body}");
    assert_eq!(
        status(&node)["breaker"]["state"],
        "closed",
        "nothing changed"
    );
    assert!(terminate(node).0.success());
}

#[test]
fn refused_admin_calls_change_nothing() {
    let node = start(Some(&admin_config("")));
    let reason = r#"{"reason":"maintenance"}"#;
    type Refusal<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str, u16);
    let refused: Vec<Refusal> = vec![
        (vec![], "/admin/breaker/force-open", reason, 401),
        (
            vec![("Authorization", "Bearer wrong-token-wrong-token")],
            "/admin/breaker/force-open",
            reason,
            401,
        ),
        (
            vec![("Authorization", TOKEN)],
            "/admin/breaker/force-open",
            reason,
            401,
        ),
    ];
    for (headers, path, body, expected) in refused {
        let (code, text) = request(&node.address, "POST", path, &headers, body);
        assert_eq!(code, expected, "{path} {headers:?}: {text}");
        assert!(text.contains("error"), "{text}");
    }
    for (path, body) in [
        ("/admin/breaker/force-open", "not json"),
        ("/admin/breaker/force-open", r#"{"reason":""}"#),
        ("/admin/breaker/force-open", r#"{"reason":"x","extra":1}"#),
        ("/admin/breaker/reset", "{}"),
        (
            "/admin/disbursements",
            r#"{"destination":"bob","amount":"abc"}"#,
        ),
        (
            "/admin/disbursements",
            r#"{"destination":"bob","amount":"0"}"#,
        ),
        (
            "/admin/disbursements",
            r#"{"destination":"bob","amount":5}"#,
        ),
        (
            "/admin/disbursements",
            r#"{"destination":"b o b","amount":"5"}"#,
        ),
        (
            "/admin/disbursements",
            r#"{"destination":"bob","amount":"5","depends_on":[99]}"#,
        ),
    ] {
        let (code, body) = admin(&node, "POST", path, body);
        assert_eq!(code, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "a reason: {body}"
        );
    }
    let (code, _) = admin(
        &node,
        "POST",
        "/admin/breaker/force-open",
        &format!(r#"{{"reason":"{}"}}"#, "x".repeat(70_000)),
    );
    assert_eq!(code, 413, "oversized body");
    let (code, _) = admin(&node, "GET", "/admin/disbursements/77", "");
    assert_eq!(code, 404);
    let (code, body) = admin(&node, "POST", "/admin/breaker/explode", r#"{"reason":"x"}"#);
    assert_eq!(code, 404, "{body}");
    let (code, _) = admin(&node, "GET", "/admin/disbursements/not-a-number", "");
    assert_eq!(code, 400);

    let status = status(&node);
    assert_eq!(status["breaker"]["state"], "closed");
    assert_eq!(status["breaker"]["generation"], 0, "no transition happened");
    let (_, audit) = admin(&node, "GET", "/admin/audit", "");
    assert_eq!(audit["records"], serde_json::json!([]), "nothing audited");
    let (_, list) = admin(&node, "GET", "/admin/disbursements", "");
    assert_eq!(
        list["disbursements"],
        serde_json::json!([]),
        "nothing queued"
    );
    assert!(terminate(node).0.success());
}

#[cfg(feature = "telemetry")]
#[test]
fn force_open_moves_the_gauge_is_audited_and_survives_a_restart() {
    let node = start(Some(&admin_config("")));
    let (code, body) = admin(
        &node,
        "POST",
        "/admin/breaker/force-open",
        r#"{"reason":"rpc maintenance"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["breaker"]["state"], "open");
    assert_eq!(body["breaker"]["forced"], true);
    let (_, text) = http(&node.address, "GET", "/metrics");
    assert_eq!(metric(&text, "treasury_circuit_breaker_state"), 1.0);
    assert_eq!(metric(&text, "treasury_circuit_breaker_forced"), 1.0);
    let (_, audit) = admin(&node, "GET", "/admin/audit", "");
    let record = &audit["records"][0];
    assert_eq!(record["actor"], "admin", "the token's name");
    assert_eq!(record["unverified_actor"], "alice", "X-Actor, as a note");
    assert_eq!(record["action"], "breaker.force_open");
    assert_eq!(record["reason"], "rpc maintenance");
    assert!(record["at_ms"].as_u64().is_some_and(|t| t > 0));

    let (exit, db, dir) = terminate(node);
    assert!(exit.success());
    let node = start_on(db, Some(&admin_config("")), dir);
    let status = status(&node);
    assert_eq!(
        status["breaker"]["state"], "open",
        "still open after a restart"
    );
    assert_eq!(status["breaker"]["forced"], true, "and still forced");
    let (code, body) = admin(
        &node,
        "POST",
        "/admin/breaker/reset",
        r#"{"reason":"done"}"#,
    );
    assert_eq!(
        (code, body["breaker"]["state"].as_str()),
        (200, Some("closed"))
    );
    assert!(terminate(node).0.success());
}

#[test]
fn a_batch_is_queued_all_or_none_and_audited_once() {
    let node = start(Some(&admin_config("")));
    let (code, body) = admin(
        &node,
        "POST",
        "/admin/disbursements/batch",
        r#"{"reason":"proposal 7","disbursements":[
            {"destination":"a","amount":"1"},
            {"destination":"b","amount":"0"}]}"#,
    );
    assert_eq!(code, 400, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("disbursements[1]: "), "{error}");
    let (code, body) = admin(
        &node,
        "POST",
        "/admin/disbursements/batch",
        r#"{"disbursements":[{"destination":"a","amount":"1","depends_on":[99]}]}"#,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = admin(
        &node,
        "POST",
        "/admin/disbursements/batch",
        r#"{"disbursements":[]}"#,
    );
    assert_eq!(code, 400, "{body}");
    let (_, listed) = admin(&node, "GET", "/admin/disbursements", "");
    assert_eq!(
        listed["disbursements"].as_array().map(Vec::len),
        Some(0),
        "nothing stored"
    );

    let batch = r#"{"reason":"proposal 7","disbursements":[
        {"destination":"a","amount":"1","external_key":"p7-a"},
        {"destination":"b","amount":"2","external_key":"p7-b"},
        {"destination":"c","amount":"3","external_key":"p7-a"}]}"#;
    let (code, body) = admin(&node, "POST", "/admin/disbursements/batch", batch);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["created"], 2);
    let ids: Vec<u64> = body["disbursements"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["id"].as_u64())
        .collect();
    assert_eq!(
        ids,
        vec![0, 1, 0],
        "the repeated key is the first disbursement"
    );
    let (code, body) = admin(&node, "POST", "/admin/disbursements/batch", batch);
    assert_eq!(
        (code, &body["created"]),
        (200, &serde_json::json!(0)),
        "{body}"
    );

    let (_, audit) = admin(&node, "GET", "/admin/audit", "");
    let records = audit["records"].as_array().expect("records");
    assert_eq!(
        records.len(),
        1,
        "one record for the batch, none for refusals: {audit}"
    );
    assert_eq!(records[0]["action"], "disbursement.queue_batch");
    assert_eq!(records[0]["reason"], "proposal 7");
    wait_until("both executed", Duration::from_secs(30), || {
        [0, 1].iter().all(|id| {
            admin(&node, "GET", &format!("/admin/disbursements/{id}"), "").1["status"]["status"]
                == "executed"
        })
    });
    assert!(terminate(node).0.success());
}

#[test]
fn disbursements_through_the_admin_api() {
    let node = start(Some(&admin_config("")));
    let body = r#"{"destination":"grantee","amount":"340282366920938463463374607431768211455","memo":"grant #1","external_key":"proposal-1"}"#;
    let (code, queued) = admin(&node, "POST", "/admin/disbursements", body);
    assert_eq!(code, 201, "{queued}");
    assert_eq!(
        queued["amount"], "340282366920938463463374607431768211455",
        "amounts stay exact"
    );
    let id = queued["id"].as_u64().expect("id");
    let (code, again) = admin(&node, "POST", "/admin/disbursements", body);
    assert_eq!(
        (code, again["id"].as_u64()),
        (200, Some(id)),
        "the same external key: the same disbursement"
    );

    // More than the treasury holds: it waits (never cancelled for want of funds), and
    // /status says how much is missing, until an operator tops up or cancels it.
    wait_until("the shortfall", Duration::from_secs(30), || {
        status(&node)["balance"]["insufficient"] == true
    });
    let missing = status(&node)["balance"]["missing"].clone();
    assert!(
        missing.as_str().is_some_and(|m| m.len() > 20),
        "a decimal string of wei: {missing}"
    );
    assert_eq!(
        admin(&node, "GET", &format!("/admin/disbursements/{id}"), "").1["status"]["status"],
        "queued"
    );
    let (code, cancelled) = admin(
        &node,
        "POST",
        &format!("/admin/disbursements/{id}/cancel"),
        r#"{"reason":"more than the treasury holds"}"#,
    );
    assert_eq!(code, 200, "{cancelled}");
    let (code, small) = admin(
        &node,
        "POST",
        "/admin/disbursements",
        r#"{"destination":"grantee","amount":"7"}"#,
    );
    assert_eq!(code, 201);
    let small = small["id"].as_u64().expect("id");
    wait_until("executed", Duration::from_secs(30), || {
        admin(&node, "GET", &format!("/admin/disbursements/{small}"), "").1["status"]["status"]
            == "executed"
    });
    let (code, body) = admin(
        &node,
        "POST",
        &format!("/admin/disbursements/{small}/cancel"),
        r#"{"reason":"too late"}"#,
    );
    assert_eq!(code, 409, "{body}");

    let (code, _) = admin(
        &node,
        "POST",
        "/admin/breaker/force-open",
        r#"{"reason":"hold"}"#,
    );
    assert_eq!(code, 200);
    let (_, later) = admin(
        &node,
        "POST",
        "/admin/disbursements",
        r#"{"destination":"grantee","amount":"8"}"#,
    );
    let later = later["id"].as_u64().expect("id");
    let (code, cancelled) = admin(
        &node,
        "POST",
        &format!("/admin/disbursements/{later}/cancel"),
        r#"{"reason":"duplicate"}"#,
    );
    assert_eq!(code, 200, "{cancelled}");
    assert_eq!(
        cancelled["status"],
        serde_json::json!({"status": "cancelled", "reason": "duplicate"})
    );

    let (_, list) = admin(&node, "GET", "/admin/disbursements?limit=10", "");
    assert_eq!(list["disbursements"].as_array().map(Vec::len), Some(3));
    let (_, audit) = admin(&node, "GET", "/admin/audit", "");
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "disbursement.queue",
            "disbursement.cancel",
            "disbursement.queue",
            "breaker.force_open",
            "disbursement.queue",
            "disbursement.cancel"
        ]
    );
    assert!(terminate(node).0.success());
}

/// The CLI client against the real node: queue, see it executed, force the breaker open.
#[test]
fn the_cli_queues_and_overrides() {
    let node = start(Some(&admin_config("")));
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_node"))
            .args(args)
            .env("TB_ADMIN_URL", format!("http://{}", node.address))
            .env("TB_ADMIN_TOKEN", TOKEN)
            .env("USER", "carol")
            .output()
            .expect("run the cli")
    };
    let out = cli(&[
        "disburse",
        "queue",
        "--destination",
        "grantee",
        "--amount",
        "42",
        "--memo",
        "cli",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queued: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = queued["id"].as_u64().expect("id").to_string();
    wait_until("executed", Duration::from_secs(30), || {
        let out = cli(&["disburse", "show", &id]);
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        shown["status"]["status"] == "executed"
    });
    let out = cli(&["breaker", "force-open", "--reason", "drill"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&node)["breaker"]["state"], "open");
    let out = cli(&["audit"]);
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(audit["records"][1]["actor"], "admin");
    assert_eq!(audit["records"][1]["unverified_actor"], "carol");
    assert_eq!(audit["records"][1]["action"], "breaker.force_open");

    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["breaker", "reset", "--reason", "x"])
        .env("TB_ADMIN_URL", format!("http://{}", node.address))
        .env("TB_ADMIN_TOKEN", "wrong-token-wrong-token")
        .output()
        .expect("run the cli");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    assert_eq!(
        status(&node)["breaker"]["state"],
        "open",
        "the refused call changed nothing"
    );
    assert!(terminate(node).0.success());
}

/// A database in the store's first layout (the governance crate's fixture, written by
/// commit 32f42a4) is migrated when the node opens it, with a line in the log, and
/// served: its backlog is in `/status`.
#[test]
fn a_database_in_the_first_layout_is_migrated_on_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    std::fs::create_dir_all(&db).expect("mkdir");
    let fixture = common::workspace().join("governance/tests/fixtures/store-v1");
    for name in ["conf", "db"] {
        std::fs::copy(fixture.join(name), db.join(name)).expect("copy the fixture");
    }
    let config = dir.path().join("node.toml");
    std::fs::write(&config, FAST).expect("config");
    let mut node = common::NodeProcess::start(&config, &db);
    wait_until("the migration's log line", Duration::from_secs(10), || {
        node.stderr()
            .contains("store migrated in place from the tree-per-kind layout")
    });
    assert!(node.stderr().contains("records=36"), "{}", node.stderr());
    let (code, body) = common::http_request(&node.address, "GET", "/status", &[], None);
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status["backlog"]["scheduled"], 1, "{status}");
    node.stop_cleanly();
}

/// `/status`'s totals come from the store: after a kill -9 and a restart they still
/// count every disbursement executed, while `since_start` counts this process only.
#[test]
fn status_totals_survive_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("governance.db");
    {
        let store = GovStore::open(&db).expect("store");
        queue(&store, 30);
    }
    let mut node = start_on(db.clone(), Some(FAST), None);
    wait_until("30 executed", Duration::from_secs(60), || {
        status(&node)["executor"]["totals"]["executed"].as_u64() == Some(30)
    });
    node.child.kill().expect("kill -9");
    node.child.wait().expect("wait");

    let node = start_on(db, Some(FAST), Some(dir));
    let status = status(&node);
    let totals = &status["executor"]["totals"];
    assert_eq!(totals["executed"], 30, "{status}");
    assert_eq!(totals["queued"], 0, "{status}");
    assert_eq!(
        status["executor"]["since_start"]["executed"], 0,
        "nothing executed by this process: {status}"
    );
    assert!(terminate(node).0.success());
}
