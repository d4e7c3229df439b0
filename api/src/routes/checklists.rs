//! Work-order checklists: read, replace (while the work is open), and tick
//! items off.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maintainpro_models::checklists::{self, ChecklistItem, ChecklistReplacement, ChecklistTick};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/work-orders/{id}/checklist", get(list).put(replace))
        .route("/api/v1/work-orders/{id}/checklist/{itemId}", post(tick))
}

/// A work order's checklist, in order.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/checklist", operation_id = "getWorkOrderChecklist", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<ChecklistItem>>), (status = 404, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<ChecklistItem>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = checklists::list(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// Replaces the checklist while the work order is open, in progress or on
/// hold (409 otherwise). Items named by `id` keep whether they were done;
/// items left out are removed.
#[utoipa::path(
    put, path = "/api/v1/work-orders/{id}/checklist", operation_id = "replaceWorkOrderChecklist", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body = ChecklistReplacement, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 200, body = Envelope<Vec<ChecklistItem>>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(replacement): Json<ChecklistReplacement>,
) -> Result<ApiResponse<Vec<ChecklistItem>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = checklists::replace(&mut tx, &auth.tenant, id, replacement).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// Ticks an item done (recording who and when) or unticks it, with an
/// optional result note, while the work order is open, in progress or on hold.
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/checklist/{itemId}", operation_id = "tickWorkOrderChecklistItem",
    tag = "work-orders",
    params(
        ("id" = Uuid, Path, description = "work order id"),
        ("itemId" = Uuid, Path, description = "checklist item id")
    ),
    request_body = ChecklistTick, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 200, body = Envelope<ChecklistItem>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn tick(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, item_id)): Path<(Uuid, Uuid)>,
    Json(tick): Json<ChecklistTick>,
) -> Result<ApiResponse<ChecklistItem>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let item = checklists::tick(&mut tx, &auth.tenant, id, item_id, tick).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(item))
}
