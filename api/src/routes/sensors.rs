//! Sensors (one metric of one device on one asset) and their trend buckets.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use maintainpro_models::devices::{self, NewSensor, Sensor};
use maintainpro_models::readings::{self, TrendSeries};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sensors", get(list).post(create))
        .route("/api/v1/sensors/{id}", get(get_one))
        .route("/api/v1/sensors/{id}/readings", get(readings_buckets))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SensorQuery {
    pub equipment_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ReadingsQuery {
    /// Start (inclusive, RFC 3339); default 24 h before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive, RFC 3339); default now.
    pub to: Option<DateTime<Utc>>,
    /// At most this many buckets, 1-10000 (default 1000).
    pub max_points: Option<i64>,
}

/// Sensors, optionally of one asset or one device.
#[utoipa::path(
    get, path = "/api/v1/sensors", operation_id = "listSensors", tag = "sensors",
    params(SensorQuery), security(("bearer" = ["sensors:view"])),
    responses((status = 200, body = Envelope<Vec<Sensor>>), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<SensorQuery>,
) -> Result<ApiResponse<Vec<Sensor>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = devices::list_sensors(&mut tx, query.equipment_id, query.device_id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// One sensor.
#[utoipa::path(
    get, path = "/api/v1/sensors/{id}", operation_id = "getSensor", tag = "sensors",
    params(("id" = Uuid, Path, description = "sensor id")), security(("bearer" = ["sensors:view"])),
    responses((status = 200, body = Envelope<Sensor>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Sensor>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let sensor = devices::get_sensor(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(sensor))
}

/// Registers a sensor on a device and an asset.
#[utoipa::path(
    post, path = "/api/v1/sensors", operation_id = "createSensor", tag = "sensors",
    request_body = NewSensor, security(("bearer" = ["sensors:manage"])),
    responses((status = 201, body = Envelope<Sensor>), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewSensor>,
) -> Result<ApiResponse<Sensor>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let sensor = devices::create_sensor(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(sensor))
}

/// A sensor's readings in [from, to) as min/avg/max buckets.
#[utoipa::path(
    get, path = "/api/v1/sensors/{id}/readings", operation_id = "getSensorReadings", tag = "sensors",
    params(("id" = Uuid, Path, description = "sensor id"), ReadingsQuery), security(("bearer" = ["readings:view"])),
    responses((status = 200, body = Envelope<TrendSeries>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn readings_buckets(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<ReadingsQuery>,
) -> Result<ApiResponse<TrendSeries>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    // A foreign or unknown sensor is a 404, not an empty series.
    devices::get_sensor(&mut tx, id).await?;
    let series = readings::buckets(&mut tx, id, query.from, query.to, query.max_points).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(series))
}
