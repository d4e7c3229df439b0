//! The organization's failure-code catalog (problem / cause / remedy):
//! everyone who sees work orders reads it; managers extend it and
//! (de)activate codes.

use axum::extract::State;
use axum::routing::{get, patch};
use axum::Router;
use maintainpro_models::failure_codes::{
    self, FailureCode, FailureCodeFilter, FailureCodePatch, NewFailureCode,
};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/failure-codes", get(list).post(create))
        .route("/api/v1/failure-codes/{id}", patch(update))
}

/// The catalog: problem codes, then cause codes, then remedy codes, each by
/// code. New organizations start with a default catalog (VIB, OHE, LEK …;
/// WEA, MIS, LUB …; REP, ADJ, LUB …).
#[utoipa::path(
    get, path = "/api/v1/failure-codes", operation_id = "listFailureCodes", tag = "work-orders",
    params(FailureCodeFilter), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<FailureCode>>), (status = 400, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<FailureCodeFilter>,
) -> Result<ApiResponse<Vec<FailureCode>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let codes = failure_codes::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(codes))
}

/// Adds a code (stored upper-case; unique per kind, 409 otherwise).
#[utoipa::path(
    post, path = "/api/v1/failure-codes", operation_id = "createFailureCode", tag = "work-orders",
    request_body = NewFailureCode, security(("bearer" = ["failure_codes:manage"])),
    responses(
        (status = 201, body = Envelope<FailureCode>), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewFailureCode>,
) -> Result<ApiResponse<FailureCode>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let code = failure_codes::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(code))
}

/// Changes a code's description or (de)activates it. A deactivated code
/// stays on the work orders that have it but cannot be given to others.
#[utoipa::path(
    patch, path = "/api/v1/failure-codes/{id}", operation_id = "updateFailureCode", tag = "work-orders",
    params(("id" = Uuid, Path, description = "failure code id")),
    request_body = FailureCodePatch, security(("bearer" = ["failure_codes:manage"])),
    responses(
        (status = 200, body = Envelope<FailureCode>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(patch): Json<FailureCodePatch>,
) -> Result<ApiResponse<FailureCode>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let code = failure_codes::update(&mut tx, &auth.tenant, id, patch).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(code))
}
