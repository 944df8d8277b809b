//! `/admin/disbursements…`: queue (one or a proposal's batch), list, show, cancel.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::audit::{audit, now_ms};
use super::body::{BatchBody, Page, QueueBody, ReasonBody, parse, view};
use super::{ApiError, Operator};
use crate::app::App;
use crate::governance::Cancellation;

/// `POST /admin/disbursements`.
pub(super) async fn queue(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: QueueBody = parse(&body)?;
    let request = body.request(&app)?;
    let queued = app.store.queue(&request, now_ms())?;
    app.store.flush().map_err(ApiError::internal)?;
    let disbursement = &queued.disbursement;
    let status = if queued.created {
        let detail = format!(
            "disbursement {}: {} to {}",
            disbursement.id, disbursement.amount, disbursement.destination
        );
        audit(
            &app,
            &operator,
            "disbursement.queue",
            &disbursement.memo,
            &detail,
        )?;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(disbursement))).into_response())
}

/// `POST /admin/disbursements/batch`: a proposal's payouts, queued all or none in one
/// transaction and one flush. An invalid item is named by its index; an external key
/// already queued yields the existing disbursement. One audit record for the batch.
pub(super) async fn queue_batch(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let BatchBody {
        disbursements,
        reason,
    } = parse(&body)?;
    if disbursements.is_empty() {
        return Err(ApiError::bad_request("disbursements: the batch is empty"));
    }
    let requests = disbursements
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            body.request(&app).map_err(|ApiError(status, reason)| {
                ApiError(status, format!("disbursements[{index}]: {reason}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let queued = app.store.queue_batch(&requests, now_ms())?;
    app.store.flush().map_err(ApiError::internal)?;
    let created: Vec<u64> = queued
        .iter()
        .filter(|q| q.created)
        .map(|q| q.disbursement.id)
        .collect();
    let total: u128 = queued
        .iter()
        .filter(|q| q.created)
        .map(|q| q.disbursement.amount)
        .fold(0, u128::saturating_add);
    let status = match (created.first(), created.last()) {
        (Some(first), Some(last)) => {
            let detail = format!(
                "disbursements {first}..={last} ({} created, {} already queued), {total} in all",
                created.len(),
                queued.len() - created.len()
            );
            audit(
                &app,
                &operator,
                "disbursement.queue_batch",
                &reason,
                &detail,
            )?;
            StatusCode::CREATED
        }
        _ => StatusCode::OK,
    };
    let views: Vec<Value> = queued.iter().map(|q| view(&q.disbursement)).collect();
    Ok((
        status,
        Json(json!({ "created": created.len(), "disbursements": views })),
    )
        .into_response())
}

/// `GET /admin/disbursements`.
pub(super) async fn list(
    _: Operator,
    State(app): State<Arc<App>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let disbursements = app
        .store
        .list(page.after, page.limit())
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "disbursements": disbursements.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/disbursements/{id}`.
pub(super) async fn show(
    _: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    match app.store.get(id).map_err(ApiError::internal)? {
        Some(disbursement) => Ok(Json(view(&disbursement))),
        None => Err(ApiError::not_found(format!("disbursement {id} not found"))),
    }
}

/// `POST /admin/disbursements/{id}/cancel`. A queued disbursement is cancelled at once
/// (200). A staged or submitted one may already be out there, bound to its nonce: the
/// executor replaces it with a cancellation at that nonce, and it becomes Cancelled only
/// if the cancellation is what lands (202, its status says `cancelling`; asking again
/// changes nothing). One in a block, executed or cancelled: 409.
pub(super) async fn cancel(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reason = ReasonBody::reason(&body)?;
    let outcome = app.store.cancel(id, &reason)?;
    app.store.flush().map_err(ApiError::internal)?;
    let (action, status, record) = match &outcome {
        Cancellation::Done(record) => ("disbursement.cancel", StatusCode::OK, record),
        Cancellation::Replacing(record) => (
            "disbursement.cancel_by_replacement",
            StatusCode::ACCEPTED,
            record,
        ),
    };
    audit(
        &app,
        &operator,
        action,
        &reason,
        &format!("disbursement {id}"),
    )?;
    Ok((status, Json(view(record))).into_response())
}
