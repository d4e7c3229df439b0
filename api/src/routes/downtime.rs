//! Downtime recorded on work orders: when the equipment was down and why.

use axum::extract::State;
use axum::routing::{get, patch};
use axum::Router;
use maintainpro_models::downtime::{self, Downtime, DowntimePatch, NewDowntime};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/work-orders/{id}/downtime", get(list).post(record))
        .route("/api/v1/work-orders/{id}/downtime/{downtimeId}", patch(update))
}

/// A work order's downtime entries, oldest first.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/downtime", operation_id = "listWorkOrderDowntime", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<Downtime>>), (status = 404, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<Downtime>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let entries = downtime::list(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(entries))
}

/// Records downtime of the work order's equipment (start default now; no
/// end while it is still down). Entries of one work order may not overlap,
/// times may not lie in the future, and the work order needs equipment
/// (409 otherwise, as for verified or cancelled work orders).
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/downtime", operation_id = "recordWorkOrderDowntime", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body = NewDowntime, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 201, body = Envelope<Downtime>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn record(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(new): Json<NewDowntime>,
) -> Result<ApiResponse<Downtime>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let entry = downtime::record(&mut tx, &auth.tenant, id, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(entry))
}

/// Ends a downtime entry or corrects its times, reason or note.
#[utoipa::path(
    patch, path = "/api/v1/work-orders/{id}/downtime/{downtimeId}", operation_id = "updateWorkOrderDowntime",
    tag = "work-orders",
    params(
        ("id" = Uuid, Path, description = "work order id"),
        ("downtimeId" = Uuid, Path, description = "downtime entry id")
    ),
    request_body = DowntimePatch, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 200, body = Envelope<Downtime>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, downtime_id)): Path<(Uuid, Uuid)>,
    Json(patch): Json<DowntimePatch>,
) -> Result<ApiResponse<Downtime>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let entry = downtime::update(&mut tx, &auth.tenant, id, downtime_id, patch).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(entry))
}
