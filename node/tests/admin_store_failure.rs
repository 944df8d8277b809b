//! An operator's change is on disk with its audit record, or neither is, and memory
//! agrees: the store is made to fail (the in-memory engine's injected failures, the
//! store's own error path) under the admin API.

mod common;

use std::sync::Arc;

use node::app::App;
use node::config::NodeConfig;
use node::governance::store::engine::MemoryKeySpace;
use node::governance::testing::ScriptedLedger;
use node::governance::{CircuitBreaker, CircuitState, DisbursementStatus, GovStore};
use serde_json::Value;
use telemetry::TreasuryMetrics;

const TOKEN: &str = "store-failure-admin-token-0123456789";

/// The admin API over a store on `space`, served on a loopback port.
struct Served {
    app: Arc<App>,
    address: String,
    _runtime: tokio::runtime::Runtime,
}

fn serve(space: Arc<MemoryKeySpace>) -> Served {
    let config = NodeConfig {
        admin_tokens: vec![
            node::config::AdminToken::inline("admin_token", TOKEN.into()).expect("a token"),
        ],
        ..NodeConfig::default()
    };
    let breaker = Arc::new(CircuitBreaker::new(config.circuit_breaker.clone()));
    let app = Arc::new(App::new(
        config,
        breaker,
        GovStore::with_space(space),
        Arc::new(ScriptedLedger::default()),
        serde_json::json!({ "kind": "scripted" }),
        TreasuryMetrics::new(),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let router = node::http::router(Arc::clone(&app));
    runtime.spawn(async move { axum_serve(listener, router).await });
    Served {
        app,
        address,
        _runtime: runtime,
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    let _ = axum::serve(listener, router).await;
}

fn post(served: &Served, path: &str, body: &str) -> (u16, String) {
    let bearer = format!("Bearer {TOKEN}");
    common::http_request(
        &served.address,
        "POST",
        path,
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
}

fn audit_len(store: &GovStore) -> usize {
    store.audit(None, 100).expect("audit").len()
}

#[test]
fn a_failed_save_undoes_the_breaker_override_and_audits_nothing() {
    let space = Arc::new(MemoryKeySpace::new());
    let served = serve(Arc::clone(&space));
    let store = served.app.store.clone();

    space.fail_applies(1);
    let (code, body) = post(
        &served,
        "/admin/breaker/force-open",
        r#"{"reason":"rpc maintenance"}"#,
    );
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("undone"), "{body}");
    assert_eq!(
        served.app.breaker.state(),
        CircuitState::Closed,
        "memory: not forced"
    );
    assert!(!served.app.breaker.is_forced());
    assert_eq!(
        store.breaker_snapshot().expect("read"),
        None,
        "disk: nothing saved"
    );
    assert_eq!(audit_len(&store), 0, "audit: nothing recorded");

    let (code, body) = post(
        &served,
        "/admin/breaker/force-open",
        r#"{"reason":"rpc maintenance"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(served.app.breaker.is_forced());
    let saved = store.breaker_snapshot().expect("read").expect("saved");
    assert_eq!(saved.state, CircuitState::Open);
    let log = store.audit(None, 10).expect("audit");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "breaker.force_open");
}

#[test]
fn a_failed_cancel_or_queue_leaves_the_store_and_the_log_as_they_were() {
    let space = Arc::new(MemoryKeySpace::new());
    let served = serve(Arc::clone(&space));
    let store = served.app.store.clone();
    let queue = r#"{"destination":"0x00000000000000000000000000000000000000aa","amount":"5","memo":"grant"}"#;

    space.fail_applies(1);
    let (code, body) = post(&served, "/admin/disbursements", queue);
    assert_eq!(code, 500, "{body}");
    assert!(
        store.list(None, 10).expect("list").is_empty(),
        "nothing queued"
    );
    assert_eq!(audit_len(&store), 0);

    let (code, body) = post(&served, "/admin/disbursements", queue);
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["id"]
        .as_u64()
        .expect("id");
    assert_eq!(audit_len(&store), 1, "queued with its audit record");

    space.fail_applies(1);
    let (code, body) = post(
        &served,
        &format!("/admin/disbursements/{id}/cancel"),
        r#"{"reason":"duplicate"}"#,
    );
    assert_eq!(code, 500, "{body}");
    let record = store.get(id).expect("get").expect("exists");
    assert_eq!(record.status, DisbursementStatus::Queued, "not cancelled");
    assert_eq!(
        audit_len(&store),
        1,
        "no audit record of a cancel that did not happen"
    );

    let (code, body) = post(
        &served,
        &format!("/admin/disbursements/{id}/cancel"),
        r#"{"reason":"duplicate"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let log = store.audit(None, 10).expect("audit");
    assert_eq!(
        log.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["disbursement.queue", "disbursement.cancel"]
    );
}
