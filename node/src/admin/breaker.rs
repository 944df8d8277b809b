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
    let Some(store) = app.leader_store() else {
        // A standby's breaker is not the one in force, and its save would overwrite the
        // leader's: the override belongs on the leader.
        let view = app.ha_view();
        return Err(ApiError::conflict(format!(
            "this node is {} and its executor is not running: send the override to the \
             leader ({})",
            view.role.as_str(),
            view.leader
                .as_ref()
                .map_or_else(|| "none right now".to_owned(), ToString::to_string)
        )));
    };
    override_breaker(&app, &store, &operator, name, &reason, apply)
}

/// Applies an override, saved with its audit record in one transaction and flushed (a
/// crash must not forget it). If the save fails, the override is undone in memory:
/// memory, disk and the audit log agree, and the call answers 500. If only the flush
/// fails, it stands, recorded, and the call answers 500 saying so.
fn override_breaker(
    app: &App,
    store: &crate::governance::GovStore,
    operator: &Operator,
    action: &str,
    reason: &str,
    apply: fn(&CircuitBreaker) -> Transition,
) -> Result<Json<Value>, ApiError> {
    let audit = operator.audit(reason);
    let outcome = store.override_breaker(&app.breaker, apply, &audit, action);
    app.publish_breaker();
    let transition = outcome.map_err(ApiError::internal)?;
    // Debug-formatted: a reason is free text, and a newline in it must not start a
    // forged log line.
    tracing::warn!(actor = %operator.actor, ?reason, %transition, "operator override");
    Ok(Json(json!({
        "transition": transition.to_string(),
        "breaker": app.status()["breaker"].take(),
    })))
}
