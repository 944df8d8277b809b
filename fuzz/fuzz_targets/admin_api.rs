//! Fuzzes the admin API's request bodies through the node's real router
//! (`node::http::router`, driven with tower's `oneshot` on a current-thread runtime), with
//! a valid bearer token, on a dev-ledger node whose store holds, for each input afresh:
//! disbursement 0 (queued), 1 (queued, waiting for 0), 2 (cancelled, external key
//! `grant-2`) and 3 (awaiting approval), under a spending policy (two approvals from
//! 5,000, at most 100,000 each and 1,000,000 a day), so that the approve routes and the
//! policy's refusals are reached.
//!
//! Input: the first line is the path of a `POST` (e.g. `/admin/disbursements`,
//! `/admin/disbursements/0/cancel`, `/admin/disbursements/3/approve`,
//! `/admin/disbursements/approve`, `/admin/breaker/force-open`); an optional second line
//! `X-Actor: NAME` sets that header; the rest is the body.
//!
//! Invariants: no panic, every response's status is below 500, and the store still reads
//! back (whatever was written decodes).

#![no_main]

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use governance::policy::{AssetLimits, NATIVE, Policy};
use governance::{CircuitBreaker, GovStore, NewDisbursement};
use libfuzzer_sys::fuzz_target;
use node::app::App;
use node::config::NodeConfig;
use node::ledger::dev::{DevLedger, DevLedgerConfig};
use telemetry::TreasuryMetrics;
use tower::ServiceExt;
use treasury_fuzz::store::clear;

const TOKEN: &str = "fuzz-admin-token-0123456789";

struct Node {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    router: Router,
}

/// Built once per process, as `node/src/main.rs` builds it (without the executor).
static NODE: LazyLock<Node> = LazyLock::new(|| {
    let config = NodeConfig {
        admin_tokens: vec![
            node::config::AdminToken::inline("admin_token", TOKEN.into()).expect("a token"),
        ],
        ..NodeConfig::default()
    };
    let store = GovStore::open_temporary().expect("a temporary store");
    store
        .set_policy(Policy {
            approvals_required: 2,
            limits: [(
                NATIVE.to_owned(),
                AssetLimits {
                    max_amount: Some(100_000),
                    daily_limit: Some(1_000_000),
                    approval_threshold: Some(5_000),
                },
            )]
            .into(),
            destinations: None,
        })
        .expect("the policy");
    let ledger = DevLedger::open(
        store.aux_tree("dev_ledger").expect("the dev ledger's tree"),
        DevLedgerConfig::default(),
    )
    .expect("the dev ledger");
    let breaker = Arc::new(CircuitBreaker::new(config.circuit_breaker.clone()));
    let app = Arc::new(App::new(
        config,
        breaker,
        store,
        Arc::new(ledger),
        serde_json::json!({ "kind": "dev" }),
        TreasuryMetrics::new(),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let router = node::http::router(Arc::clone(&app));
    Node {
        runtime,
        app,
        router,
    }
});

fuzz_target!(|data: &[u8]| {
    let node = &*NODE;
    reset(&node.app);
    let mut lines = data.splitn(2, |&b| b == b'\n');
    let path = lines.next().unwrap_or_default();
    let mut body = lines.next().unwrap_or_default();
    let mut request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(rest) = body.strip_prefix(b"X-Actor: ") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        request = request.header("x-actor", &rest[..end]);
        body = rest.get(end + 1..).unwrap_or_default();
    }
    // A path or header the HTTP layer cannot carry never reaches the node.
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let response = node
        .runtime
        .block_on(node.router.clone().oneshot(request))
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    if status.is_server_error() {
        let body = node
            .runtime
            .block_on(axum::body::to_bytes(response.into_body(), 64 * 1024))
            .unwrap_or_default();
        panic!(
            "POST {} answered {status}: {}",
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(&body)
        );
    }
    let store = &node.app.store;
    if let Err(error) = store
        .list(None, 1_000)
        .and_then(|_| store.audit(None, 1_000))
    {
        panic!("the store no longer reads back: {error}");
    }
});

/// The same state before every input: a closed breaker and four disbursements.
fn reset(app: &App) {
    let store = &app.store;
    clear(store);
    app.breaker.reset();
    let new = |depends_on: Vec<u64>, external_key: Option<&str>| NewDisbursement {
        destination: "grantee-1".into(),
        amount: 1_000,
        memo: "grant".into(),
        activation_epoch: 0,
        depends_on,
        external_key: external_key.map(str::to_owned),
        asset: "native".into(),
    };
    store
        .queue(&new(vec![], None), 0)
        .and_then(|_| store.queue_batch(&[new(vec![0], None), new(vec![], Some("grant-2"))], 0))
        .expect("queue the seed disbursements");
    store.cancel(2, "seed").expect("cancel disbursement 2");
    let mut big = new(vec![], None);
    big.amount = 10_000;
    store.queue(&big, 0).expect("queue disbursement 3 (awaiting approval)");
}
