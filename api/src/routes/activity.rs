//! Work-order activity: comments and labour time logs.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::activity::{self, Comment, NewComment, NewTimeLog, TimeLog, TimeSheet};
use maintainpro_models::auth::Permission;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/work-orders/{id}/comments",
            get(list_comments).post(add_comment),
        )
        .route(
            "/api/v1/work-orders/{id}/time-logs",
            get(time_sheet).post(log_time),
        )
}

/// A work order's comments, oldest first.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/comments", operation_id = "listWorkOrderComments", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<Comment>>), (status = 404, body = ErrorEnvelope))
)]
pub async fn list_comments(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<Comment>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let comments = activity::comments(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(comments))
}

/// Adds a comment (anyone who may see work orders may comment).
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/comments", operation_id = "addWorkOrderComment", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), request_body = NewComment, security(("bearer" = ["work_orders:view"])),
    responses((status = 201, body = Envelope<Comment>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn add_comment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(new): Json<NewComment>,
) -> Result<ApiResponse<Comment>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let comment = activity::add_comment(&mut tx, &auth.tenant, id, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(comment))
}

/// A work order's time logs and total labour minutes.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/time-logs", operation_id = "listWorkOrderTimeLogs", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<TimeSheet>), (status = 404, body = ErrorEnvelope))
)]
pub async fn time_sheet(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<TimeSheet>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let sheet = activity::time_sheet(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(sheet))
}

/// Logs labour on a work order (for the caller, or for another user with
/// the assign permission).
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/time-logs", operation_id = "logWorkOrderTime", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), request_body = NewTimeLog, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 201, body = Envelope<TimeLog>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn log_time(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(new): Json<NewTimeLog>,
) -> Result<ApiResponse<TimeLog>, ApiError> {
    if new
        .user_id
        .is_some_and(|u| Some(u) != auth.tenant.actor.user_id())
    {
        auth.require(Permission::WorkOrdersAssign)?;
    }
    let mut tx = state.tenant_tx(&auth).await?;
    let log = activity::log_time(&mut tx, &auth.tenant, id, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(log))
}
