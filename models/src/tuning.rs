//! Detector tuning learned from verdicts, and baseline refit requests: the
//! "closed" part of the loop that analytics reads back.
//!
//! When an auto work order is completed with a verdict, every (sensor,
//! detector) among the anomalies linked to it is counted once: a false
//! alarm multiplies that sensor's `threshold_scale` by
//! [`FALSE_ALARM_FACTOR`] (capped at [`MAX_THRESHOLD_SCALE`]); a true alarm
//! divides it by [`TRUE_ALARM_FACTOR`] (never below 1). Analytics multiplies
//! its detection thresholds by the scale ([`threshold_scale`], [`all`]).
//! A true-alarm completion of the process or multivariate family (a repair)
//! also asks for a baseline refit ([`pending_refits`], [`mark_refit_done`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{ModelError, Result};

/// What one false alarm does to a sensor's threshold scale.
pub const FALSE_ALARM_FACTOR: f64 = 1.25;
/// What one true alarm does to it (toward 1).
pub const TRUE_ALARM_FACTOR: f64 = 1.1;
/// The widest thresholds verdicts can ask for.
pub const MAX_THRESHOLD_SCALE: f64 = 4.0;

/// The learned tuning of one detector on one sensor.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectorTuning {
    pub sensor_id: Uuid,
    pub detector: String,
    /// Multiplier of the detector's thresholds, 1 to 4.
    pub threshold_scale: f64,
    pub false_alarms: i32,
    pub true_alarms: i32,
    pub updated_at: DateTime<Utc>,
}

/// A request to refit a baseline after a repair.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefitRequest {
    pub id: Uuid,
    pub equipment_id: Uuid,
    /// Absent: every sensor of the asset.
    pub sensor_id: Option<Uuid>,
    /// The work order whose completion asked for it.
    pub work_order_id: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub reason: String,
    pub done_at: Option<DateTime<Utc>>,
}

/// The threshold scale of a detector on a sensor (1 when nothing was learned).
pub async fn threshold_scale(tx: &mut Tx, sensor_id: Uuid, detector: &str) -> Result<f64> {
    let scale: Option<f64> = sqlx::query_scalar(
        "SELECT threshold_scale FROM detector_tuning WHERE sensor_id = $1 AND detector = $2",
    )
    .bind(sensor_id)
    .bind(detector)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(scale.unwrap_or(1.0))
}

/// Every learned threshold scale of the organization, by (sensor, detector);
/// pairs not in the map have scale 1.
pub async fn all(tx: &mut Tx) -> Result<HashMap<(Uuid, String), f64>> {
    let rows: Vec<(Uuid, String, f64)> =
        sqlx::query_as("SELECT sensor_id, detector, threshold_scale FROM detector_tuning")
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(s, d, v)| ((s, d), v)).collect())
}

/// One sensor's tuning rows (every detector), for inspection.
pub async fn for_sensor(tx: &mut Tx, sensor_id: Uuid) -> Result<Vec<DetectorTuning>> {
    Ok(sqlx::query_as::<_, DetectorTuning>(
        "SELECT sensor_id, detector, threshold_scale, false_alarms, true_alarms, updated_at
         FROM detector_tuning WHERE sensor_id = $1 ORDER BY detector",
    )
    .bind(sensor_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Counts a completed work order's verdict against every (sensor, detector)
/// of the anomalies linked to it, once each.
pub(crate) async fn record_verdict(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    false_alarm: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO detector_tuning (id, organization_id, sensor_id, detector, threshold_scale,
                                      false_alarms, true_alarms)
         SELECT gen_random_uuid(), $2, k.sensor_id, k.detector,
                CASE WHEN $3 THEN least($4::float8, $5::float8) ELSE 1 END,
                CASE WHEN $3 THEN 1 ELSE 0 END, CASE WHEN $3 THEN 0 ELSE 1 END
         FROM (SELECT DISTINCT sensor_id, detector FROM anomalies WHERE work_order_id = $1) k
         ORDER BY k.sensor_id, k.detector
         ON CONFLICT ON CONSTRAINT detector_tuning_key DO UPDATE SET
             threshold_scale = CASE WHEN $3 THEN least(detector_tuning.threshold_scale * $4, $5)
                                    ELSE greatest(detector_tuning.threshold_scale / $6, 1) END,
             false_alarms = detector_tuning.false_alarms + CASE WHEN $3 THEN 1 ELSE 0 END,
             true_alarms = detector_tuning.true_alarms + CASE WHEN $3 THEN 0 ELSE 1 END,
             updated_at = now()",
    )
    .bind(work_order_id)
    .bind(tenant.org_id)
    .bind(false_alarm)
    .bind(FALSE_ALARM_FACTOR)
    .bind(MAX_THRESHOLD_SCALE)
    .bind(TRUE_ALARM_FACTOR)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Asks for a baseline refit, unless one for the same asset and sensor is
/// still pending.
pub(crate) async fn request_refit(
    tx: &mut Tx,
    tenant: &Tenant,
    equipment_id: Uuid,
    sensor_id: Option<Uuid>,
    work_order_id: Option<Uuid>,
    reason: &str,
) -> Result<()> {
    let reason: String = reason.chars().take(500).collect();
    sqlx::query(
        "INSERT INTO baseline_refits (id, organization_id, equipment_id, sensor_id, work_order_id, reason)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE NOT EXISTS (SELECT 1 FROM baseline_refits
                           WHERE equipment_id = $3 AND sensor_id IS NOT DISTINCT FROM $4 AND done_at IS NULL)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(equipment_id)
    .bind(sensor_id)
    .bind(work_order_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Refit requests not done yet, oldest first.
pub async fn pending_refits(tx: &mut Tx) -> Result<Vec<RefitRequest>> {
    Ok(sqlx::query_as::<_, RefitRequest>(
        "SELECT id, equipment_id, sensor_id, work_order_id, requested_at, reason, done_at
         FROM baseline_refits WHERE done_at IS NULL ORDER BY requested_at, id",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Marks a refit request done (not found: no such pending request).
pub async fn mark_refit_done(tx: &mut Tx, id: Uuid) -> Result<()> {
    let done = sqlx::query("UPDATE baseline_refits SET done_at = now() WHERE id = $1 AND done_at IS NULL")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ModelError::NotFound("refit request"));
    }
    Ok(())
}
