//! The executor's side of the admin API: what is in flight, and the decisions it waits
//! for (it never guesses them). A decision on a hold is accepted only while the executor
//! holds on exactly that question (409 otherwise); it is recorded, audited with everything
//! the operator saw, and applied by the executor at its next tick if, reading the chain
//! again, it finds the same question (202: `/status` shows it waiting; the audit log says
//! when it was applied, or dropped because the hold lifted meanwhile).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::audit::now_ms;
use super::body::{AdoptBody, MarkPaidBody, ResolveBody, view};
use super::{ApiError, Operator};
use crate::app::App;
use crate::governance::store::describe_hold;
use crate::governance::{Action, Decision, Hold};

/// `GET /admin/intents`: every intent in flight, lowest nonce first, with its attempts.
pub(super) async fn intents(
    _: Operator,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let intents = app.store.intents().map_err(ApiError::internal)?;
    Ok(Json(json!({ "intents": intents })))
}

/// `POST /admin/intents/{nonce}/resolve`: the operator's finding on a nonce the chain
/// spent without any of its transactions, or with one that did not pay what it was signed
/// to pay (a token's mismatch). `paid` will mark the disbursement Executed
/// (with the reason, and the transaction if given); `not_paid` will queue it again for a
/// fresh nonce (or cancel it, if a cancellation was asked).
pub(super) async fn resolve(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(nonce): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (resolution, reason) = ResolveBody::parse(&body)?;
    let hold = match app.hold() {
        Some(
            hold @ (Hold::ForeignNonce { nonce: held, .. } | Hold::Mismatch { nonce: held, .. }),
        ) if held == nonce => hold,
        other => {
            return Err(ApiError::conflict(format!(
                "the executor does not hold on nonce {nonce} ({})",
                describe_hold(other.as_ref())
            )));
        }
    };
    let detail = format!("nonce {nonce}: {}", json!(resolution));
    decide(
        &app,
        &operator,
        hold,
        Action::Resolve { resolution },
        reason,
        "intent.resolve",
        detail,
    )
}

/// `POST /admin/executor/adopt-nonce`: after a nonce drift, go on from the ledger's nonce
/// as the executor saw it (or the one given).
pub(super) async fn adopt_nonce(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (nonce, reason) = AdoptBody::parse(&body)?;
    let hold = match app.hold() {
        Some(hold @ Hold::NonceDrift { .. }) => hold,
        other => {
            return Err(ApiError::conflict(format!(
                "the executor does not hold on a nonce drift ({})",
                describe_hold(other.as_ref())
            )));
        }
    };
    let detail = format!(
        "{hold}: adopt {}",
        nonce.map_or("the ledger's".into(), |n| n.to_string())
    );
    decide(
        &app,
        &operator,
        hold,
        Action::AdoptNonce { nonce },
        reason,
        "executor.adopt_nonce",
        detail,
    )
}

/// Records a decision for the executor, audits it, answers 202.
fn decide(
    app: &App,
    operator: &Operator,
    hold: Hold,
    action: Action,
    reason: String,
    audit_action: &str,
    detail: String,
) -> Result<Response, ApiError> {
    let decision = Decision {
        hold,
        action,
        reason,
        actor: operator.actor.clone(),
        at_ms: now_ms(),
    };
    app.store
        .decide_audited(&decision, operator.note.as_deref(), audit_action, &detail)?;
    app.store.flush().map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "decision": decision,
            "note": "the executor applies it at its next tick if it still holds on this question",
        })),
    )
        .into_response())
}

/// `POST /admin/disbursements/{id}/mark-paid`: a queued disbursement the chain shows
/// paid (by `tx_hash`) though the store does not know it (a restored backup). Only while
/// the executor holds on a nonce drift.
pub(super) async fn mark_paid(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (tx_hash, reason) = MarkPaidBody::parse(&body)?;
    let record = app
        .store
        .mark_paid_audited(id, &tx_hash, &operator.audit(&reason))?;
    app.store.flush().map_err(ApiError::internal)?;
    Ok(Json(view(&record)))
}
