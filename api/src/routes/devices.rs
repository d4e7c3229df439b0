//! Devices (MQTT publishers): list, read, register one (its secret is shown
//! once), rotate its secret and revoke it. A device signs in to the MQTT
//! broker as `{orgSlug}/{deviceName}` with its secret.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maintainpro_models::devices::{self, Device, DeviceCredentials, NewDevice};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/devices", get(list).post(create))
        .route("/api/v1/devices/{id}", get(get_one))
        .route("/api/v1/devices/{id}/credentials", post(rotate_credentials))
        .route("/api/v1/devices/{id}/revoke", post(revoke))
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

/// One device.
#[utoipa::path(
    get, path = "/api/v1/devices/{id}", operation_id = "getDevice", tag = "devices",
    params(("id" = Uuid, Path, description = "device id")), security(("bearer" = ["sensors:view"])),
    responses((status = 200, body = Envelope<Device>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Device>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let device = devices::get_device(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(device))
}

/// Issues a new MQTT secret for the device, shown only this once; the old
/// secret stops working at once and connections signed in with it are closed.
/// Re-enables a revoked device.
#[utoipa::path(
    post, path = "/api/v1/devices/{id}/credentials", operation_id = "rotateDeviceCredentials", tag = "devices",
    params(("id" = Uuid, Path, description = "device id")), security(("bearer" = ["devices:manage"])),
    responses((status = 200, body = Envelope<DeviceCredentials>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn rotate_credentials(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<DeviceCredentials>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let creds = devices::rotate_credentials(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    tracing::info!(device_id = %id, "device credentials rotated");
    Ok(ApiResponse::ok(creds))
}

/// Revokes the device: it is deactivated and its secret deleted, so it can
/// no longer connect (open connections are closed) and nothing more is
/// stored for it. Rotating its credentials re-enables it.
#[utoipa::path(
    post, path = "/api/v1/devices/{id}/revoke", operation_id = "revokeDevice", tag = "devices",
    params(("id" = Uuid, Path, description = "device id")), security(("bearer" = ["devices:manage"])),
    responses((status = 200, body = Envelope<Device>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Device>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let device = devices::revoke(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    tracing::info!(device_id = %id, "device revoked");
    Ok(ApiResponse::ok(device))
}
