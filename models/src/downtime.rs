//! Downtime recorded on a work order: when its equipment was out of
//! service and why. Entries of one work order never overlap; an entry
//! without an end is still running (at most one per work order), and a
//! work order cannot be completed while one runs. Reports use these
//! entries for availability and repair time (see [`crate::reports`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{FieldError, ModelError, Result};
use crate::events;
use crate::work_orders::{self, Status, WorkOrder};

/// How far in the future a time may lie (clock skew between devices).
pub const FUTURE_SKEW: Duration = Duration::minutes(5);
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Why the equipment was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DowntimeReason {
    Breakdown,
    PlannedMaintenance,
    WaitingParts,
    WaitingLabor,
    Inspection,
    Other,
}

impl DowntimeReason {
    pub const ALL: [DowntimeReason; 6] = [
        DowntimeReason::Breakdown,
        DowntimeReason::PlannedMaintenance,
        DowntimeReason::WaitingParts,
        DowntimeReason::WaitingLabor,
        DowntimeReason::Inspection,
        DowntimeReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DowntimeReason::Breakdown => "breakdown",
            DowntimeReason::PlannedMaintenance => "planned_maintenance",
            DowntimeReason::WaitingParts => "waiting_parts",
            DowntimeReason::WaitingLabor => "waiting_labor",
            DowntimeReason::Inspection => "inspection",
            DowntimeReason::Other => "other",
        }
    }
}

impl fmt::Display for DowntimeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DowntimeReason {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        DowntimeReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ModelError::invalid("reason", format!("unknown downtime reason '{s}'")))
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Downtime {
    pub id: Uuid,
    pub work_order_id: Uuid,
    /// The work order's equipment.
    pub equipment_id: Uuid,
    pub started_at: DateTime<Utc>,
    /// Absent while the equipment is still down.
    pub ended_at: Option<DateTime<Utc>>,
    pub reason: DowntimeReason,
    pub note: String,
    /// Absent when a service recorded it.
    pub recorded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Downtime {
    pub fn is_running(&self) -> bool {
        self.ended_at.is_none()
    }
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    work_order_id: Uuid,
    equipment_id: Uuid,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    reason: String,
    note: String,
    recorded_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Downtime {
    type Error = ModelError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Downtime {
            id: r.id,
            work_order_id: r.work_order_id,
            equipment_id: r.equipment_id,
            started_at: r.started_at,
            ended_at: r.ended_at,
            reason: r.reason.parse()?,
            note: r.note,
            recorded_by: r.recorded_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str =
    "id, work_order_id, equipment_id, started_at, ended_at, reason, note, recorded_by, created_at, updated_at";

/// Downtime to record on a work order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewDowntime {
    /// Default now.
    pub started_at: Option<DateTime<Utc>>,
    /// Absent: the equipment is still down (end it later with PATCH).
    pub ended_at: Option<DateTime<Utc>>,
    pub reason: DowntimeReason,
    #[serde(default)]
    pub note: String,
}

/// A correction of an entry, or its end.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DowntimePatch {
    pub started_at: Option<DateTime<Utc>>,
    /// The end; `null` makes the entry run again (only on an unfinished work order).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ended_at: Option<Option<DateTime<Utc>>>,
    pub reason: Option<DowntimeReason>,
    pub note: Option<String>,
}

/// Present-and-null vs absent, for PATCH fields that may be cleared.
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Problems with an entry's times, as of `now`.
pub fn check_times(
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if started_at > now + FUTURE_SKEW {
        errors.push(FieldError::new("startedAt", "must not be in the future"));
    }
    if let Some(end) = ended_at {
        if end > now + FUTURE_SKEW {
            errors.push(FieldError::new("endedAt", "must not be in the future"));
        }
        if end <= started_at {
            errors.push(FieldError::new("endedAt", "must be after startedAt"));
        }
    }
    errors
}

fn check_note(note: &str, errors: &mut Vec<FieldError>) {
    if note.trim().chars().count() > MAX_NOTE_CHARS {
        errors.push(FieldError::new(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
}

/// A work order's downtime, oldest first, if `tenant` may see the work order.
pub async fn list(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid) -> Result<Vec<Downtime>> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    entries(tx, work_order_id).await
}

/// A work order's downtime, oldest first (no visibility check).
pub(crate) async fn entries(tx: &mut Tx, work_order_id: Uuid) -> Result<Vec<Downtime>> {
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM work_order_downtime WHERE work_order_id = $1 ORDER BY started_at, id"
    ))
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(Downtime::try_from)
    .collect()
}

/// Locks the work order and checks that downtime may be recorded on it:
/// it has equipment and is not verified or cancelled. Returns the
/// equipment.
async fn writable(tx: &mut Tx, work_order_id: Uuid) -> Result<(WorkOrder, Uuid)> {
    let wo = work_orders::lock(tx, work_order_id).await?;
    if matches!(wo.status, Status::Verified | Status::Cancelled) {
        return Err(ModelError::Conflict(format!(
            "downtime of a {} work order cannot change",
            wo.status
        )));
    }
    let Some(equipment_id) = wo.equipment_id else {
        return Err(ModelError::Conflict(
            "downtime is recorded against the work order's equipment, and this work order has none".into(),
        ));
    };
    Ok((wo, equipment_id))
}

/// A completed work order takes only ended entries (corrections after the
/// fact): completion required its downtime to have ended.
fn check_ended_if_completed(wo: &WorkOrder, ended: bool) -> Result<()> {
    if wo.status == Status::Completed && !ended {
        return Err(ModelError::invalid(
            "endedAt",
            "required: the work order is completed, so its downtime has ended",
        ));
    }
    Ok(())
}

/// Refuses an entry that would overlap another entry of the same work order.
async fn check_overlap(
    tx: &mut Tx,
    work_order_id: Uuid,
    except: Option<Uuid>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let other: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM work_order_downtime
         WHERE work_order_id = $1 AND id IS DISTINCT FROM $2
           AND tstzrange(started_at, ended_at) && tstzrange($3, $4)
         ORDER BY started_at LIMIT 1",
    )
    .bind(work_order_id)
    .bind(except)
    .bind(started_at)
    .bind(ended_at)
    .fetch_optional(&mut **tx)
    .await?;
    match other {
        Some(id) => Err(ModelError::invalid(
            "startedAt",
            format!("overlaps downtime {id} of this work order"),
        )),
        None => Ok(()),
    }
}

/// Records downtime of the work order's equipment.
pub async fn record(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, new: NewDowntime) -> Result<Downtime> {
    let now = Utc::now();
    let started_at = new.started_at.unwrap_or(now);
    let mut errors = check_times(started_at, new.ended_at, now);
    check_note(&new.note, &mut errors);
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let (wo, equipment_id) = writable(tx, work_order_id).await?;
    check_ended_if_completed(&wo, new.ended_at.is_some())?;
    check_overlap(tx, work_order_id, None, started_at, new.ended_at).await?;
    let d: Downtime = sqlx::query_as::<_, Row>(&format!(
        "INSERT INTO work_order_downtime (id, organization_id, work_order_id, equipment_id, started_at, ended_at,
                                          reason, note, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(equipment_id)
    .bind(started_at)
    .bind(new.ended_at)
    .bind(new.reason.as_str())
    .bind(new.note.trim())
    .bind(tenant.actor.user_id())
    .fetch_one(&mut **tx)
    .await?
    .try_into()?;
    events::emit(
        tx,
        tenant,
        "work_order.downtime_recorded",
        Some(work_order_id),
        &d,
    )
    .await?;
    Ok(d)
}

/// Ends an entry or corrects it (times, reason, note).
pub async fn update(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    id: Uuid,
    patch: DowntimePatch,
) -> Result<Downtime> {
    let (wo, _) = writable(tx, work_order_id).await?;
    let current = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM work_order_downtime WHERE id = $1 AND work_order_id = $2"
    ))
    .bind(id)
    .bind(work_order_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("downtime"))?;
    let started_at = patch.started_at.unwrap_or(current.started_at);
    let ended_at = patch.ended_at.unwrap_or(current.ended_at);
    let now = Utc::now();
    let mut errors = check_times(started_at, ended_at, now);
    if let Some(note) = &patch.note {
        check_note(note, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    check_ended_if_completed(&wo, ended_at.is_some())?;
    check_overlap(tx, work_order_id, Some(id), started_at, ended_at).await?;
    let d: Downtime = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_order_downtime
         SET started_at = $2, ended_at = $3, reason = coalesce($4, reason), note = coalesce($5, note),
             updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(started_at)
    .bind(ended_at)
    .bind(patch.reason.map(DowntimeReason::as_str))
    .bind(patch.note.as_deref().map(str::trim))
    .fetch_one(&mut **tx)
    .await?
    .try_into()?;
    events::emit(tx, tenant, "work_order.downtime_updated", Some(work_order_id), &d).await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_checked() {
        let now = Utc::now();
        let h = Duration::hours(1);
        assert!(check_times(now - h, Some(now), now).is_empty());
        assert!(check_times(now - h, None, now).is_empty());
        // A little skew is fine, the future is not.
        assert!(check_times(now + Duration::minutes(1), None, now).is_empty());
        let fields = |e: Vec<FieldError>| e.into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(check_times(now + h, None, now)), ["startedAt"]);
        assert_eq!(fields(check_times(now - h, Some(now - h), now)), ["endedAt"]);
        assert_eq!(fields(check_times(now - h, Some(now + h), now)), ["endedAt"]);
    }

    #[test]
    fn reasons_roundtrip() {
        for r in DowntimeReason::ALL {
            assert_eq!(r.as_str().parse::<DowntimeReason>().ok(), Some(r));
            let json = serde_json::to_value(r).ok();
            assert_eq!(json.as_ref().and_then(|v| v.as_str()), Some(r.as_str()));
        }
    }
}
