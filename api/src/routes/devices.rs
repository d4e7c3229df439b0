//! Devices (MQTT publishers): list, and register one (its secret is shown once).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::devices::{self, Device, DeviceCredentials, NewDevice};

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/devices", get(list).post(create))
}

/// The organization's devices.
#[utoipa::path(
    get, path = "/api/v1/devices", operation_id = "listDevices", tag = "devices", security(("bearer" = ["sensors:view"])),
    responses((status = 200, body = Envelope<Vec<Device>>), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<ApiResponse<Vec<Device>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = devices::list_devices(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// Registers a device; the response holds its MQTT secret, shown only this once.
#[utoipa::path(
    post, path = "/api/v1/devices", operation_id = "createDevice", tag = "devices",
    request_body = NewDevice, security(("bearer" = ["devices:manage"])),
    responses((status = 201, body = Envelope<DeviceCredentials>), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewDevice>,
) -> Result<ApiResponse<DeviceCredentials>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let creds = devices::create_device(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    tracing::info!(device_id = %creds.device.id, "device registered");
    Ok(ApiResponse::created(creds))
}
