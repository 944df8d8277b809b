//! `GET /admin/policy`: the spending policy in force, and what waits on it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Json;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, Operator};
use crate::app::App;

/// `?limit=…` (1 to 1,000; default 100): how many held and awaiting disbursements to show.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Shown {
    limit: Option<usize>,
}

/// `GET /admin/policy` (a viewer may read it): `/status`'s `policy`, with the held
/// disbursements (and why) and those awaiting approval (destination, amount, who approved
/// them, how many approvals they need), lowest id first.
pub(super) async fn policy(
    _: Operator,
    State(app): State<Arc<App>>,
    Query(shown): Query<Shown>,
) -> Result<Json<Value>, ApiError> {
    let limit = shown.limit.unwrap_or(100).clamp(1, 1_000);
    app.policy_detail(limit)
        .map(Json)
        .map_err(ApiError::internal)
}
