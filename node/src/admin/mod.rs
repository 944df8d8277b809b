//! The admin API: breaker overrides, disbursements, and the decisions the executor waits
//! for, behind named bearer tokens compared in constant time (a `viewer` token reads,
//! an `operator` token also changes). No token configured → the API is off (403). A
//! peer that fails to authenticate too often is refused for a minute (429). A refused
//! call changes nothing; every accepted call that changes something is audited in the
//! same transaction (who: the token's name; what, why, when).
//!
//! | file               | what it holds                                               |
//! |--------------------|-------------------------------------------------------------|
//! | `mod.rs`           | the routes; every refusal as `{"error": reason}`; a store refusal's status |
//! | `auth.rs`          | `Operator`: the token, its role, the actor (and `X-Actor` as a note) |
//! | `limit.rs`         | `AuthLimiter`: failed authentications by peer               |
//! | `body.rs`          | request bodies and their checks; how a disbursement is shown |
//! | `breaker.rs`       | `/admin/breaker…`                                           |
//! | `disbursements.rs` | `/admin/disbursements…` (queue, approve, cancel, read)      |
//! | `executor.rs`      | `/admin/intents…`, `/admin/executor/adopt-nonce`, `…/mark-paid` |
//! | `audit.rs`         | `/admin/audit`                                              |
//! | `policy.rs`        | `/admin/policy`: the spending policy, what it holds and what awaits approval |

mod audit;
mod auth;
mod body;
mod breaker;
mod disbursements;
mod executor;
mod limit;
mod policy;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::app::App;
use crate::governance::{QueueError, RequestError};

pub use crate::config::admin::constant_time_eq;
pub use auth::Operator;
pub use limit::AuthLimiter;

use audit::audit_log;
use breaker::{breaker_status, override_handler};
use disbursements::{approve, approve_many, cancel, list, queue, queue_batch, show};
use executor::{adopt_nonce, intents, mark_paid, resolve};

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
        .route("/admin/disbursements/approve", post(approve_many))
        .route("/admin/disbursements/{id}", get(show))
        .route("/admin/disbursements/{id}/cancel", post(cancel))
        .route("/admin/disbursements/{id}/approve", post(approve))
        .route("/admin/disbursements/{id}/mark-paid", post(mark_paid))
        .route("/admin/intents", get(intents))
        .route("/admin/intents/{nonce}/resolve", post(resolve))
        .route("/admin/executor/adopt-nonce", post(adopt_nonce))
        .route("/admin/audit", get(audit_log))
        .route("/admin/policy", get(policy::policy))
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

    /// 409: the request is well formed but the node is not in the state it is for.
    fn conflict(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::CONFLICT, message.into())
    }

    /// 404.
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, message.into())
    }
}

/// A store's refusal of a request: invalid (400, a batch's item named by its index),
/// forbidden by the spending policy (403), no such disbursement (404), not in the state the request is for (409); a storage failure
/// is a 500.
impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        match error {
            RequestError::Invalid(error @ QueueError::Refused(_)) => {
                ApiError(StatusCode::FORBIDDEN, error.to_string())
            }
            RequestError::Invalid(error) => ApiError::bad_request(error.to_string()),
            RequestError::InvalidItem {
                index,
                error: error @ QueueError::Refused(_),
            } => ApiError(
                StatusCode::FORBIDDEN,
                format!("disbursements[{index}]: {error}"),
            ),
            RequestError::InvalidItem { index, error } => {
                ApiError::bad_request(format!("disbursements[{index}]: {error}"))
            }
            error @ RequestError::NotFound(_) => ApiError::not_found(error.to_string()),
            error @ RequestError::NotCancellable { .. } => ApiError::conflict(error.to_string()),
            RequestError::Conflict(message) => ApiError::conflict(message),
            error @ RequestError::Storage(_) => ApiError::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}
