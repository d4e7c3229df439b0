//! Parts inventory: the catalog, stock locations, stock movements through the
//! append-only ledger (receive, issue, adjust, return), a part's ledger, and
//! a work order's reservations and parts cost. The rules live in
//! `maintainpro_models::parts`.

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::Router;
use maintainpro_models::auth::Permission;
use maintainpro_models::parts::{
    self, AdjustStock, IssueStock, MovementFilter, NewPart, NewReservation, NewStockLocation, Part,
    PartDetail, PartFilter, PartPatch, ReceiveStock, Reservation, ReturnStock, StockLocation, StockMovement,
    WorkOrderParts,
};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/parts", get(list).post(create))
        .route("/api/v1/parts/{id}", get(get_one).patch(update))
        .route("/api/v1/parts/{id}/receive", post(receive))
        .route("/api/v1/parts/{id}/issue", post(issue))
        .route("/api/v1/parts/{id}/adjust", post(adjust))
        .route("/api/v1/parts/{id}/return", post(return_stock))
        .route("/api/v1/parts/{id}/movements", get(movements))
        .route(
            "/api/v1/stock-locations",
            get(list_locations).post(create_location),
        )
        .route("/api/v1/work-orders/{id}/reservations", post(reserve))
        .route(
            "/api/v1/work-orders/{id}/reservations/{reservation_id}",
            delete(release),
        )
        .route("/api/v1/work-orders/{id}/parts", get(work_order_parts))
}

/// Parts, newest first, searched by SKU or name; `meta.nextCursor` pages on.
#[utoipa::path(
    get, path = "/api/v1/parts", operation_id = "listParts", tag = "parts",
    params(PartFilter), security(("bearer" = ["parts:view"])),
    responses(
        (status = 200, body = Envelope<Vec<Part>>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<PartFilter>,
) -> Result<ApiResponse<Vec<Part>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = parts::list_parts(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// Adds a part to the catalog.
#[utoipa::path(
    post, path = "/api/v1/parts", operation_id = "createPart", tag = "parts",
    request_body = NewPart, security(("bearer" = ["parts:manage"])),
    responses(
        (status = 201, body = Envelope<Part>), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "SKU already used", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewPart>,
) -> Result<ApiResponse<Part>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let part = parts::create_part(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    tracing::info!(part_id = %part.id, sku = %part.sku, "part created");
    Ok(ApiResponse::created(part))
}

/// One part with on hand, reserved and available stock, in total and per location.
#[utoipa::path(
    get, path = "/api/v1/parts/{id}", operation_id = "getPart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), security(("bearer" = ["parts:view"])),
    responses((status = 200, body = Envelope<PartDetail>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<PartDetail>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let detail = parts::part_detail(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(detail))
}

/// Changes a part's catalog fields (SKU, name, cost, reorder point, …).
#[utoipa::path(
    patch, path = "/api/v1/parts/{id}", operation_id = "updatePart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), request_body = PartPatch, security(("bearer" = ["parts:manage"])),
    responses(
        (status = 200, body = Envelope<Part>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SKU already used", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(patch): Json<PartPatch>,
) -> Result<ApiResponse<Part>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let part = parts::update_part(&mut tx, &auth.tenant, id, patch).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(part))
}

/// Records stock arriving at a location.
#[utoipa::path(
    post, path = "/api/v1/parts/{id}/receive", operation_id = "receivePart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), request_body = ReceiveStock, security(("bearer" = ["parts:manage"])),
    responses(
        (status = 201, body = Envelope<StockMovement>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<ReceiveStock>,
) -> Result<ApiResponse<StockMovement>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let movement = parts::receive(&mut tx, &auth.tenant, id, body).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(movement))
}

/// Issues stock from a location to a work order, consuming its reservation there.
#[utoipa::path(
    post, path = "/api/v1/parts/{id}/issue", operation_id = "issuePart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), request_body = IssueStock, security(("bearer" = ["parts:issue"])),
    responses(
        (status = 201, body = Envelope<StockMovement>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "not enough stock on hand or available", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn issue(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<IssueStock>,
) -> Result<ApiResponse<StockMovement>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let movement = parts::issue(&mut tx, &auth.tenant, id, body).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(movement))
}

/// Corrects the count at a location, up or down, with a reason.
#[utoipa::path(
    post, path = "/api/v1/parts/{id}/adjust", operation_id = "adjustPart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), request_body = AdjustStock, security(("bearer" = ["parts:manage"])),
    responses(
        (status = 201, body = Envelope<StockMovement>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "would take on hand below zero", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn adjust(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<AdjustStock>,
) -> Result<ApiResponse<StockMovement>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let movement = parts::adjust(&mut tx, &auth.tenant, id, body).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(movement))
}

/// Returns unused stock from a work order to a location.
#[utoipa::path(
    post, path = "/api/v1/parts/{id}/return", operation_id = "returnPart", tag = "parts",
    params(("id" = Uuid, Path, description = "part id")), request_body = ReturnStock, security(("bearer" = ["parts:issue"])),
    responses(
        (status = 201, body = Envelope<StockMovement>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "more than the work order holds", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn return_stock(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<ReturnStock>,
) -> Result<ApiResponse<StockMovement>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let movement = parts::return_stock(&mut tx, &auth.tenant, id, body).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(movement))
}

/// A part's stock ledger, newest first; `meta.nextCursor` pages on.
#[utoipa::path(
    get, path = "/api/v1/parts/{id}/movements", operation_id = "listPartMovements", tag = "parts",
    params(("id" = Uuid, Path, description = "part id"), MovementFilter), security(("bearer" = ["parts:view"])),
    responses(
        (status = 200, body = Envelope<Vec<StockMovement>>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn movements(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(filter): Query<MovementFilter>,
) -> Result<ApiResponse<Vec<StockMovement>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = parts::list_movements(&mut tx, id, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// Every stock location, by name.
#[utoipa::path(
    get, path = "/api/v1/stock-locations", operation_id = "listStockLocations", tag = "parts", security(("bearer" = ["parts:view"])),
    responses((status = 200, body = Envelope<Vec<StockLocation>>), (status = 403, body = ErrorEnvelope))
)]
pub async fn list_locations(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<ApiResponse<Vec<StockLocation>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let locations = parts::list_locations(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(locations))
}

/// Adds a stock location (store room, van, shelf).
#[utoipa::path(
    post, path = "/api/v1/stock-locations", operation_id = "createStockLocation", tag = "parts",
    request_body = NewStockLocation, security(("bearer" = ["parts:manage"])),
    responses(
        (status = 201, body = Envelope<StockLocation>), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "name already used", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn create_location(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewStockLocation>,
) -> Result<ApiResponse<StockLocation>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let location = parts::create_location(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(location))
}

/// Reserves stock at a location for a work order (adds to an existing
/// reservation of the same part and location).
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/reservations", operation_id = "reserveParts", tag = "parts",
    params(("id" = Uuid, Path, description = "work order id")), request_body = NewReservation, security(("bearer" = ["parts:issue"])),
    responses(
        (status = 201, body = Envelope<Reservation>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "not enough available, or the work order is closed", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn reserve(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(new): Json<NewReservation>,
) -> Result<ApiResponse<Reservation>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let reservation = parts::reserve(&mut tx, &auth.tenant, id, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(reservation))
}

/// Releases a reservation; its stock becomes available again.
#[utoipa::path(
    delete, path = "/api/v1/work-orders/{id}/reservations/{reservation_id}", operation_id = "releaseReservation",
    tag = "parts",
    params(
        ("id" = Uuid, Path, description = "work order id"),
        ("reservation_id" = Uuid, Path, description = "reservation id")
    ),
    security(("bearer" = ["parts:issue"])),
    responses((status = 200, body = Envelope<Reservation>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn release(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, reservation_id)): Path<(Uuid, Uuid)>,
) -> Result<ApiResponse<Reservation>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let reservation = parts::release_reservation(&mut tx, &auth.tenant, id, reservation_id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(reservation))
}

/// A work order's parts: issued (net of returns, with cost), reserved, and the total parts cost.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/parts", operation_id = "getWorkOrderParts", tag = "parts",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["parts:view"])),
    responses((status = 200, body = Envelope<WorkOrderParts>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn work_order_parts(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<WorkOrderParts>, ApiError> {
    auth.require(Permission::WorkOrdersView)?;
    let mut tx = state.tenant_tx(&auth).await?;
    let summary = parts::work_order_parts(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(summary))
}
