//! The admin API: breaker overrides and disbursements, behind a bearer token compared in
//! constant time. No token configured → the API is off (403). A refused call changes
//! nothing; every accepted call that changes something is audited (who, what, why, when).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::App;
use crate::governance::{CircuitBreaker, Disbursement, NewDisbursement, RequestError, Transition};

/// Request bodies larger than this are refused (413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// An `X-Actor` longer than this is refused.
pub const MAX_ACTOR_BYTES: usize = 128;
/// A reason longer than this is refused.
pub const MAX_REASON_BYTES: usize = 1024;

/// The admin routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/breaker", get(breaker_status))
        .route("/admin/breaker/{action}", post(override_handler))
        .route("/admin/disbursements", post(queue).get(list))
        .route("/admin/disbursements/batch", post(queue_batch))
        .route("/admin/disbursements/{id}", get(show))
        .route("/admin/disbursements/{id}/cancel", post(cancel))
        .route("/admin/audit", get(audit_log))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(json_errors))
}

/// Refusals made by axum itself (a body over the limit, an id that is not a number, a
/// bad query string, a method the route does not take) come as plain text: say them
/// as `{"error": reason}` too, like every other refusal of this API.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let reason = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if !bytes.trim_ascii().is_empty() => {
            String::from_utf8_lossy(bytes.trim_ascii()).into_owned()
        }
        _ => status.canonical_reason().unwrap_or("refused").to_owned(),
    };
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut json = Json(json!({ "error": reason })).into_response();
    *json.status_mut() = parts.status;
    json.headers_mut().extend(parts.headers);
    json
}

/// A refusal: a status and a reason, as `{"error": reason}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }

    fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(%message, "admin API failure");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// An authenticated operator. Extracted before the body, so an unauthenticated call
/// is refused before anything is read or changed.
#[derive(Debug)]
pub struct Operator {
    actor: String,
}

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &app.config.admin_token else {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "the admin API is off: no admin token is configured (set TB_ADMIN_TOKEN)".into(),
            ));
        };
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
        let presented = parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        match presented {
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {}
            Some(_) => {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "wrong admin token".into(),
                ));
            }
            None => {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "missing `Authorization: Bearer <token>` header".into(),
                ));
            }
        }
        let actor = match parts.headers.get("x-actor") {
            None => "admin".to_owned(),
            // Printable ASCII only: an actor is written to the audit log and the log
            // lines, where a tab or other control character could forge a field.
            Some(value) => match value.to_str().map(str::trim) {
                Ok(actor)
                    if !actor.is_empty()
                        && actor.len() <= MAX_ACTOR_BYTES
                        && actor.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
                {
                    actor.to_owned()
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "X-Actor must be 1 to {MAX_ACTOR_BYTES} bytes of printable ASCII"
                    )));
                }
            },
        };
        Ok(Operator { actor })
    }
}

/// Compares in time that depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Parses a JSON body; anything malformed is a 400 with serde's reason.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("malformed request body: {error}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

impl ReasonBody {
    fn reason(body: &Bytes) -> Result<String, ApiError> {
        let ReasonBody { reason } = parse(body)?;
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(ApiError::bad_request("reason must not be empty"));
        }
        if reason.len() > MAX_REASON_BYTES {
            return Err(ApiError::bad_request(format!(
                "reason is over {MAX_REASON_BYTES} bytes"
            )));
        }
        Ok(reason)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn audit(
    app: &App,
    operator: &Operator,
    action: &str,
    reason: &str,
    detail: &str,
) -> Result<(), ApiError> {
    app.store
        .record_audit(&operator.actor, action, reason, detail, now_ms())
        .map(|_| ())
        .map_err(|error| {
            ApiError::internal(format!(
                "the action was done but could not be audited: {error}"
            ))
        })
}

async fn breaker_status(_: Operator, State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.status()["breaker"].clone())
}

/// `POST /admin/breaker/{force-open|force-close|reset}`.
async fn override_handler(
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
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no breaker action {other:?}: force-open, force-close or reset"),
            ));
        }
    };
    let reason = ReasonBody::reason(&body)?;
    override_breaker(&app, &operator, name, &reason, || apply(&app.breaker))
}

/// Applies an override, persists the breaker at once (a crash must not forget it), and
/// audits it.
fn override_breaker(
    app: &App,
    operator: &Operator,
    action: &str,
    reason: &str,
    apply: impl FnOnce() -> Transition,
) -> Result<Json<Value>, ApiError> {
    let transition = apply();
    app.store
        .save_breaker(&app.breaker)
        .and_then(|()| app.store.flush())
        .map_err(ApiError::internal)?;
    app.publish_breaker();
    // Debug-formatted: a reason is free text, and a newline in it must not start a
    // forged log line.
    tracing::warn!(actor = %operator.actor, ?reason, %transition, "operator override");
    audit(app, operator, action, reason, &transition.to_string())?;
    Ok(Json(json!({
        "transition": transition.to_string(),
        "breaker": app.status()["breaker"].clone(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    destination: String,
    amount: String,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    activation_epoch: u64,
    #[serde(default)]
    depends_on: Vec<u64>,
    #[serde(default)]
    external_key: Option<String>,
}

fn parse_amount(text: &str) -> Result<u128, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "amount must be a positive integer as a decimal string, got {text:?}"
        ))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u128>() {
        Ok(0) => Err(ApiError::bad_request("amount must be greater than zero")),
        Ok(amount) => Ok(amount),
        Err(_) => Err(invalid()),
    }
}

/// A disbursement as the API shows it: the amount as a decimal string (JSON numbers lose
/// precision past 2^53, and serde_json cannot hold a u128 past 2^64 at all).
#[derive(serde::Serialize)]
struct View<'a> {
    id: u64,
    destination: &'a str,
    amount: String,
    memo: &'a str,
    activation_epoch: u64,
    depends_on: &'a [u64],
    external_key: Option<&'a str>,
    status: &'a crate::governance::DisbursementStatus,
    queued_at_ms: u64,
}

fn view(d: &Disbursement) -> Value {
    let view = View {
        id: d.id,
        destination: &d.destination,
        amount: d.amount.to_string(),
        memo: &d.memo,
        activation_epoch: d.activation_epoch,
        depends_on: &d.depends_on,
        external_key: d.external_key.as_deref(),
        status: &d.status,
        queued_at_ms: d.queued_at_ms,
    };
    // Strings, integers below 2^64 and a tagged enum of them: cannot fail.
    serde_json::to_value(view).unwrap_or(Value::Null)
}

impl QueueBody {
    /// The request, once the amount parses and the ledger accepts the destination.
    fn request(self, app: &App) -> Result<NewDisbursement, ApiError> {
        let amount = parse_amount(&self.amount)?;
        app.ledger
            .validate_destination(&self.destination)
            .map_err(|reason| ApiError::bad_request(format!("invalid destination: {reason}")))?;
        Ok(NewDisbursement {
            destination: self.destination,
            amount,
            memo: self.memo,
            activation_epoch: self.activation_epoch,
            depends_on: self.depends_on,
            external_key: self.external_key,
        })
    }
}

async fn queue(
    operator: Operator,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: QueueBody = parse(&body)?;
    let request = body.request(&app)?;
    let queued = match app.store.queue(&request, now_ms()) {
        Ok(queued) => queued,
        Err(RequestError::Invalid(error)) => return Err(ApiError::bad_request(error.to_string())),
        Err(error) => return Err(ApiError::internal(error)),
    };
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    disbursements: Vec<QueueBody>,
    /// Why, for the audit log (e.g. the proposal).
    #[serde(default)]
    reason: String,
}

/// `POST /admin/disbursements/batch`: a proposal's payouts, queued all or none in one
/// transaction and one flush. An invalid item is named by its index; an external key
/// already queued yields the existing disbursement. One audit record for the batch.
async fn queue_batch(
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
    let queued = match app.store.queue_batch(&requests, now_ms()) {
        Ok(queued) => queued,
        Err(RequestError::InvalidItem { index, error }) => {
            return Err(ApiError::bad_request(format!(
                "disbursements[{index}]: {error}"
            )));
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<u64>,
    limit: Option<usize>,
}

impl Page {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1_000)
    }
}

async fn list(
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

async fn show(
    _: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    match app.store.get(id).map_err(ApiError::internal)? {
        Some(disbursement) => Ok(Json(view(&disbursement))),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("disbursement {id} not found"),
        )),
    }
}

async fn cancel(
    operator: Operator,
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = ReasonBody::reason(&body)?;
    let cancelled = match app.store.cancel(id, &reason) {
        Ok(cancelled) => cancelled,
        Err(RequestError::NotFound(id)) => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("disbursement {id} not found"),
            ));
        }
        Err(error @ RequestError::NotCancellable { .. }) => {
            return Err(ApiError(StatusCode::CONFLICT, error.to_string()));
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
    app.store.flush().map_err(ApiError::internal)?;
    audit(
        &app,
        &operator,
        "disbursement.cancel",
        &reason,
        &format!("disbursement {id}"),
    )?;
    Ok(Json(view(&cancelled)))
}

async fn audit_log(
    _: Operator,
    State(app): State<Arc<App>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let records = app
        .store
        .audit(page.after, page.limit())
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "records": records })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn amounts_are_positive_decimal_strings() {
        assert_eq!(parse_amount("1").ok(), Some(1));
        assert_eq!(parse_amount(&u128::MAX.to_string()).ok(), Some(u128::MAX));
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "1e3",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
    }
}
