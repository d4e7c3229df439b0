//! Maintenance reports over a date range: MTBF, MTTR, availability, open and
//! overdue work, labour and parts cost — per asset and for the organization.
//!
//! Definitions (range [from, to)):
//! - failures: corrective or emergency work orders on the asset created in range;
//! - repair time of a completed failure: its recorded downtime (the sum of
//!   its ended downtime entries) when it has any, otherwise the hours from
//!   its creation to its completion;
//! - MTTR: mean repair time of the completed failures;
//! - MTBF: (range hours − repair hours) / failures, when there were failures;
//! - availability: when downtime was recorded on the asset (any work order,
//!   any reason) overlapping the range, 1 − (hours down within the range) /
//!   (range hours), overlapping entries counted once and running ones up to
//!   now; otherwise MTBF / (MTBF + MTTR), 1 when there were no failures;
//! - open / overdue: work orders active now / active and past their due date;
//! - labour minutes: time logged in range on the asset's work orders;
//! - parts cost: parts issued minus returned in range to the asset's work orders.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{ModelError, Result};

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportRange {
    /// Start (default 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// End, exclusive (default now).
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetReliability {
    pub equipment_id: Uuid,
    pub name: String,
    pub asset_tag: String,
    pub failures: i64,
    pub mttr_hours: Option<f64>,
    pub mtbf_hours: Option<f64>,
    pub availability: f64,
    pub open_work_orders: i64,
    pub overdue_work_orders: i64,
    pub labour_minutes: i64,
    pub parts_cost_cents: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReliabilityReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub assets: Vec<AssetReliability>,
    pub total_failures: i64,
    pub total_open: i64,
    pub total_overdue: i64,
    pub total_labour_minutes: i64,
    pub total_parts_cost_cents: i64,
}

pub async fn reliability(tx: &mut Tx, range: &ReportRange) -> Result<ReliabilityReport> {
    let to = range.to.unwrap_or_else(Utc::now);
    let from = range.from.unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ModelError::invalid("from", "must be before 'to'"));
    }
    if to - from > Duration::days(3660) {
        return Err(ModelError::invalid(
            "from",
            "the range may span at most ten years",
        ));
    }
    let hours = (to - from).num_seconds() as f64 / 3600.0;
    let assets = sqlx::query_as::<_, AssetReliability>(
        "WITH recorded AS (
             SELECT work_order_id, sum(extract(epoch FROM ended_at - started_at) / 3600.0) AS hours
             FROM work_order_downtime WHERE ended_at IS NOT NULL
             GROUP BY work_order_id),
         repairs AS (
             SELECT w.equipment_id, w.completed_at,
                    coalesce(r.hours, extract(epoch FROM w.completed_at - w.created_at) / 3600.0) AS hours
             FROM work_orders w LEFT JOIN recorded r ON r.work_order_id = w.id
             WHERE w.kind IN ('corrective', 'emergency') AND w.created_at >= $1 AND w.created_at < $2
               AND w.equipment_id IS NOT NULL),
         failures AS (
             SELECT equipment_id, count(*) AS n,
                    avg(hours) FILTER (WHERE completed_at IS NOT NULL) AS mttr,
                    coalesce(sum(hours) FILTER (WHERE completed_at IS NOT NULL), 0) AS repair_hours
             FROM repairs
             GROUP BY equipment_id),
         down AS (
             SELECT equipment_id, sum(extract(epoch FROM upper(span) - lower(span)) / 3600.0) AS hours
             FROM (SELECT equipment_id,
                          unnest(range_agg(tstzrange(greatest(started_at, $1),
                                                     least(coalesce(ended_at, now()), $2)))) AS span
                   FROM work_order_downtime
                   WHERE started_at < $2 AND coalesce(ended_at, now()) > $1
                     AND coalesce(ended_at, now()) > started_at
                   GROUP BY equipment_id) spans
             GROUP BY equipment_id),
         backlog AS (
             SELECT equipment_id, count(*) AS open,
                    count(*) FILTER (WHERE due_at < now()) AS overdue
             FROM work_orders WHERE status IN ('open', 'in_progress', 'on_hold') AND equipment_id IS NOT NULL
             GROUP BY equipment_id),
         labour AS (
             SELECT w.equipment_id, sum(t.minutes) AS minutes
             FROM work_order_time_logs t JOIN work_orders w ON w.id = t.work_order_id
             WHERE t.performed_on >= $1::date AND t.performed_on < $2::date + 1
             GROUP BY w.equipment_id),
         parts AS (
             SELECT w.equipment_id, sum(-m.quantity * m.unit_cost_cents) AS cents
             FROM stock_movements m JOIN work_orders w ON w.id = m.work_order_id
             WHERE m.kind IN ('issue', 'return') AND m.created_at >= $1 AND m.created_at < $2
             GROUP BY w.equipment_id)
         SELECT e.id AS equipment_id, e.name, e.asset_tag,
                coalesce(f.n, 0)::bigint AS failures,
                f.mttr::float8 AS mttr_hours,
                CASE WHEN f.n > 0 THEN (($3 - f.repair_hours) / f.n)::float8 END AS mtbf_hours,
                CASE WHEN d.hours IS NOT NULL THEN greatest(0.0, 1.0 - d.hours / $3)::float8
                     WHEN coalesce(f.n, 0) = 0 THEN 1.0
                     WHEN f.mttr IS NULL THEN 1.0
                     ELSE (($3 - f.repair_hours) / f.n / (($3 - f.repair_hours) / f.n + f.mttr))::float8
                END AS availability,
                coalesce(b.open, 0)::bigint AS open_work_orders,
                coalesce(b.overdue, 0)::bigint AS overdue_work_orders,
                coalesce(l.minutes, 0)::bigint AS labour_minutes,
                coalesce(p.cents, 0)::bigint AS parts_cost_cents
         FROM equipment e
         LEFT JOIN failures f ON f.equipment_id = e.id
         LEFT JOIN backlog b ON b.equipment_id = e.id
         LEFT JOIN labour l ON l.equipment_id = e.id
         LEFT JOIN parts p ON p.equipment_id = e.id
         LEFT JOIN down d ON d.equipment_id = e.id
         ORDER BY coalesce(f.n, 0) DESC, e.name, e.id",
    )
    .bind(from)
    .bind(to)
    .bind(hours)
    .fetch_all(&mut **tx)
    .await?;
    Ok(ReliabilityReport {
        from,
        to,
        total_failures: assets.iter().map(|a| a.failures).sum(),
        total_open: assets.iter().map(|a| a.open_work_orders).sum(),
        total_overdue: assets.iter().map(|a| a.overdue_work_orders).sum(),
        total_labour_minutes: assets.iter().map(|a| a.labour_minutes).sum(),
        total_parts_cost_cents: assets.iter().map(|a| a.parts_cost_cents).sum(),
        assets,
    })
}
