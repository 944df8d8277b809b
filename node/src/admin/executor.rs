//! The executor's side of the admin API: what is in flight, and the decisions it waits
//! for (it never guesses them). Each decision is accepted only while the executor holds
//! on exactly that question; it changes the store in one transaction and is audited with
//! everything the operator saw.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Json;
use serde_json::{Value, json};

use super::audit::audit;
use super::body::{AdoptBody, ResolveBody, view};
use super::{ApiError, Operator};
use crate::app::App;
use crate::governance::{Hold, RequestError, Resolution};

/// `GET /admin/intents`: every intent in flight, lowest nonce first, with its attempts.
pub(super) async fn intents(
    _: Operator,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let intents = app.store.intents().map_err(ApiError::internal)?;
    Ok(Json(json!({ "intents": intents })))
}

/// `POST /admin/intents/{nonce}/resolve`: the operator's finding on a nonce the chain
/// spent without any of its transactions. `paid` marks the disbursement Executed (with
/// the reason, and the transaction if given); `not_paid` queues it again for a fresh
/// nonce. 409 unless the executor holds on this nonce.
pub(super) async fn resolve(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(nonce): Path<u64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (resolution, reason) = ResolveBody::parse(&body)?;
    let held = app.hold();
    let record = match app.store.resolve_intent(nonce, &resolution, &reason) {
        Ok(record) => record,
        Err(RequestError::Conflict(message)) => return Err(ApiError::conflict(message)),
        Err(error) => return Err(ApiError::internal(error)),
    };
    app.store.flush().map_err(ApiError::internal)?;
    let outcome = match &resolution {
        Resolution::Paid {
            tx_hash: Some(hash),
        } => format!("paid by {hash}"),
        Resolution::Paid { tx_hash: None } => "paid".to_owned(),
        Resolution::NotPaid => "not paid: queued again for a fresh nonce".to_owned(),
    };
    let attempts = match &held {
        Some(Hold::ForeignNonce { attempts, .. }) => attempts.join(", "),
        _ => String::new(),
    };
    audit(
        &app,
        &operator,
        "intent.resolve",
        &reason,
        &format!(
            "nonce {nonce}, disbursement {}: {outcome} (its transactions: {attempts})",
            record.id
        ),
    )?;
    Ok(Json(json!({ "disbursement": view(&record) })))
}

/// `POST /admin/executor/adopt-nonce`: after a nonce drift, go on from the ledger's nonce
/// as the executor saw it (or the one given). 409 unless the executor holds on a drift
/// with nothing in flight.
pub(super) async fn adopt_nonce(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (nonce, reason) = AdoptBody::parse(&body)?;
    let (from, to) = match app.store.adopt_nonce(nonce) {
        Ok(adopted) => adopted,
        Err(RequestError::Conflict(message)) => return Err(ApiError::conflict(message)),
        Err(error) => return Err(ApiError::internal(error)),
    };
    app.store.flush().map_err(ApiError::internal)?;
    audit(
        &app,
        &operator,
        "executor.adopt_nonce",
        &reason,
        &format!("next nonce {from} -> {to}"),
    )?;
    Ok(Json(json!({ "from": from, "to": to })))
}
