//! Devices (gateways that publish over MQTT) and their sensors.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::hash_password;
use crate::db::{Db, Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Referenced, Result};
use crate::{equipment, events};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: Uuid,
    /// The `{device}` part of the MQTT topic `mp/v1/{org}/{device}/telemetry`.
    pub name: String,
    pub description: String,
    pub active: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewDevice {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A new device and its secret, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceCredentials {
    pub device: Device,
    /// MQTT password for the device; stored only as a hash.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sensor {
    pub id: Uuid,
    pub device_id: Uuid,
    pub equipment_id: Uuid,
    /// The metric name in telemetry payloads.
    pub metric: String,
    pub name: String,
    pub unit: String,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSensor {
    pub device_id: Uuid,
    pub equipment_id: Uuid,
    pub metric: String,
    pub name: Option<String>,
    #[serde(default)]
    pub unit: String,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

const DEVICE_COLUMNS: &str = "id, name, description, active, last_seen_at, created_at";
const SENSOR_COLUMNS: &str =
    "id, device_id, equipment_id, metric, name, unit, min_value, max_value, created_at";

pub async fn create_device(tx: &mut Tx, tenant: &Tenant, new: NewDevice) -> Result<DeviceCredentials> {
    if !valid_name(&new.name) {
        return Err(ModelError::invalid(
            "name",
            "1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit",
        ));
    }
    let (secret, hash) = new_secret().await?;
    let device = sqlx::query_as::<_, Device>(&format!(
        "INSERT INTO devices (id, organization_id, name, description, secret_hash)
         VALUES ($1, $2, $3, $4, $5) RETURNING {DEVICE_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(&new.name)
    .bind(&new.description)
    .bind(hash)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "devices_name_key", || {
            ModelError::Conflict(format!("device '{}' already exists", new.name))
        })
    })?;
    events::emit(tx, tenant, "device.created", Some(device.id), &device).await?;
    Ok(DeviceCredentials { device, secret })
}

async fn new_secret() -> Result<(String, String)> {
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&to_hash)).await??;
    Ok((secret, hash))
}

/// Replaces the device's secret with a new one, returned this once; the old
/// secret stops working at once (the MQTT front door checks the stored hash
/// at every CONNECT). Reactivates a revoked device.
pub async fn rotate_credentials(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<DeviceCredentials> {
    let (secret, hash) = new_secret().await?;
    let device = sqlx::query_as::<_, Device>(&format!(
        "UPDATE devices SET secret_hash = $2, active = true WHERE id = $1 RETURNING {DEVICE_COLUMNS}"
    ))
    .bind(id)
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("device"))?;
    events::emit(tx, tenant, "device.credentials_rotated", Some(device.id), &device).await?;
    Ok(DeviceCredentials { device, secret })
}

/// Deactivates the device and clears its secret: it can no longer connect
/// (and ingest stores nothing more for it). Rotating the credentials
/// re-enables it.
pub async fn revoke(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<Device> {
    let device = sqlx::query_as::<_, Device>(&format!(
        "UPDATE devices SET secret_hash = NULL, active = false WHERE id = $1 RETURNING {DEVICE_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("device"))?;
    events::emit(tx, tenant, "device.revoked", Some(device.id), &device).await?;
    Ok(device)
}

/// What the MQTT front door checks a CONNECT against.
#[derive(Debug, Clone, FromRow)]
pub struct DeviceLogin {
    pub organization_id: Uuid,
    pub device_id: Uuid,
    pub active: bool,
    /// `None` once revoked.
    pub secret_hash: Option<String>,
}

/// The stored credentials of device `{org_slug}/{device}` (any organization:
/// the caller is not yet signed in to one).
pub async fn login_info(db: &Db, org_slug: &str, device: &str) -> Result<Option<DeviceLogin>> {
    Ok(sqlx::query_as::<_, DeviceLogin>(
        "SELECT organization_id, device_id, active, secret_hash FROM mp_device_credentials($1, $2)",
    )
    .bind(org_slug)
    .bind(device)
    .fetch_optional(db.pool())
    .await?)
}

/// The current state of these devices, for re-checking open connections:
/// (device id, active, secret hash). Missing ids were deleted.
pub async fn current_secrets(db: &Db, ids: &[Uuid]) -> Result<Vec<(Uuid, bool, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT device_id, active, secret_hash FROM mp_device_secrets($1)")
            .bind(ids)
            .fetch_all(db.pool())
            .await?,
    )
}

pub async fn get_device(tx: &mut Tx, id: Uuid) -> Result<Device> {
    sqlx::query_as::<_, Device>(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("device"))
}

pub async fn list_devices(tx: &mut Tx) -> Result<Vec<Device>> {
    Ok(
        sqlx::query_as::<_, Device>(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name"))
            .fetch_all(&mut **tx)
            .await?,
    )
}

pub async fn create_sensor(tx: &mut Tx, tenant: &Tenant, new: NewSensor) -> Result<Sensor> {
    let mut errors = Vec::new();
    if !valid_name(&new.metric) {
        errors.push(FieldError::new(
            "metric",
            "1-64 characters of letters, digits, '_', '.', '-'",
        ));
    }
    if let (Some(lo), Some(hi)) = (new.min_value, new.max_value) {
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
            errors.push(FieldError::new("maxValue", "must be greater than min_value"));
        }
    }
    for (field, v) in [("minValue", new.min_value), ("maxValue", new.max_value)] {
        if v.is_some_and(|v| !v.is_finite()) {
            errors.push(FieldError::new(field, "must be a finite number"));
        }
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    get_device(tx, new.device_id)
        .await
        .referenced("deviceId", "no such device")?;
    equipment::get(tx, new.equipment_id)
        .await
        .referenced("equipmentId", "no such equipment")?;
    let name = new
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| new.metric.clone());
    let sensor = sqlx::query_as::<_, Sensor>(&format!(
        "INSERT INTO sensors (id, organization_id, device_id, equipment_id, metric, name, unit, min_value, max_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {SENSOR_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(new.device_id)
    .bind(new.equipment_id)
    .bind(&new.metric)
    .bind(name)
    .bind(new.unit)
    .bind(new.min_value)
    .bind(new.max_value)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "sensors_metric_key", || {
            ModelError::Conflict(format!("the device already has a sensor for metric '{}'", new.metric))
        })
    })?;
    events::emit(tx, tenant, "sensor.created", Some(sensor.id), &sensor).await?;
    Ok(sensor)
}

pub async fn get_sensor(tx: &mut Tx, id: Uuid) -> Result<Sensor> {
    sqlx::query_as::<_, Sensor>(&format!("SELECT {SENSOR_COLUMNS} FROM sensors WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("sensor"))
}

pub async fn list_sensors(
    tx: &mut Tx,
    equipment_id: Option<Uuid>,
    device_id: Option<Uuid>,
) -> Result<Vec<Sensor>> {
    Ok(sqlx::query_as::<_, Sensor>(&format!(
        "SELECT {SENSOR_COLUMNS} FROM sensors
         WHERE ($1::uuid IS NULL OR equipment_id = $1) AND ($2::uuid IS NULL OR device_id = $2)
         ORDER BY name, id"
    ))
    .bind(equipment_id)
    .bind(device_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// A device as ingest sees it: its organization and its sensors by metric.
#[derive(Debug, Clone)]
pub struct ResolvedDevice {
    pub organization_id: Uuid,
    pub device_id: Uuid,
    pub active: bool,
    pub sensors: HashMap<String, Uuid>,
}

/// Resolves `mp/v1/{org_slug}/{device}/…` to a device and its sensors.
pub async fn resolve(db: &Db, org_slug: &str, device: &str) -> Result<Option<ResolvedDevice>> {
    #[derive(FromRow)]
    struct Row {
        organization_id: Uuid,
        device_id: Uuid,
        active: bool,
    }
    let Some(row) =
        sqlx::query_as::<_, Row>("SELECT organization_id, device_id, active FROM mp_resolve_device($1, $2)")
            .bind(org_slug)
            .bind(device)
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    let mut tx = db.tenant(row.organization_id).await?;
    let sensors: Vec<(String, Uuid)> = sqlx::query_as("SELECT metric, id FROM sensors WHERE device_id = $1")
        .bind(row.device_id)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("UPDATE devices SET last_seen_at = now() WHERE id = $1")
        .bind(row.device_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(ResolvedDevice {
        organization_id: row.organization_id,
        device_id: row.device_id,
        active: row.active,
        sensors: sensors.into_iter().collect(),
    }))
}

/// Sensor facts the detectors need, for every sensor of the organization.
#[derive(Debug, Clone, FromRow)]
pub struct SensorContext {
    pub id: Uuid,
    pub equipment_id: Uuid,
    pub metric: String,
    pub name: String,
    pub unit: String,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub equipment_name: String,
    pub criticality: String,
}

pub async fn sensor_contexts(tx: &mut Tx) -> Result<Vec<SensorContext>> {
    Ok(sqlx::query_as::<_, SensorContext>(
        "SELECT s.id, s.equipment_id, s.metric, s.name, s.unit, s.min_value, s.max_value,
                e.name AS equipment_name, e.criticality
         FROM sensors s JOIN equipment e ON e.id = s.equipment_id",
    )
    .fetch_all(&mut **tx)
    .await?)
}
