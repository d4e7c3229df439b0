//! Equipment (assets): list and search, the hierarchy (tree, subtree, path,
//! moves), one asset, create and update.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::equipment::{
    self, Equipment, EquipmentFilter, EquipmentNode, EquipmentUpdate, NewEquipment,
};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/equipment", get(list).post(create))
        .route("/api/v1/equipment/tree", get(tree))
        .route("/api/v1/equipment/{id}", get(get_one).patch(update))
        .route("/api/v1/equipment/{id}/subtree", get(subtree))
        .route("/api/v1/equipment/{id}/path", get(path))
}

/// Equipment, a page at a time: in name order, or with `q` a ranked
/// full-text search (an exact asset-tag match first). Filters combine;
/// `meta.nextCursor` fetches the next page with the same filters.
#[utoipa::path(
    get, path = "/api/v1/equipment", operation_id = "listEquipment", tag = "equipment",
    params(EquipmentFilter), security(("bearer" = ["equipment:view"])),
    responses(
        (status = 200, body = Envelope<Vec<Equipment>>), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 422, description = "invalid filter value, limit or cursor", body = ErrorEnvelope)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<EquipmentFilter>,
) -> Result<ApiResponse<Vec<Equipment>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = equipment::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// The equipment hierarchy as a forest of root nodes.
#[utoipa::path(
    get, path = "/api/v1/equipment/tree", operation_id = "getEquipmentTree", tag = "equipment", security(("bearer" = ["equipment:view"])),
    responses((status = 200, body = Envelope<Vec<EquipmentNode>>), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope))
)]
pub async fn tree(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<ApiResponse<Vec<EquipmentNode>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let forest = equipment::tree(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(forest))
}

/// One piece of equipment.
#[utoipa::path(
    get, path = "/api/v1/equipment/{id}", operation_id = "getEquipment", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id")), security(("bearer" = ["equipment:view"])),
    responses((status = 200, body = Envelope<Equipment>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Equipment>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let eq = equipment::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(eq))
}

/// Registers equipment.
#[utoipa::path(
    post, path = "/api/v1/equipment", operation_id = "createEquipment", tag = "equipment",
    request_body = NewEquipment, security(("bearer" = ["equipment:create"])),
    responses((status = 201, body = Envelope<Equipment>), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewEquipment>,
) -> Result<ApiResponse<Equipment>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let eq = equipment::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(eq))
}

/// Updates an asset: fields, status (decommissioning or retiring cascades to
/// its descendants) and parent (moves that would make a cycle are refused).
#[utoipa::path(
    patch, path = "/api/v1/equipment/{id}", operation_id = "updateEquipment", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id")), request_body = EquipmentUpdate, security(("bearer" = ["equipment:update"])),
    responses(
        (status = 200, body = Envelope<Equipment>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(change): Json<EquipmentUpdate>,
) -> Result<ApiResponse<Equipment>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let eq = equipment::update(&mut tx, &auth.tenant, id, change).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(eq))
}

/// An asset and everything below it.
#[utoipa::path(
    get, path = "/api/v1/equipment/{id}/subtree", operation_id = "getEquipmentSubtree", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id")), security(("bearer" = ["equipment:view"])),
    responses((status = 200, body = Envelope<EquipmentNode>), (status = 404, body = ErrorEnvelope))
)]
pub async fn subtree(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<EquipmentNode>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let node = equipment::subtree(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(node))
}

/// The chain of parents from the top of the hierarchy down to this asset.
#[utoipa::path(
    get, path = "/api/v1/equipment/{id}/path", operation_id = "getEquipmentPath", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id")), security(("bearer" = ["equipment:view"])),
    responses((status = 200, body = Envelope<Vec<Equipment>>), (status = 404, body = ErrorEnvelope))
)]
pub async fn path(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<Equipment>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let chain = equipment::path(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(chain))
}
