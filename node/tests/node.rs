//! End to end: the real `node` binary on an ephemeral port with a temporary data dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use node::governance::{DisbursementStatus, GovStore, NewDisbursement};

struct Node {
    child: Child,
    address: String,
    db: PathBuf,
    _dir: Option<tempfile::TempDir>,
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
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
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

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
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
        status(&node)["executor"]["executed"].as_u64() == Some(3)
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
            && metric(&text, "treasury_submissions_total{result=\"failed\"}") == 5.0
    });
    thread::sleep(Duration::from_secs(1));
    let text = scrape();
    assert_eq!(
        metric(&text, "treasury_circuit_breaker_state"),
        1.0,
        "still open"
    );
    assert_eq!(
        metric(&text, "treasury_submissions_total{result=\"failed\"}"),
        5.0,
        "no call while open"
    );

    wait_until("closed and drained", Duration::from_secs(40), || {
        let status = status(&node);
        status["breaker"]["state"] == "closed"
            && status["executor"]["executed"].as_u64() == Some(10)
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
        metric(&text, "treasury_submissions_total{result=\"failed\"}"),
        5.0
    );
    assert!(terminate(node).0.success());
}
