//! Dead letters: telemetry the organization sent that could not be stored.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::dead_letters::{self, DeadLetter};
use maintainpro_models::ModelError;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dead-letters", get(list))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// How many, newest first, 1-1000 (default 100).
    pub limit: Option<i64>,
}

/// The most recent dead letters.
#[utoipa::path(
    get, path = "/api/v1/dead-letters", operation_id = "listDeadLetters", tag = "devices",
    params(DeadLetterQuery), security(("bearer" = ["devices:manage"])),
    responses((status = 200, body = Envelope<Vec<DeadLetter>>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<DeadLetterQuery>,
) -> Result<ApiResponse<Vec<DeadLetter>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ModelError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")).into());
    }
    let mut tx = state.tenant_tx(&auth).await?;
    let items = dead_letters::list(&mut tx, limit).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}
