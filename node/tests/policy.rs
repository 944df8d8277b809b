//! The spending policy on the real binary (dev ledger): two operators' approvals pay what
//! one cannot, a request over the daily limit is refused and changes nothing, and the
//! allow-list re-read on SIGHUP holds back, and then releases, a ready disbursement.

mod common;

use std::path::Path;
use std::time::Duration;

use common::NodeProcess;
use node::governance::GovStore;
use node::ledger::dev::{DevLedger, DevLedgerConfig};
use serde_json::{Value, json};

const ALICE: &str = "alice-token-0123456789-0123456789-0123";
const BOB: &str = "bob-token-0123456789-0123456789-0123456";
const VIEWER: &str = "viewer-token-0123456789-0123456789-012";
const FAST: &str = "poll_interval_ms = 50\n[dev_ledger]\nblock_time_ms = 50\n";
const WAIT: Duration = Duration::from_secs(60);

fn start(dir: &Path, policy: &str) -> NodeProcess {
    std::fs::write(dir.join("alice.token"), ALICE).expect("token");
    std::fs::write(dir.join("bob.token"), BOB).expect("token");
    std::fs::write(dir.join("viewer.token"), VIEWER).expect("token");
    let config = format!(
        "{FAST}\n\
         [[admin.tokens]]\nname = \"alice\"\ntoken_file = {:?}\n\
         [[admin.tokens]]\nname = \"bob\"\ntoken_file = {:?}\n\
         [[admin.tokens]]\nname = \"carol\"\ntoken_file = {:?}\nrole = \"viewer\"\n\
         {policy}",
        dir.join("alice.token"),
        dir.join("bob.token"),
        dir.join("viewer.token"),
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, config).expect("config");
    NodeProcess::start(&path, &dir.join("governance.db"))
}

fn call(
    node: &NodeProcess,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let body = body.map(|b| b.to_string());
    let (code, text) = common::http_request(&node.address, method, path, &headers, body.as_deref());
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn queue(node: &NodeProcess, token: &str, destination: &str, amount: u128) -> (u16, Value) {
    let body = json!({ "destination": destination, "amount": amount.to_string(), "memo": "grant" });
    call(node, token, "POST", "/admin/disbursements", Some(body))
}

fn status_of(node: &NodeProcess, id: u64) -> String {
    let (code, body) = call(
        node,
        ALICE,
        "GET",
        &format!("/admin/disbursements/{id}"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    body["status"]["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

fn node_status(node: &NodeProcess) -> Value {
    let (code, text) = common::http_request(&node.address, "GET", "/status", &[], None);
    assert_eq!(code, 200, "{text}");
    serde_json::from_str(&text).expect("json")
}

fn ticks(node: &NodeProcess) -> u64 {
    node_status(node)["executor"]["ticks"]
        .as_u64()
        .expect("ticks")
}

fn metrics(node: &NodeProcess) -> String {
    common::http_request(&node.address, "GET", "/metrics", &[], None).1
}

/// Sends SIGHUP and waits until the node has read the allow-list again.
fn reread(node: &NodeProcess) {
    let loaded =
        |node: &NodeProcess| node_status(node)["policy"]["destinations"]["loaded_at_ms"].clone();
    let before = loaded(node);
    node.signal("HUP");
    common::wait_until("the allow-list re-read", WAIT, || loaded(node) != before);
}

fn destination_refusals(node: &NodeProcess) -> u64 {
    let text = metrics(node);
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"treasury_policy_refusals_total{reason="destination"}"#))
        .unwrap_or_else(|| panic!("no destination refusals counter: {text}"));
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

fn wait_executed(node: &NodeProcess, id: u64) {
    common::wait_until(&format!("disbursement {id} executed"), WAIT, || {
        status_of(node, id) == "executed"
    });
}

/// What each destination holds on the dev ledger, read once the node has stopped.
fn balances(dir: &Path, destinations: &[&str]) -> Vec<u128> {
    let store = GovStore::open(dir.join("governance.db")).expect("store");
    let ledger = DevLedger::open(
        store.aux_tree("dev_ledger").expect("tree"),
        DevLedgerConfig::default(),
    )
    .expect("dev ledger");
    destinations
        .iter()
        .map(|d| ledger.balance(d).expect("balance"))
        .collect()
}

#[test]
fn two_operators_pay_what_one_cannot_and_the_daily_limit_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = start(
        dir.path(),
        "[policy]\napprovals_required = 2\n\
         [policy.limits.native]\napproval_threshold = 1000\nmax_amount = 50000\ndaily_limit = \"60000\"\n",
    );

    let (code, big) = queue(&node, ALICE, "grantee", 5000);
    assert_eq!(code, 201, "{big}");
    assert_eq!(big["status"]["status"], "awaiting_approval", "{big}");
    assert_eq!(big["approvals"][0]["actor"], "alice", "{big}");
    let big = big["id"].as_u64().expect("id");
    let (code, small) = queue(&node, ALICE, "small", 10);
    assert_eq!(code, 201, "{small}");
    let small = small["id"].as_u64().expect("id");
    wait_executed(&node, small);

    // Many ticks with one approval: never paid.
    let seen = ticks(&node);
    common::wait_until("ten more ticks", WAIT, || ticks(&node) >= seen + 10);
    assert_eq!(status_of(&node, big), "awaiting_approval");
    assert!(
        metrics(&node).contains("treasury_disbursements_awaiting_approval 1"),
        "{}",
        metrics(&node)
    );

    // Alice again: 409. The viewer: 403. Neither changes anything.
    let path = format!("/admin/disbursements/{big}/approve");
    let (code, body) = call(
        &node,
        ALICE,
        "POST",
        &path,
        Some(json!({ "reason": "again" })),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = call(
        &node,
        VIEWER,
        "POST",
        &path,
        Some(json!({ "reason": "me too" })),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(status_of(&node, big), "awaiting_approval");

    // Bob: queued, then paid once.
    let (code, body) = call(
        &node,
        BOB,
        "POST",
        &path,
        Some(json!({ "reason": "checked the proposal" })),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["status"], "queued", "{body}");
    wait_executed(&node, big);

    let (code, audit) = call(&node, VIEWER, "GET", "/admin/audit", None);
    assert_eq!(code, 200, "{audit}");
    let records = audit["records"].as_array().expect("records");
    let approvals: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "disbursement.approve")
        .collect();
    assert_eq!(
        approvals.len(),
        1,
        "only the accepted approval is recorded: {audit}"
    );
    assert_eq!(approvals[0]["actor"], "bob");
    assert!(
        approvals[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(alice, bob)")),
        "{audit}"
    );
    let queued_by = records
        .iter()
        .find(|r| r["action"] == "disbursement.queue")
        .expect("queue record");
    assert_eq!(queued_by["actor"], "alice");

    // The day holds 5,010; 50,000 fits, 5,000 more does not.
    let (code, body) = queue(&node, ALICE, "later", 50_000);
    assert_eq!(code, 201, "{body}");
    let before = (
        node_status(&node)["executor"]["totals"].clone(),
        records.len() + 1,
    );
    let (code, body) = queue(&node, ALICE, "later", 5_000);
    assert_eq!(code, 403, "{body}");
    let error = body["error"].as_str().expect("error");
    assert!(
        error.contains("daily_limit of 60000") && error.contains("55010"),
        "{error}"
    );
    let (_, audit) = call(&node, VIEWER, "GET", "/admin/audit", None);
    let after = (
        node_status(&node)["executor"]["totals"].clone(),
        audit["records"].as_array().expect("records").len(),
    );
    assert_eq!(before, after, "a refused request changes nothing");
    let (code, body) = queue(&node, ALICE, "later", 50_001);
    assert_eq!(code, 403, "over max_amount: {body}");
    let status = node_status(&node);
    assert_eq!(
        status["policy"]["limits"]["native"]["spent_24h"], "55010",
        "{status}"
    );
    let text = metrics(&node);
    assert!(
        text.contains(r#"treasury_policy_refusals_total{reason="daily_limit"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"treasury_policy_refusals_total{reason="max_amount"} 1"#),
        "{text}"
    );

    node.stop_cleanly();
    assert_eq!(
        balances(dir.path(), &["grantee", "small"]),
        vec![5000, 10],
        "each paid exactly once"
    );
}

#[test]
fn the_allow_list_reread_on_sighup_holds_back_and_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, "# grantees\nalpha\ncharlie\n").expect("list");
    let mut node = start(
        dir.path(),
        &format!("[policy]\ndestinations_file = {list:?}\n"),
    );

    let (code, body) = queue(&node, ALICE, "bravo", 1);
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("allow-list")),
        "{body}"
    );

    // Charlie is queued while the breaker keeps the executor from ticking; the list loses
    // charlie before the executor gets to it.
    let force = |action: &str| {
        let (code, body) = call(
            &node,
            ALICE,
            "POST",
            &format!("/admin/breaker/{action}"),
            Some(json!({ "reason": "drill" })),
        );
        assert_eq!(code, 200, "{body}");
    };
    force("force-open");
    let (code, body) = queue(&node, ALICE, "charlie", 7);
    assert_eq!(code, 201, "{body}");
    let charlie = body["id"].as_u64().expect("id");
    std::fs::write(&list, "alpha\n").expect("list");
    reread(&node);
    let (code, body) = queue(&node, ALICE, "charlie", 1);
    assert_eq!(code, 403, "the re-read list is in force: {body}");
    let refused_before = destination_refusals(&node);
    force("force-close");
    common::wait_until("charlie held by the policy", WAIT, || {
        call(&node, VIEWER, "GET", "/admin/policy", None).1["held"]
            .as_array()
            .is_some_and(|held| held.len() == 1)
    });
    let (_, detail) = call(&node, VIEWER, "GET", "/admin/policy", None);
    assert_eq!(detail["held"][0]["id"], charlie, "{detail}");
    assert!(
        node_status(&node)["policy"].get("held").is_none(),
        "which disbursements wait, and where they pay, is not for /status"
    );
    let seen = ticks(&node);
    common::wait_until("ten more ticks", WAIT, || ticks(&node) >= seen + 10);
    assert_eq!(status_of(&node, charlie), "queued", "held, never signed");
    let text = metrics(&node);
    assert!(
        text.contains("treasury_disbursements_held_by_policy 1"),
        "{text}"
    );
    assert_eq!(
        destination_refusals(&node),
        refused_before + 1,
        "the held one is counted once, not at every tick: {text}"
    );

    // A broken file on SIGHUP keeps the list in force and says so.
    std::fs::write(&list, "alpha\ntwo words\n").expect("list");
    node.signal("HUP");
    common::wait_until("the reload error shown", WAIT, || {
        node_status(&node)["policy"]["destinations"]["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("line 2"))
    });
    assert_eq!(status_of(&node, charlie), "queued");

    // Charlie back on the list: released, paid once.
    std::fs::write(&list, "alpha\ncharlie\n").expect("list");
    reread(&node);
    wait_executed(&node, charlie);
    assert!(node_status(&node)["policy"]["destinations"]["reload_error"].is_null());
    node.stop_cleanly();
    assert_eq!(balances(dir.path(), &["charlie", "bravo"]), vec![7, 0]);
}
