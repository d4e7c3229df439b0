//! Preventive maintenance: calendar and condition schedules, and the job
//! step that turns due occurrences into work orders exactly once.

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::checklists::{self, ChecklistTemplateItem};
use crate::db::{Db, Tenant, Tx};
use crate::error::{FieldError, ModelError, Result};
use crate::events;
use crate::work_orders::{self, Kind, NewWorkOrder, Priority, WorkOrder};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PmSchedule {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub equipment_id: Uuid,
    pub priority: String,
    pub assigned_to: Option<Uuid>,
    /// calendar | condition
    pub trigger: String,
    pub interval_count: Option<i32>,
    /// day | week | month
    pub interval_unit: Option<String>,
    /// due (next = previous due + interval) | completion (next = completion + interval)
    pub anchor: Option<String>,
    pub next_due_at: Option<DateTime<Utc>>,
    pub sensor_id: Option<Uuid>,
    /// above | below | outside
    pub condition: Option<String>,
    pub threshold_low: Option<f64>,
    pub threshold_high: Option<f64>,
    /// Checklist copied to every work order the schedule generates.
    #[sqlx(json)]
    pub checklist: Vec<ChecklistTemplateItem>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPmSchedule {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub equipment_id: Uuid,
    pub priority: Option<Priority>,
    pub assigned_to: Option<Uuid>,
    /// calendar | condition
    pub trigger: String,
    pub interval_count: Option<i32>,
    pub interval_unit: Option<String>,
    /// due | completion (default due)
    pub anchor: Option<String>,
    /// First due date of a calendar schedule (default now).
    pub first_due_at: Option<DateTime<Utc>>,
    pub sensor_id: Option<Uuid>,
    pub condition: Option<String>,
    pub threshold_low: Option<f64>,
    pub threshold_high: Option<f64>,
    /// Checklist template (at most 100 items) copied to every generated work order.
    #[serde(default)]
    pub checklist: Vec<ChecklistTemplateItem>,
}

const COLUMNS: &str = "id, title, description, equipment_id, priority, assigned_to, trigger, interval_count, \
     interval_unit, anchor, next_due_at, sensor_id, condition, threshold_low, threshold_high, checklist, active, \
     created_at";

fn validate(new: &NewPmSchedule) -> Result<()> {
    let mut e = Vec::new();
    if new.title.trim().is_empty() || new.title.chars().count() > 200 {
        e.push(FieldError::new("title", "must be 1-200 characters"));
    }
    match new.trigger.as_str() {
        "calendar" => {
            if !new.interval_count.is_some_and(|n| (1..=1000).contains(&n)) {
                e.push(FieldError::new(
                    "intervalCount",
                    "1-1000 required for a calendar schedule",
                ));
            }
            if !matches!(new.interval_unit.as_deref(), Some("day" | "week" | "month")) {
                e.push(FieldError::new(
                    "intervalUnit",
                    "day, week or month required for a calendar schedule",
                ));
            }
            if !matches!(new.anchor.as_deref(), None | Some("due" | "completion")) {
                e.push(FieldError::new("anchor", "must be due or completion"));
            }
        }
        "condition" => {
            if new.sensor_id.is_none() {
                e.push(FieldError::new("sensorId", "required for a condition schedule"));
            }
            let (lo, hi) = (new.threshold_low, new.threshold_high);
            match new.condition.as_deref() {
                Some("above") if hi.is_none() => {
                    e.push(FieldError::new("thresholdHigh", "required for 'above'"))
                }
                Some("below") if lo.is_none() => {
                    e.push(FieldError::new("thresholdLow", "required for 'below'"))
                }
                Some("outside") if lo.is_none() || hi.is_none() || lo >= hi => e.push(FieldError::new(
                    "thresholdHigh",
                    "'outside' needs threshold_low < threshold_high",
                )),
                Some("above" | "below" | "outside") => {}
                _ => e.push(FieldError::new("condition", "above, below or outside required")),
            }
        }
        _ => e.push(FieldError::new("trigger", "must be calendar or condition")),
    }
    e.extend(checklists::validate_template(&new.checklist, "checklist"));
    if e.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Validation(e))
    }
}

pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewPmSchedule) -> Result<PmSchedule> {
    validate(&new)?;
    work_orders::check_references(tx, Some(new.equipment_id), new.sensor_id, new.assigned_to).await?;
    let calendar = new.trigger == "calendar";
    let s = sqlx::query_as::<_, PmSchedule>(&format!(
        "INSERT INTO pm_schedules (id, organization_id, title, description, equipment_id, priority, assigned_to,
                                   trigger, interval_count, interval_unit, anchor, next_due_at, sensor_id,
                                   condition, threshold_low, threshold_high, checklist)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(new.title.trim())
    .bind(new.description.trim())
    .bind(new.equipment_id)
    .bind(new.priority.unwrap_or(Priority::Medium).as_str())
    .bind(new.assigned_to)
    .bind(&new.trigger)
    .bind(new.interval_count.filter(|_| calendar))
    .bind(new.interval_unit.filter(|_| calendar))
    .bind(calendar.then(|| new.anchor.unwrap_or_else(|| "due".into())))
    .bind(calendar.then(|| new.first_due_at.unwrap_or_else(Utc::now)))
    .bind(new.sensor_id.filter(|_| !calendar))
    .bind(new.condition.filter(|_| !calendar))
    .bind(new.threshold_low.filter(|_| !calendar))
    .bind(new.threshold_high.filter(|_| !calendar))
    .bind(sqlx::types::Json(&new.checklist))
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, "pm_schedule.created", Some(s.id), &s).await?;
    Ok(s)
}

pub async fn list(tx: &mut Tx) -> Result<Vec<PmSchedule>> {
    Ok(
        sqlx::query_as::<_, PmSchedule>(&format!("SELECT {COLUMNS} FROM pm_schedules ORDER BY title, id"))
            .fetch_all(&mut **tx)
            .await?,
    )
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<PmSchedule> {
    sqlx::query_as::<_, PmSchedule>(&format!("SELECT {COLUMNS} FROM pm_schedules WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("pm schedule"))
}

/// `t` plus `count` units.
pub fn add_interval(t: DateTime<Utc>, count: i32, unit: &str) -> DateTime<Utc> {
    let n = i64::from(count.max(1));
    match unit {
        "week" => t + chrono::Duration::weeks(n),
        "month" => t
            .checked_add_months(Months::new(n as u32))
            .unwrap_or(t + chrono::Duration::days(30 * n)),
        _ => t + chrono::Duration::days(n),
    }
}

/// Whether a reading meets a condition schedule's trigger.
pub fn condition_met(s: &PmSchedule, value: f64) -> bool {
    match s.condition.as_deref() {
        Some("above") => s.threshold_high.is_some_and(|h| value > h),
        Some("below") => s.threshold_low.is_some_and(|l| value < l),
        Some("outside") => {
            s.threshold_low.is_some_and(|l| value < l) || s.threshold_high.is_some_and(|h| value > h)
        }
        _ => false,
    }
}

/// Generates the organization's due preventive work orders as of `now`, in
/// one transaction. Schedules are claimed with `FOR UPDATE SKIP LOCKED`, so
/// several workers may run this at once; an occurrence missed while the
/// service was down is generated once (older missed ones are skipped, not
/// piled up).
pub async fn run_due(db: &Db, org: Uuid, now: DateTime<Utc>) -> Result<Vec<WorkOrder>> {
    let tenant = Tenant::system(org, "scheduler");
    let mut tx = db.tenant_for(&tenant).await?;
    let mut made = Vec::new();

    // Completion-anchored schedules whose last work order is done get their next due date.
    sqlx::query(
        "UPDATE pm_schedules s
         SET next_due_at = CASE s.interval_unit
                 WHEN 'week' THEN w.done + make_interval(weeks => s.interval_count)
                 WHEN 'month' THEN w.done + make_interval(months => s.interval_count)
                 ELSE w.done + make_interval(days => s.interval_count) END
         FROM (SELECT DISTINCT ON (o.schedule_id) o.schedule_id,
                      coalesce(wo.completed_at, wo.updated_at) AS done, wo.status
               FROM pm_occurrences o JOIN work_orders wo ON wo.id = o.work_order_id
               ORDER BY o.schedule_id, o.due_at DESC) w
         WHERE w.schedule_id = s.id AND s.active AND s.anchor = 'completion' AND s.next_due_at IS NULL
           AND w.status IN ('completed', 'verified', 'cancelled')",
    )
    .execute(&mut *tx)
    .await?;

    let due = sqlx::query_as::<_, PmSchedule>(&format!(
        "SELECT {COLUMNS} FROM pm_schedules
         WHERE active AND trigger = 'calendar' AND next_due_at <= $1
         ORDER BY next_due_at FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    for s in due {
        let Some(due_at) = s.next_due_at else { continue };
        if let Some(wo) = generate(&mut tx, &tenant, &s, due_at).await? {
            made.push(wo);
        }
        let next = if s.anchor.as_deref() == Some("completion") {
            None
        } else {
            let (count, unit) = (
                s.interval_count.unwrap_or(1),
                s.interval_unit.clone().unwrap_or_default(),
            );
            let mut next = add_interval(due_at, count, &unit);
            let mut skipped = 0;
            while next <= now {
                next = add_interval(next, count, &unit);
                skipped += 1;
            }
            if skipped > 0 {
                tracing::warn!(schedule = %s.id, skipped, "missed preventive occurrences skipped (one generated)");
            }
            Some(next)
        };
        sqlx::query("UPDATE pm_schedules SET next_due_at = $2 WHERE id = $1")
            .bind(s.id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
    }

    let conditional = sqlx::query_as::<_, PmSchedule>(&format!(
        "SELECT {COLUMNS} FROM pm_schedules s
         WHERE active AND trigger = 'condition'
           AND NOT EXISTS (SELECT 1 FROM pm_occurrences o JOIN work_orders w ON w.id = o.work_order_id
                           WHERE o.schedule_id = s.id AND w.status IN ('open', 'in_progress', 'on_hold'))
         FOR UPDATE SKIP LOCKED"
    ))
    .fetch_all(&mut *tx)
    .await?;
    for s in conditional {
        let Some(sensor) = s.sensor_id else { continue };
        let latest: Option<(DateTime<Utc>, f64)> =
            sqlx::query_as("SELECT ts, value FROM readings WHERE sensor_id = $1 ORDER BY ts DESC LIMIT 1")
                .bind(sensor)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((ts, value)) = latest.filter(|(_, v)| condition_met(&s, *v)) {
            tracing::info!(schedule = %s.id, value, "condition met");
            if let Some(wo) = generate(&mut tx, &tenant, &s, ts).await? {
                made.push(wo);
            }
        }
    }
    tx.commit().await?;
    Ok(made)
}

/// Creates the work order for one occurrence unless it already exists.
async fn generate(
    tx: &mut Tx,
    tenant: &Tenant,
    s: &PmSchedule,
    due_at: DateTime<Utc>,
) -> Result<Option<WorkOrder>> {
    let exists: Option<Uuid> =
        sqlx::query_scalar("SELECT work_order_id FROM pm_occurrences WHERE schedule_id = $1 AND due_at = $2")
            .bind(s.id)
            .bind(due_at)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let new = NewWorkOrder {
        title: s.title.clone(),
        description: s.description.clone(),
        kind: Some(Kind::Preventive),
        priority: s.priority.parse().ok(),
        equipment_id: Some(s.equipment_id),
        sensor_id: s.sensor_id,
        assigned_to: s.assigned_to,
        due_at: Some(due_at),
    };
    let wo = work_orders::create_scheduled(tx, tenant, new, s.checklist.clone()).await?;
    sqlx::query("INSERT INTO pm_occurrences (organization_id, schedule_id, due_at, work_order_id) VALUES ($1, $2, $3, $4)")
        .bind(tenant.org_id)
        .bind(s.id)
        .bind(due_at)
        .bind(wo.id)
        .execute(&mut **tx)
        .await?;
    Ok(Some(wo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let t: DateTime<Utc> = "2026-01-31T08:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            add_interval(t, 2, "day").to_rfc3339(),
            "2026-02-02T08:00:00+00:00"
        );
        assert_eq!(
            add_interval(t, 1, "week").to_rfc3339(),
            "2026-02-07T08:00:00+00:00"
        );
        // Month ends clamp (Jan 31 + 1 month = Feb 28).
        assert_eq!(
            add_interval(t, 1, "month").to_rfc3339(),
            "2026-02-28T08:00:00+00:00"
        );
    }
}
