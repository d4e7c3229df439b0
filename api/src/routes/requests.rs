//! Work requests: file one (requesters, or from an asset's QR code), list,
//! and the manager's approval (into a work order) or rejection.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maintainpro_models::auth::Permission;
use maintainpro_models::requests::{self, Approval, NewWorkRequest, Rejection, RequestFilter, WorkRequest};
use maintainpro_models::work_orders::WorkOrder;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests", get(list).post(create))
        .route("/api/v1/requests/{id}", get(get_one))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/reject", post(reject))
}

/// An approved request and the work order it became.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approved {
    pub request: WorkRequest,
    pub work_order: WorkOrder,
}

/// Files a work request.
#[utoipa::path(
    post, path = "/api/v1/requests", operation_id = "createRequest", tag = "requests",
    request_body = NewWorkRequest, security(("bearer" = ["work_orders:create"])),
    responses((status = 201, body = Envelope<WorkRequest>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewWorkRequest>,
) -> Result<ApiResponse<WorkRequest>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let r = requests::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(r))
}

/// Requests, newest first, a page at a time (a requester sees only their
/// own); `meta.nextCursor` fetches the next page with the same filters.
#[utoipa::path(
    get, path = "/api/v1/requests", operation_id = "listRequests", tag = "requests",
    params(RequestFilter), security(("bearer" = ["work_orders:view"])),
    responses(
        (status = 200, body = Envelope<Vec<WorkRequest>>), (status = 400, body = ErrorEnvelope),
        (status = 422, description = "invalid filter value, limit or cursor", body = ErrorEnvelope)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<RequestFilter>,
) -> Result<ApiResponse<Vec<WorkRequest>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = requests::list(&mut tx, &auth.tenant, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// One request.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", operation_id = "getRequest", tag = "requests",
    params(("id" = Uuid, Path, description = "request id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<WorkRequest>), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<WorkRequest>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let r = requests::get(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(r))
}

/// Approves a pending request into a work order.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/approve", operation_id = "approveRequest", tag = "requests",
    params(("id" = Uuid, Path, description = "request id")), request_body = Approval, security(("bearer" = ["requests:approve"])),
    responses(
        (status = 200, body = Envelope<Approved>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)
    )
)]
pub async fn approve(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(approval): Json<Approval>,
) -> Result<ApiResponse<Approved>, ApiError> {
    if approval.assigned_to.is_some() {
        auth.require(Permission::WorkOrdersAssign)?;
    }
    let mut tx = state.tenant_tx(&auth).await?;
    let (request, work_order) = requests::approve(&mut tx, &auth.tenant, id, approval).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(Approved { request, work_order }))
}

/// Rejects a pending request with a reason.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/reject", operation_id = "rejectRequest", tag = "requests",
    params(("id" = Uuid, Path, description = "request id")), request_body = Rejection, security(("bearer" = ["requests:approve"])),
    responses(
        (status = 200, body = Envelope<WorkRequest>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn reject(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(rejection): Json<Rejection>,
) -> Result<ApiResponse<WorkRequest>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let r = requests::reject(&mut tx, &auth.tenant, id, rejection).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(r))
}
