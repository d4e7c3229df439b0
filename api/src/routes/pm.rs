//! Preventive-maintenance schedules (the scheduler job generates their
//! work orders).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::pm::{self, NewPmSchedule, PmSchedule};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/pm-schedules", get(list).post(create))
        .route("/api/v1/pm-schedules/{id}", get(get_one))
}

/// Preventive-maintenance schedules.
#[utoipa::path(
    get, path = "/api/v1/pm-schedules", operation_id = "listPmSchedules", tag = "preventive-maintenance",
    security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<PmSchedule>>), (status = 403, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<ApiResponse<Vec<PmSchedule>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = pm::list(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// One schedule.
#[utoipa::path(
    get, path = "/api/v1/pm-schedules/{id}", operation_id = "getPmSchedule", tag = "preventive-maintenance",
    params(("id" = Uuid, Path, description = "schedule id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<PmSchedule>), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<PmSchedule>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let s = pm::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(s))
}

/// Creates a schedule: `calendar` (every N day/week/month from the due date
/// or from completion) or `condition` (a sensor above/below/outside limits).
#[utoipa::path(
    post, path = "/api/v1/pm-schedules", operation_id = "createPmSchedule", tag = "preventive-maintenance",
    request_body = NewPmSchedule, security(("bearer" = ["pm:manage"])),
    responses((status = 201, body = Envelope<PmSchedule>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewPmSchedule>,
) -> Result<ApiResponse<PmSchedule>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let s = pm::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(s))
}
