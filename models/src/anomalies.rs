//! Anomaly episodes: one row from the first anomalous point of a sensor to
//! its return to normal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auto_policy::SuppressReason;
use crate::db::{Tenant, Tx};
use crate::error::{ModelError, Result};
use crate::events;
use crate::page::{self, Cursor, Page};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub id: Uuid,
    pub sensor_id: Uuid,
    pub equipment_id: Uuid,
    /// What was seen: spike, level_shift, out_of_range, stuck, …
    pub kind: String,
    /// Which detector found it.
    pub detector: String,
    /// open | closed
    pub status: String,
    /// low | medium | high | critical
    pub severity: String,
    pub score: f64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub peak_value: f64,
    pub baseline: Option<f64>,
    /// Anomalous points in the episode.
    pub points: i32,
    pub details: serde_json::Value,
    /// The work order this anomaly raised or added to (for a
    /// `parent_alarm` suppression: the ancestor's work order it was
    /// recorded on).
    pub work_order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The auto work-order key it was raised under (`process:…`,
    /// `sensor_health:…`); absent when it never asked for a work order.
    pub failure_mode: Option<String>,
    /// true_alarm | false_alarm: the verdict of its work order, once completed.
    pub verdict: Option<String>,
    /// cooldown | flapping | parent_alarm: why it raised no work order of
    /// its own (see the auto work-order policy).
    pub suppressed_reason: Option<String>,
    /// For a cooldown suppression: when the cooldown ends.
    pub suppressed_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewAnomaly {
    pub sensor_id: Uuid,
    pub equipment_id: Uuid,
    pub kind: String,
    pub detector: String,
    pub severity: String,
    pub score: f64,
    pub started_at: DateTime<Utc>,
    pub peak_value: f64,
    pub baseline: Option<f64>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyFilter {
    /// open | closed
    pub status: Option<String>,
    pub sensor_id: Option<Uuid>,
    pub equipment_id: Option<Uuid>,
    /// low | medium | high | critical
    pub severity: Option<String>,
    /// One of [`KINDS`]: high, low, out_of_range, stuck, drift, no_data,
    /// multivariate, predicted_high, predicted_low.
    pub kind: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// The severities an anomaly can have (the table's CHECK).
pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// The kinds analytics records: its detector's kinds (`AnomalyKind`), the
/// per-asset multivariate detector and the failure predictions.
pub const KINDS: &[&str] = &[
    "high",
    "low",
    "out_of_range",
    "stuck",
    "drift",
    "no_data",
    "multivariate",
    "predicted_high",
    "predicted_low",
];

pub(crate) const COLUMNS: &str =
    "id, sensor_id, equipment_id, kind, detector, status, severity, score, started_at, ended_at, \
     peak_value, baseline, points, details, work_order_id, created_at, failure_mode, verdict, \
     suppressed_reason, suppressed_until";

pub async fn open(tx: &mut Tx, tenant: &Tenant, new: NewAnomaly) -> Result<Anomaly> {
    let a = sqlx::query_as::<_, Anomaly>(&format!(
        "INSERT INTO anomalies (id, organization_id, sensor_id, equipment_id, kind, detector, severity, score,
                                started_at, peak_value, baseline, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(new.sensor_id)
    .bind(new.equipment_id)
    .bind(&new.kind)
    .bind(&new.detector)
    .bind(&new.severity)
    .bind(new.score)
    .bind(new.started_at)
    .bind(new.peak_value)
    .bind(new.baseline)
    .bind(&new.details)
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, "anomaly.opened", Some(a.id), &a).await?;
    Ok(a)
}

/// Records more anomalous points in an open episode.
pub async fn extend(tx: &mut Tx, id: Uuid, points: i32, score: f64, peak_value: f64) -> Result<()> {
    sqlx::query(
        "UPDATE anomalies SET points = $2, score = greatest(score, $3), peak_value = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(points)
    .bind(score)
    .bind(peak_value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends an episode.
pub async fn close(tx: &mut Tx, tenant: &Tenant, id: Uuid, ended_at: DateTime<Utc>) -> Result<()> {
    let a = sqlx::query_as::<_, Anomaly>(&format!(
        "UPDATE anomalies SET status = 'closed', ended_at = $2 WHERE id = $1 AND status = 'open' RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(ended_at)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(a) = a {
        events::emit(tx, tenant, "anomaly.closed", Some(a.id), &a).await?;
    }
    Ok(())
}

pub async fn link_work_order(tx: &mut Tx, id: Uuid, work_order_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE anomalies SET work_order_id = $2 WHERE id = $1")
        .bind(id)
        .bind(work_order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records what the auto work-order policy did with an anomaly: the key it
/// was raised under, the work order it raised or joined (if any), and why
/// it was suppressed (if it was).
pub(crate) async fn record_raise(
    tx: &mut Tx,
    id: Uuid,
    failure_mode: &str,
    work_order_id: Option<Uuid>,
    suppressed: Option<&SuppressReason>,
) -> Result<()> {
    let until = match suppressed {
        Some(SuppressReason::Cooldown { until }) => Some(*until),
        _ => None,
    };
    let done = sqlx::query(
        "UPDATE anomalies SET failure_mode = $2, work_order_id = coalesce($3, work_order_id),
                              suppressed_reason = $4, suppressed_until = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(failure_mode)
    .bind(work_order_id)
    .bind(suppressed.map(SuppressReason::as_str))
    .bind(until)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ModelError::NotFound("anomaly"));
    }
    Ok(())
}

/// Copies a completed work order's verdict onto every anomaly linked to it.
pub(crate) async fn record_verdict(tx: &mut Tx, work_order_id: Uuid, verdict: &str) -> Result<()> {
    sqlx::query("UPDATE anomalies SET verdict = $2 WHERE work_order_id = $1")
        .bind(work_order_id)
        .bind(verdict)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Closed anomalies of `kind` on an asset, newest first (see
/// [`crate::auto_policy::similar_anomalies`]).
pub(crate) async fn similar(tx: &mut Tx, equipment_id: Uuid, kind: &str, limit: i64) -> Result<Vec<Anomaly>> {
    Ok(sqlx::query_as::<_, Anomaly>(&format!(
        "SELECT {COLUMNS} FROM anomalies
         WHERE equipment_id = $1 AND kind = $2 AND status = 'closed'
         ORDER BY started_at DESC, id DESC LIMIT $3"
    ))
    .bind(equipment_id)
    .bind(kind)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Anomaly> {
    sqlx::query_as::<_, Anomaly>(&format!("SELECT {COLUMNS} FROM anomalies WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("anomaly"))
}

/// Open episodes, to resume detection state after a restart.
pub async fn list_open(tx: &mut Tx) -> Result<Vec<Anomaly>> {
    Ok(
        sqlx::query_as::<_, Anomaly>(&format!("SELECT {COLUMNS} FROM anomalies WHERE status = 'open'"))
            .fetch_all(&mut **tx)
            .await?,
    )
}

pub async fn list(tx: &mut Tx, filter: &AnomalyFilter) -> Result<Page<Anomaly>> {
    let limit = page::limit(filter.limit)?;
    if let Some(s) = filter.status.as_deref() {
        if s != "open" && s != "closed" {
            return Err(ModelError::invalid("status", "must be open or closed"));
        }
    }
    if let Some(s) = filter.severity.as_deref() {
        if !SEVERITIES.contains(&s) {
            return Err(ModelError::invalid(
                "severity",
                format!("must be one of {}", SEVERITIES.join(", ")),
            ));
        }
    }
    if let Some(k) = filter.kind.as_deref() {
        if !KINDS.contains(&k) {
            return Err(ModelError::invalid(
                "kind",
                format!("must be one of {}", KINDS.join(", ")),
            ));
        }
    }
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    let rows = sqlx::query_as::<_, Anomaly>(&format!(
        "SELECT {COLUMNS} FROM anomalies
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::uuid IS NULL OR sensor_id = $2)
           AND ($3::uuid IS NULL OR equipment_id = $3)
           AND ($4::timestamptz IS NULL OR (started_at, id) < ($4, $5))
           AND ($7::text IS NULL OR severity = $7)
           AND ($8::text IS NULL OR kind = $8)
         ORDER BY started_at DESC, id DESC LIMIT $6"
    ))
    .bind(filter.status.as_deref())
    .bind(filter.sensor_id)
    .bind(filter.equipment_id)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .bind(filter.severity.as_deref())
    .bind(filter.kind.as_deref())
    .fetch_all(&mut **tx)
    .await?;
    Ok(page::paginate(rows, limit, |a| Cursor {
        at: a.started_at,
        id: a.id,
    }))
}
