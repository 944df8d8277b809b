//! The HTTP surface: `GET /healthz`, `GET /status`, `GET /metrics` (with the `telemetry`
//! feature), and the admin API under `/admin/` (see `admin/mod.rs`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
#[cfg(feature = "telemetry")]
use axum::http::{StatusCode, header};
use axum::response::Json;
#[cfg(feature = "telemetry")]
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;

/// The node's routes.
pub fn router(app: Arc<App>) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .merge(
            crate::admin::routes().layer(axum::middleware::from_fn_with_state(
                Arc::clone(&app),
                refuse_while_unavailable,
            )),
        );
    #[cfg(feature = "telemetry")]
    let router = router.route("/metrics", get(metrics));
    router.with_state(app)
}

/// Liveness: the process serves HTTP. (A halted executor is reported by `/status` and the
/// `treasury_executor_halted` gauge, not here: restarting does not fix its cause.) With the
/// store on etcd, a node that cannot reach it answers 503 saying so: it pays nothing and
/// cannot take over.
async fn healthz(State(app): State<Arc<App>>) -> (axum::http::StatusCode, String) {
    let view = app.ha_view();
    match view.role {
        crate::ha::RoleKind::Unavailable => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "store unavailable: {}\n",
                view.error.as_deref().unwrap_or("unknown")
            ),
        ),
        _ => (axum::http::StatusCode::OK, "ok\n".to_owned()),
    }
}

/// With the store on etcd out of reach, the admin API answers 503 at once, naming why,
/// instead of holding a worker for every store call's timeout (the workers also serve
/// `/healthz` and `/status`).
async fn refuse_while_unavailable(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let view = app.ha_view();
    if view.role == crate::ha::RoleKind::Unavailable {
        let reason = format!(
            "the store is unavailable, so this node can neither read nor change it: {}",
            view.error.as_deref().unwrap_or("unknown")
        );
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": reason })),
        )
            .into_response();
    }
    next.run(request).await
}

async fn status(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.status())
}

#[cfg(feature = "telemetry")]
async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.publish_breaker();
    match app.metrics.render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not compiled in\n").into_response(),
    }
}
