//! `/admin/disbursements…`: queue (one or a proposal's batch), approve, list, show,
//! cancel.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::audit::now_ms;
use super::body::{ApproveBody, BatchBody, Page, QueueBody, ReasonBody, parse, view};
use super::{ApiError, Operator};
use crate::app::App;
use crate::governance::{Cancellation, QueueError, RequestError};

/// `POST /admin/disbursements`.
pub(super) async fn queue(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: QueueBody = parse(&body)?;
    let request = body.request(&app)?;
    // Audited in the same transaction; the audit record's reason is the memo.
    let queued = app
        .store
        .queue_audited(&request, now_ms(), &operator.audit(""))
        .map_err(|error| refused(&app, error))?;
    app.store.flush().map_err(ApiError::internal)?;
    let disbursement = &queued.disbursement;
    let status = if queued.created {
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
    let queued = app
        .store
        .queue_batch_audited(&requests, now_ms(), &operator.audit(&reason))
        .map_err(|error| refused(&app, error))?;
    app.store.flush().map_err(ApiError::internal)?;
    let created = queued.iter().filter(|q| q.created).count();
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let views: Vec<Value> = queued.iter().map(|q| view(&q.disbursement)).collect();
    Ok((
        status,
        Json(json!({ "created": created, "disbursements": views })),
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
    let outcome = app.store.cancel_audited(id, &operator.audit(&reason))?;
    app.store.flush().map_err(ApiError::internal)?;
    let (status, record) = match &outcome {
        Cancellation::Done(record) => (StatusCode::OK, record),
        Cancellation::Replacing(record) => (StatusCode::ACCEPTED, record),
    };
    Ok((status, Json(view(record))).into_response())
}

/// A queue request's refusal, counted in `treasury_policy_refusals_total` when the
/// spending policy is what refused it (403).
fn refused(app: &App, error: RequestError) -> ApiError {
    if let RequestError::Invalid(QueueError::Refused(refusal))
    | RequestError::InvalidItem {
        error: QueueError::Refused(refusal),
        ..
    } = &error
    {
        app.metrics.policy_refusals(refusal.rule(), 1);
        tracing::warn!(%refusal, "a queue request refused by the spending policy");
    }
    error.into()
}

/// `POST /admin/disbursements/{id}/approve` (`{"reason"}`): this token's approval of a
/// disbursement awaiting approval. 200 with the disbursement (`queued` once it has the
/// approvals the policy needs); 409 if it is not awaiting approval or this name already
/// approved it.
pub(super) async fn approve(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = ReasonBody::reason(&body)?;
    let mut approved = app.store.approve_audited(&[id], &operator.audit(&reason))?;
    app.store.flush().map_err(ApiError::internal)?;
    let record = approved
        .pop()
        .ok_or_else(|| ApiError::internal("the approval returned no disbursement"))?;
    Ok(Json(view(&record)))
}

/// `POST /admin/disbursements/approve` (`{"ids": [...], "reason"}`): a proposal's
/// payouts approved as one, in one transaction: all of them or, if one cannot be
/// approved (named in the error), none.
pub(super) async fn approve_many(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (ids, reason) = ApproveBody::parse(&body)?;
    let approved = app.store.approve_audited(&ids, &operator.audit(&reason))?;
    app.store.flush().map_err(ApiError::internal)?;
    let views: Vec<Value> = approved.iter().map(view).collect();
    Ok(Json(json!({ "disbursements": views })))
}
