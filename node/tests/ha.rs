//! High availability on a real etcd and a real anvil: two nodes share one store on etcd,
//! one leads and pays, the other serves the admin API; killing the leader with -9 hands
//! the executor to the standby within the lease, and every disbursement is paid exactly
//! once on chain.
#![cfg(feature = "etcd")]

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Anvil, NodeProcess, TREASURY_KEY, http_request, wait_until};

const TOKEN: &str = "ha-test-admin-token";
const PATIENCE: Duration = Duration::from_secs(120);
const LEASE_TTL_SECS: u64 = 2;

fn etcd() -> Option<etcdharness::Etcd> {
    etcdharness::single_for_test(module_path!())
}

/// A node's configuration: the EVM ledger on anvil, the store on etcd.
fn config(
    dir: &std::path::Path,
    name: &str,
    anvil: &Anvil,
    etcd: &etcdharness::Etcd,
) -> std::path::PathBuf {
    let key = dir.join("treasury.key");
    std::fs::write(&key, format!("{TREASURY_KEY}\n")).expect("key written");
    let endpoints: Vec<String> = etcd
        .endpoints()
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect();
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "ledger = \"evm\"\n\
         rpc_url = \"http://{rpc}\"\n\
         treasury_key_file = \"{key}\"\n\
         identity = \"{name}\"\n\
         admin_token = \"{TOKEN}\"\n\
         poll_interval_ms = 100\n\
         store = \"etcd\"\n\
         [etcd]\n\
         endpoints = [{endpoints}]\n\
         prefix = \"/ha-test/\"\n\
         lease_ttl_secs = {LEASE_TTL_SECS}\n\
         request_timeout_ms = 500\n\
         [evm]\n\
         request_timeout_ms = 10000\n\
         confirmations = 1\n",
        rpc = anvil.address,
        key = key.display(),
        endpoints = endpoints.join(", "),
    );
    std::fs::write(&path, text).expect("config written");
    path
}

fn call(node: &NodeProcess, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(Value::to_string);
    let (code, text) = http_request(
        &node.address,
        method,
        path,
        &[("Authorization", auth.as_str())],
        body.as_deref(),
    );
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn role(node: &NodeProcess) -> String {
    let (_, status) = call(node, "GET", "/status", None);
    status["ha"]["role"].as_str().unwrap_or("").to_owned()
}

fn status_of(node: &NodeProcess, id: u64) -> String {
    let (code, record) = call(node, "GET", &format!("/admin/disbursements/{id}"), None);
    assert_eq!(code, 200, "{record}");
    record["status"]["status"].as_str().unwrap_or("").to_owned()
}

#[test]
fn a_standby_takes_over_from_a_killed_leader_and_every_payment_lands_once() {
    let Some(etcd) = etcd() else { return };
    let anvil = Anvil::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nodes: Vec<Option<NodeProcess>> = ["a", "b"]
        .iter()
        .map(|name| {
            let config = config(dir.path(), name, &anvil, &etcd);
            Some(NodeProcess::start(
                &config,
                &dir.path().join(format!("{name}.db")),
            ))
        })
        .collect();
    let node = |nodes: &Vec<Option<NodeProcess>>, i: usize| -> String {
        role(nodes[i].as_ref().expect("running"))
    };
    wait_until("one node leads", PATIENCE, || {
        let roles = [node(&nodes, 0), node(&nodes, 1)];
        roles.iter().filter(|r| *r == "leader").count() == 1
            && roles.iter().filter(|r| *r == "standby").count() == 1
    });
    let leader = usize::from(node(&nodes, 0) != "leader");
    let standby = 1 - leader;
    let standby_node = nodes[standby].as_ref().expect("running");
    let (_, status) = call(standby_node, "GET", "/status", None);
    assert_eq!(status["ha"]["store"], "etcd", "{status}");
    assert_eq!(
        status["ha"]["leader"]["identity"],
        ["a", "b"][leader],
        "{status}"
    );
    assert_eq!(status["executor"]["running"], false, "{status}");
    // A standby's breaker is not the one in force: overrides go to the leader.
    let (code, answer) = call(
        standby_node,
        "POST",
        "/admin/breaker/force-open",
        Some(&json!({ "reason": "wrong node" })),
    );
    assert_eq!(code, 409, "{answer}");

    // Queued through the standby: the leader pays.
    let destinations: Vec<String> = (0..8).map(|i| format!("0x{:040x}", 0xa000 + i)).collect();
    let ids: Vec<u64> = destinations
        .iter()
        .enumerate()
        .map(|(i, destination)| {
            let body = json!({ "destination": destination, "amount": (1000 + i).to_string() });
            let (code, answer) = call(standby_node, "POST", "/admin/disbursements", Some(&body));
            assert_eq!(code, 201, "{answer}");
            answer["id"].as_u64().expect("id")
        })
        .collect();
    wait_until("the leader pays some", PATIENCE, || {
        ids.iter()
            .any(|id| status_of(standby_node, *id) == "executed")
    });

    // The leader's breaker is forced open: the standby shows it (read from the store).
    let leader_node = nodes[leader].as_ref().expect("running");
    let (code, answer) = call(
        leader_node,
        "POST",
        "/admin/breaker/force-open",
        Some(&json!({ "reason": "ha test: survives the failover" })),
    );
    assert_eq!(code, 200, "{answer}");
    wait_until("the standby mirrors the forced breaker", PATIENCE, || {
        let (_, status) = call(standby_node, "GET", "/status", None);
        status["breaker"]["forced"] == true && status["breaker"]["state"] == "open"
    });

    // kill -9 the leader: the standby leads within the lease, its breaker still forced open.
    let killed_at = Instant::now();
    let dead = nodes[leader].take().expect("running");
    dead.signal("KILL");
    let standby_node = nodes[standby].as_ref().expect("running");
    wait_until("the standby leads", PATIENCE, || {
        role(standby_node) == "leader"
    });
    let handover = killed_at.elapsed();
    eprintln!("handover after kill -9: {handover:?}");
    let (_, status) = call(standby_node, "GET", "/status", None);
    assert_eq!(
        status["breaker"]["forced"], true,
        "a forced-open breaker survives: {status}"
    );
    let (code, answer) = call(
        standby_node,
        "POST",
        "/admin/breaker/force-close",
        Some(&json!({ "reason": "ha test: pay the rest" })),
    );
    assert_eq!(code, 200, "the new leader takes overrides: {answer}");
    wait_until("every disbursement executed", PATIENCE, || {
        ids.iter()
            .all(|id| status_of(standby_node, *id) == "executed")
    });
    for (i, destination) in destinations.iter().enumerate() {
        assert_eq!(
            anvil.balance(destination),
            1000 + i as u128,
            "{destination} paid once"
        );
    }
    assert_eq!(
        anvil.tx_count("latest"),
        ids.len() as u64,
        "one nonce per payment"
    );
    let (_, status) = call(standby_node, "GET", "/status", None);
    assert!(
        status["ha"]["leader_changes"].as_u64() >= Some(1),
        "{status}"
    );
    // The metrics say the same: this node leads, and saw as many changes as /status.
    let (code, metrics) = http_request(&standby_node.address, "GET", "/metrics", &[], None);
    assert_eq!(code, 200);
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    assert_eq!(value("treasury_executor_leader "), Some(1), "{metrics}");
    assert_eq!(
        value("treasury_executor_leader_changes_total "),
        status["ha"]["leader_changes"].as_u64(),
        "{metrics}"
    );
    assert!(
        handover < Duration::from_secs(LEASE_TTL_SECS) + Duration::from_secs(5),
        "handover took {handover:?}"
    );
    drop(dead);
    nodes[standby].as_mut().expect("running").stop_cleanly();
}

/// Runs `node store ARGS` with `env`; the exit code and stderr.
fn store_command(args: &[&str], env: &[(&str, String)], stdin: &[u8]) -> (i32, String, Vec<u8>) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
        .arg("store")
        .args(args)
        .env_remove("TB_CONFIG")
        .env_remove("TB_STORE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node store");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout,
    )
}

/// A sled database moves into an empty etcd prefix with one command, all or nothing: a
/// second migration into the same prefix is refused, a damaged dump writes nothing, and
/// a node started on the prefix sees every record.
#[test]
fn a_sled_store_migrates_into_etcd_all_or_nothing() {
    let Some(etcd) = etcd() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sled_path = dir.path().join("governance.db");
    let ids: Vec<u64> = {
        let store = node::governance::GovStore::open(&sled_path).expect("sled");
        (0..30u32)
            .map(|i| {
                let new = node::governance::NewDisbursement {
                    destination: format!("dest-{i}"),
                    amount: u128::from(i) + 1,
                    memo: "migrated".into(),
                    activation_epoch: 0,
                    depends_on: vec![],
                    external_key: None,
                    asset: "native".into(),
                };
                store.queue(&new, 0).expect("queue").disbursement.id
            })
            .collect()
    };
    let env = |prefix: &str| {
        vec![
            ("TB_GOVERNANCE_DB_PATH", sled_path.display().to_string()),
            ("TB_ETCD_ENDPOINTS", etcd.endpoints().join(",")),
            ("TB_ETCD_PREFIX", prefix.to_owned()),
        ]
    };
    let (code, stderr, _) = store_command(&["migrate", "--to", "etcd"], &env("/mig/"), b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("migrated"), "{stderr}");
    let (code, stderr, _) = store_command(&["migrate", "--to", "etcd"], &env("/mig/"), b"");
    assert_eq!(code, 1, "a second migration into the same prefix: {stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");

    // export | import, with the dump damaged: nothing is written, so a good one goes in after.
    let (code, stderr, dump) = store_command(&["export"], &env("/unused/"), b"");
    assert_eq!(code, 0, "{stderr}");
    let text = String::from_utf8(dump.clone()).expect("text");
    let truncated: String = text.lines().take(10).map(|l| format!("{l}\n")).collect();
    let (code, stderr, _) = store_command(&["import"], &env("/copy/"), truncated.as_bytes());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    let (code, stderr, _) = store_command(&["import"], &env("/copy/"), &dump);
    assert_eq!(code, 0, "a damaged dump left nothing behind: {stderr}");

    // A node on the migrated prefix (the dev ledger, alone) sees every disbursement.
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "admin_token = \"{TOKEN}\"\nidentity = \"migrated\"\npoll_interval_ms = 100\n\
             store = \"etcd\"\n[etcd]\nendpoints = [\"{}\"]\nprefix = \"/mig/\"\n\
             lease_ttl_secs = 2\nrequest_timeout_ms = 500\n",
            etcd.endpoints()[0]
        ),
    )
    .expect("config");
    let mut node = NodeProcess::start(&config, &dir.path().join("dev-chain.db"));
    for id in &ids {
        let (code, record) = call(&node, "GET", &format!("/admin/disbursements/{id}"), None);
        assert_eq!(code, 200, "{record}");
        assert_eq!(record["memo"], "migrated", "{record}");
    }
    node.stop_cleanly();
}

/// A node configured for an etcd it cannot reach serves `/healthz` (503) and `/status`
/// saying so, and pays nothing; once etcd is up it leads and pays.
#[test]
fn a_node_that_cannot_reach_etcd_says_so_and_pays_nothing() {
    let Some(mut etcd) = etcd() else { return };
    etcd.kill(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "admin_token = \"{TOKEN}\"\nidentity = \"cut-off\"\npoll_interval_ms = 100\n\
             store = \"etcd\"\n[etcd]\nendpoints = [\"{}\"]\nprefix = \"/cut-off/\"\n\
             lease_ttl_secs = 2\nrequest_timeout_ms = 300\n",
            etcd.endpoints()[0]
        ),
    )
    .expect("config");
    let mut node = NodeProcess::start(&config, &dir.path().join("dev-chain.db"));
    wait_until("the node says etcd is unreachable", PATIENCE, || {
        role(&node) == "unavailable"
    });
    let (code, text) = http_request(&node.address, "GET", "/healthz", &[], None);
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("store unavailable"), "{text}");
    let (_, status) = call(&node, "GET", "/status", None);
    assert_eq!(status["executor"]["running"], false, "{status}");
    assert!(
        status["ha"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    // The admin API says so at once rather than waiting out the store's timeouts.
    let body =
        json!({ "destination": "0x00000000000000000000000000000000000000aa", "amount": "5" });
    let (code, answer) = call(&node, "POST", "/admin/disbursements", Some(&body));
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("unavailable")),
        "{answer}"
    );

    etcd.restart(0).expect("etcd back");
    wait_until("the node leads once etcd is back", PATIENCE, || {
        role(&node) == "leader"
    });
    let (code, _) = http_request(&node.address, "GET", "/healthz", &[], None);
    assert_eq!(code, 200);
    let body =
        json!({ "destination": "0x00000000000000000000000000000000000000aa", "amount": "5" });
    let (code, answer) = call(&node, "POST", "/admin/disbursements", Some(&body));
    assert_eq!(code, 201, "{answer}");
    let id = answer["id"].as_u64().expect("id");
    wait_until("the disbursement is paid", PATIENCE, || {
        status_of(&node, id) == "executed"
    });
    node.stop_cleanly();
}
