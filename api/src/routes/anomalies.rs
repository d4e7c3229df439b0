//! Anomaly episodes found by analytics: list (cursor pages) and one.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::anomalies::{self, Anomaly, AnomalyFilter};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/anomalies", get(list))
        .route("/api/v1/anomalies/{id}", get(get_one))
}

/// Anomalies, newest first; `meta.nextCursor` pages on.
#[utoipa::path(
    get, path = "/api/v1/anomalies", operation_id = "listAnomalies", tag = "anomalies",
    params(AnomalyFilter), security(("bearer" = ["anomalies:view"])),
    responses((status = 200, body = Envelope<Vec<Anomaly>>), (status = 401, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<AnomalyFilter>,
) -> Result<ApiResponse<Vec<Anomaly>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = anomalies::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// One anomaly.
#[utoipa::path(
    get, path = "/api/v1/anomalies/{id}", operation_id = "getAnomaly", tag = "anomalies",
    params(("id" = Uuid, Path, description = "anomaly id")), security(("bearer" = ["anomalies:view"])),
    responses((status = 200, body = Envelope<Anomaly>), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Anomaly>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let anomaly = anomalies::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(anomaly))
}
