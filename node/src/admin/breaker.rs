//! `/admin/breaker…`: the breaker's state, and the operator's overrides.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Json;
use serde_json::{Value, json};

use super::body::ReasonBody;
use super::{ApiError, Operator};
use crate::app::App;
use crate::governance::{CircuitBreaker, Transition};

/// `GET /admin/breaker`.
pub(super) async fn breaker_status(_: Operator, State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.status()["breaker"].take())
}

/// `POST /admin/breaker/{force-open|force-close|reset}`.
pub(super) async fn override_handler(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (name, apply): (&str, fn(&CircuitBreaker) -> Transition) = match action.as_str() {
        "force-open" => ("breaker.force_open", CircuitBreaker::force_open),
        "force-close" => ("breaker.force_close", CircuitBreaker::force_close),
        "reset" => ("breaker.reset", CircuitBreaker::reset),
        other => {
            return Err(ApiError::not_found(format!(
                "no breaker action {other:?}: force-open, force-close or reset"
            )));
        }
    };
    let reason = ReasonBody::reason(&body)?;
    override_breaker(&app, &operator, name, &reason, || apply(&app.breaker))
}

/// Applies an override, then persists the breaker and its audit record in one
/// transaction, flushed (a crash must not forget it). If that fails, the override is
/// undone in memory: memory, disk and the audit log agree, and the call answers 500.
fn override_breaker(
    app: &App,
    operator: &Operator,
    action: &str,
    reason: &str,
    apply: impl FnOnce() -> Transition,
) -> Result<Json<Value>, ApiError> {
    let before = app.breaker.snapshot();
    let transition = apply();
    let audit = operator.audit(reason);
    if let Err(error) =
        app.store
            .save_breaker_audited(&app.breaker, &audit, action, &transition.to_string())
    {
        app.breaker.restore(&before);
        app.publish_breaker();
        return Err(ApiError::internal(format!(
            "the override was not saved, so it was undone: {error}"
        )));
    }
    app.publish_breaker();
    // Debug-formatted: a reason is free text, and a newline in it must not start a
    // forged log line.
    tracing::warn!(actor = %operator.actor, ?reason, %transition, "operator override");
    Ok(Json(json!({
        "transition": transition.to_string(),
        "breaker": app.status()["breaker"].take(),
    })))
}
