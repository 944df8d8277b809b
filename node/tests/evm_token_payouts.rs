//! Token payouts through the real node on anvil: a mix of native and token
//! disbursements is paid, each destination holding exactly its amounts per asset; an
//! unknown asset is a 400; a token that takes a fee holds the executor once its block is
//! final, and an operator's `paid` resolution settles it with that transaction.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Anvil, DESTINATION, NodeProcess, TREASURY_KEY, deploy_token, http_request, token_balance,
    wait_until,
};
use serde_json::{Value, json};

const TOKEN: &str = "evm-token-payouts-admin-token";
const WAIT: Duration = Duration::from_secs(120);
const SUPPLY: u128 = 10_000_000;

fn configure(dir: &Path, anvil: &Anvil, tokens: &[(&str, &str)]) -> std::path::PathBuf {
    std::fs::write(dir.join("treasury.key"), TREASURY_KEY).expect("key");
    let mut text = format!(
        "ledger = \"evm\"\nrpc_url = \"http://{}\"\ntreasury_key_file = {:?}\n\
         admin_token = \"{TOKEN}\"\npoll_interval_ms = 100\n[evm]\nconfirmations = 2\n\
         bump_after_blocks = 1000\n",
        anvil.address,
        dir.join("treasury.key"),
    );
    for (symbol, address) in tokens {
        text.push_str(&format!(
            "[[evm.tokens]]\nsymbol = \"{symbol}\"\naddress = \"{address}\"\ndecimals = 18\n"
        ));
    }
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("config");
    path
}

fn call(node: &NodeProcess, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = body.map(|b| b.to_string());
    let (code, text) = http_request(&node.address, method, path, &headers, body.as_deref());
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn queue(node: &NodeProcess, destination: &str, amount: u128, asset: &str) -> u64 {
    let body = json!({ "destination": destination, "amount": amount.to_string(), "asset": asset });
    let (code, answer) = call(node, "POST", "/admin/disbursements", Some(body));
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["asset"], asset, "{answer}");
    answer["id"].as_u64().expect("id")
}

fn status_of(node: &NodeProcess, id: u64) -> Value {
    call(node, "GET", &format!("/admin/disbursements/{id}"), None).1["status"].clone()
}

/// Mines a block now and then, so that payments reach their depth.
fn mine(anvil: &Anvil) {
    anvil.call("evm_mine", json!([]));
}

fn destination(i: u64) -> String {
    format!("0x{:040x}", 0x70c3_0000_u64 + i)
}

#[test]
fn a_mix_of_native_and_token_payouts_is_paid_exactly_per_asset() {
    let anvil = Anvil::start(&[]);
    let grt = deploy_token(&anvil, "StandardToken", "GRT", SUPPLY, None);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeProcess::start(
        &configure(dir.path(), &anvil, &[("GRT", &grt)]),
        &dir.path().join("governance.db"),
    );
    let (code, answer) = call(
        &node,
        "POST",
        "/admin/disbursements",
        Some(json!({ "destination": DESTINATION, "amount": "1", "asset": "DAI" })),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("DAI") && e.contains("GRT")),
        "{answer}"
    );

    let mut ids = vec![];
    for i in 0..6 {
        let asset = if i % 2 == 0 { "native" } else { "GRT" };
        ids.push((
            i,
            asset,
            queue(&node, &destination(i), 1_000 + u128::from(i), asset),
        ));
    }
    wait_until("every payout executed", WAIT, || {
        mine(&anvil);
        ids.iter()
            .all(|(_, _, id)| status_of(&node, *id)["status"] == "executed")
    });
    let metrics = http_request(&node.address, "GET", "/metrics", &[], None).1;
    for asset in ["native", "GRT"] {
        let series =
            format!("treasury_submissions_total{{asset=\"{asset}\",result=\"accepted\"}} ");
        let accepted: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {metrics}"));
        assert!(
            accepted >= 3.0,
            "three {asset} payouts accepted: {accepted}"
        );
    }
    let (_, status) = call(&node, "GET", "/status", None);
    let treasury = &status["balance"]["treasury"];
    assert!(
        treasury["native"].is_string() && treasury["GRT"].is_string(),
        "the balances read before paying: {status}"
    );
    for (i, asset, _) in &ids {
        let (ether, tokens) = (
            anvil.balance(&destination(*i)),
            token_balance(&anvil, &grt, &destination(*i)),
        );
        let amount = 1_000 + u128::from(*i);
        match *asset {
            "native" => assert_eq!((ether, tokens), (amount, 0), "destination {i}"),
            _ => assert_eq!((ether, tokens), (0, amount), "destination {i}"),
        }
    }
    node.stop_cleanly();
}

#[test]
fn a_fee_on_transfer_token_holds_until_an_operator_resolves_it() {
    let anvil = Anvil::start(&[]);
    let fee = deploy_token(&anvil, "FeeToken", "FEE", SUPPLY, Some(100));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeProcess::start(
        &configure(dir.path(), &anvil, &[("FEE", &fee)]),
        &dir.path().join("governance.db"),
    );
    let id = queue(&node, DESTINATION, 10_000, "FEE");
    let held = || call(&node, "GET", "/status", None).1["executor"]["hold"].clone();
    wait_until("the mismatch hold", WAIT, || {
        mine(&anvil);
        held()["kind"] == "mismatch"
    });
    let hold = held();
    assert_eq!(hold["id"], id, "{hold}");
    assert!(
        hold["reason"].as_str().is_some_and(|r| r.contains("9900")),
        "{hold}"
    );
    // Held: never counted as paid, never paid again.
    assert_ne!(status_of(&node, id)["status"], "executed");
    assert_eq!(token_balance(&anvil, &fee, DESTINATION), 9_900);
    assert_eq!(anvil.tx_count("latest"), 1);

    let nonce = hold["nonce"].as_u64().expect("nonce");
    // Naming the hold's own transaction keeps its block in the record.
    let (code, answer) = call(
        &node,
        "POST",
        &format!("/admin/intents/{nonce}/resolve"),
        Some(json!({
            "outcome": "paid",
            "reason": "the grantee accepts the 1% fee",
            "tx_hash": hold["tx_hash"],
        })),
    );
    assert_eq!(code, 202, "{answer}");
    let tx_hash = hold["tx_hash"].clone();
    wait_until("executed by the resolution", WAIT, || {
        status_of(&node, id)["status"] == "executed"
    });
    assert_eq!(status_of(&node, id)["tx_hash"], tx_hash);
    assert_eq!(status_of(&node, id)["block"], hold["block"]);
    assert_eq!(anvil.tx_count("latest"), 1, "nothing paid again");
    node.stop_cleanly();
}
