//! Sensors (one metric of one device on one asset), their trends (one or
//! several sensors, raw or rolled up, optional LTTB), raw CSV export and
//! the last value per sensor.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use maintainpro_models::devices::{self, NewSensor, Sensor};
use maintainpro_models::readings::{self, LatestValue, TrendQuery, TrendSeries};
use maintainpro_models::{FieldError, ModelError};
use serde::Deserialize;
use tokio::sync::mpsc;
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
        .route("/api/v1/sensors/latest", get(latest))
        .route("/api/v1/sensors/{id}/readings", get(readings_buckets))
        .route("/api/v1/sensors/{id}/readings.csv", get(readings_csv))
        .route("/api/v1/readings", get(readings_many))
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
    /// At most this many buckets, 1-10000 (default 1000). The bucket width
    /// (span / maxPoints) picks the source: the 1-hour rollup from 1 h, the
    /// 1-minute rollup from 1 min, raw readings below.
    pub max_points: Option<i64>,
    /// Compute 4× finer buckets and keep `maxPoints` of them with
    /// Largest-Triangle-Three-Buckets on their averages (peaks survive).
    pub lttb: Option<bool>,
}

impl ReadingsQuery {
    fn trend(&self) -> TrendQuery {
        TrendQuery {
            from: self.from,
            to: self.to,
            max_points: self.max_points,
            lttb: self.lttb.unwrap_or(false),
        }
    }
}

/// Most sensors in one multi-sensor trend call.
pub const MAX_SENSORS_PER_CALL: usize = 20;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ManyReadingsQuery {
    /// Comma-separated sensor ids (at most 20, each of this organization).
    pub sensor_ids: String,
    /// Start (inclusive, RFC 3339); default 24 h before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive, RFC 3339); default now.
    pub to: Option<DateTime<Utc>>,
    /// At most this many buckets per sensor, 1-10000 (default 1000).
    pub max_points: Option<i64>,
    /// Thin each series with LTTB (see the single-sensor call).
    pub lttb: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ExportQuery {
    /// Start (inclusive, RFC 3339); default 24 h before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive, RFC 3339); default now.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct LatestQuery {
    /// Only the sensors on this asset.
    pub equipment_id: Option<Uuid>,
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

/// A sensor's readings in [from, to) as min/avg/max buckets, from raw
/// readings or the 1-minute / 1-hour rollups (`resolution` says which).
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
    let series = readings::trend(&mut tx, id, &query.trend()).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(series))
}

/// Parses `sensorIds`: 1-20 distinct uuids.
pub(crate) fn sensor_ids(raw: &str) -> Result<Vec<Uuid>, ApiError> {
    let invalid = |m: String| ApiError::from(ModelError::Validation(vec![FieldError::new("sensorIds", m)]));
    let mut ids: Vec<Uuid> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = Uuid::parse_str(part).map_err(|_| invalid("must be comma-separated sensor ids".into()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MAX_SENSORS_PER_CALL {
        return Err(invalid(format!("must name 1 to {MAX_SENSORS_PER_CALL} sensors")));
    }
    Ok(ids)
}

/// Trends of several sensors over one range, in the order asked: one
/// series each, as in the single-sensor call. Any unknown or foreign id
/// makes the whole call a 404.
#[utoipa::path(
    get, path = "/api/v1/readings", operation_id = "getReadings", tag = "sensors",
    params(ManyReadingsQuery), security(("bearer" = ["readings:view"])),
    responses((status = 200, body = Envelope<Vec<TrendSeries>>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn readings_many(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<ManyReadingsQuery>,
) -> Result<ApiResponse<Vec<TrendSeries>>, ApiError> {
    let ids = sensor_ids(&query.sensor_ids)?;
    let q = TrendQuery {
        from: query.from,
        to: query.to,
        max_points: query.max_points,
        lttb: query.lttb.unwrap_or(false),
    };
    let range = readings::check_range(&q)?;
    let mut tx = state.tenant_tx(&auth).await?;
    for id in &ids {
        devices::get_sensor(&mut tx, *id).await?;
    }
    let stale = readings::pending_minutes(&mut tx, range.from, range.to).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(readings::trend_in(&mut tx, id, range, q.lttb, &stale).await?);
    }
    tx.commit().await?;
    Ok(ApiResponse::ok(out))
}

/// Bytes of CSV handed to the response per chunk.
const CSV_CHUNK: usize = 64 * 1024;

/// A sensor's raw readings in [from, to) as CSV (`ts,value`, oldest first),
/// streamed from the database as the client reads: memory stays bounded
/// whatever the range.
#[utoipa::path(
    get, path = "/api/v1/sensors/{id}/readings.csv", operation_id = "exportSensorReadings", tag = "sensors",
    params(("id" = Uuid, Path, description = "sensor id"), ExportQuery), security(("bearer" = ["readings:view"])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn readings_csv(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let range = readings::check_range(&TrendQuery {
        from: query.from,
        to: query.to,
        max_points: None,
        lttb: false,
    })?;
    let mut tx = state.tenant_tx(&auth).await?;
    devices::get_sensor(&mut tx, id).await?;
    // The transaction moves into a task that reads rows as a stream and
    // hands CSV chunks to the body through a small channel: when the
    // client reads slowly the task waits, when it goes away the task stops.
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut buf = String::with_capacity(CSV_CHUNK + 128);
        buf.push_str("ts,value\n");
        {
            let mut rows = readings::raw_stream(&mut tx, id, range.from, range.to);
            while let Some(row) = rows.next().await {
                match row {
                    Ok(r) => {
                        buf.push_str(&r.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true));
                        buf.push(',');
                        buf.push_str(&r.value.to_string());
                        buf.push('\n');
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "readings export failed mid-stream");
                        let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
                if buf.len() >= CSV_CHUNK {
                    let chunk = Bytes::from(std::mem::take(&mut buf));
                    if sender.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !buf.is_empty() {
            let _ = sender.send(Ok(Bytes::from(buf))).await;
        }
        let _ = tx.commit().await;
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"sensor-{id}-readings.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The newest reading of every sensor (or of one asset's), for dashboards;
/// sensors without readings come with null `ts` and `value`.
#[utoipa::path(
    get, path = "/api/v1/sensors/latest", operation_id = "getLatestReadings", tag = "sensors",
    params(LatestQuery), security(("bearer" = ["readings:view"])),
    responses((status = 200, body = Envelope<Vec<LatestValue>>), (status = 403, body = ErrorEnvelope))
)]
pub async fn latest(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<LatestQuery>,
) -> Result<ApiResponse<Vec<LatestValue>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = readings::latest(&mut tx, query.equipment_id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}
