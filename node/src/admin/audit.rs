//! Recording an operator's action (who, what, why, when), and reading the log back.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Json;
use serde_json::{Value, json};

use super::body::Page;
use super::{ApiError, Operator};
use crate::app::App;

pub(super) use crate::governance::text::unix_ms as now_ms;

/// `GET /admin/audit`.
pub(super) async fn audit_log(
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
