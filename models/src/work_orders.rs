//! Work orders: the status machine, numbering, and the one creation path
//! shared by people (API) and analytics (auto work orders).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Role;
use crate::db::{Actor, Tenant, Tx};
use crate::error::{FieldError, ModelError, Referenced, Result};
use crate::page::{self, Cursor, Page};
use crate::{anomalies, equipment, events};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    ModelError::invalid(stringify!($name), format!("'{s}' is not one of {}", all.join(", ")))
                })
            }
        }
    };
}

string_enum!(
    /// Where a work order is in its life.
    Status {
        Open => "open",
        InProgress => "in_progress",
        OnHold => "on_hold",
        Completed => "completed",
        Verified => "verified",
        Cancelled => "cancelled",
    }
);

string_enum!(
    Kind {
        Corrective => "corrective",
        Preventive => "preventive",
        Inspection => "inspection",
        Emergency => "emergency",
    }
);

string_enum!(
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

string_enum!(
    Source {
        Manual => "manual",
        Auto => "auto",
    }
);

impl Status {
    /// The status machine: open → in_progress ↔ on_hold → completed →
    /// verified; cancelled from open, in_progress or on_hold. Nothing else.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Open, InProgress)
                | (InProgress, OnHold)
                | (OnHold, InProgress)
                | (InProgress, Completed)
                | (OnHold, Completed)
                | (Completed, Verified)
                | (Open, Cancelled)
                | (InProgress, Cancelled)
                | (OnHold, Cancelled)
        )
    }

    /// Statuses that count as "still open" for deduplication and overdue checks.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::InProgress | Status::OnHold)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkOrder {
    pub id: Uuid,
    /// Per-organization number, e.g. WO-000123.
    pub code: String,
    pub number: i64,
    pub title: String,
    pub description: String,
    pub kind: Kind,
    pub status: Status,
    pub priority: Priority,
    pub source: Source,
    pub equipment_id: Option<Uuid>,
    pub sensor_id: Option<Uuid>,
    /// The anomaly that raised this (auto work orders).
    pub anomaly_id: Option<Uuid>,
    /// How many anomalies this work order covers (auto work orders).
    pub occurrence_count: i32,
    pub last_occurrence_at: Option<DateTime<Utc>>,
    pub requested_by: Option<Uuid>,
    pub assigned_to: Option<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    code: String,
    number: i64,
    title: String,
    description: String,
    kind: String,
    status: String,
    priority: String,
    source: String,
    equipment_id: Option<Uuid>,
    sensor_id: Option<Uuid>,
    anomaly_id: Option<Uuid>,
    occurrence_count: i32,
    last_occurrence_at: Option<DateTime<Utc>>,
    requested_by: Option<Uuid>,
    assigned_to: Option<Uuid>,
    due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for WorkOrder {
    type Error = ModelError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(WorkOrder {
            id: r.id,
            code: r.code,
            number: r.number,
            title: r.title,
            description: r.description,
            kind: r.kind.parse()?,
            status: r.status.parse()?,
            priority: r.priority.parse()?,
            source: r.source.parse()?,
            equipment_id: r.equipment_id,
            sensor_id: r.sensor_id,
            anomaly_id: r.anomaly_id,
            occurrence_count: r.occurrence_count,
            last_occurrence_at: r.last_occurrence_at,
            requested_by: r.requested_by,
            assigned_to: r.assigned_to,
            due_at: r.due_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        })
    }
}

const COLUMNS: &str = "id, code, number, title, description, kind, status, priority, source, equipment_id, \
     sensor_id, anomaly_id, occurrence_count, last_occurrence_at, requested_by, assigned_to, due_at, \
     created_at, updated_at, completed_at";

/// A work order to create. People fill it through the API; analytics fills
/// it through [`raise_auto`], which adds the auto fields.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewWorkOrder {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Default corrective.
    pub kind: Option<Kind>,
    /// Default medium.
    pub priority: Option<Priority>,
    pub equipment_id: Option<Uuid>,
    pub sensor_id: Option<Uuid>,
    pub assigned_to: Option<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
}

impl NewWorkOrder {
    fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new("title", "must be 1-200 characters"));
        }
        if self.description.len() > 20_000 {
            errors.push(FieldError::new("description", "must be at most 20000 bytes"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Validation(errors))
        }
    }
}

/// The auto-work-order fields analytics supplies.
#[derive(Debug, Clone)]
struct AutoFields {
    dedup_key: String,
    anomaly_id: Uuid,
}

/// Requesters see (and comment on) only the work orders they requested;
/// everyone else with `work_orders:view` sees all of the organization's.
pub fn requester_scope(tenant: &Tenant) -> Option<Uuid> {
    match tenant.actor {
        Actor::User {
            id,
            role: Role::Requester,
        } => Some(id),
        _ => None,
    }
}

/// Creates a work order: validates, checks references, takes the next
/// number, records history and an event. The one path for every work order.
/// Requesters may describe the work, not prioritize or assign it.
pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewWorkOrder) -> Result<WorkOrder> {
    if requester_scope(tenant).is_some() && (new.priority.is_some() || new.assigned_to.is_some()) {
        return Err(ModelError::Forbidden(
            "requesters cannot set priority or assignee; a manager does".into(),
        ));
    }
    insert(tx, tenant, new, None, tenant.actor.user_id()).await
}

/// Creates the work order an approved request asks for, crediting the
/// person who requested it.
pub async fn create_for_request(
    tx: &mut Tx,
    tenant: &Tenant,
    new: NewWorkOrder,
    requested_by: Option<Uuid>,
) -> Result<WorkOrder> {
    insert(tx, tenant, new, None, requested_by).await
}

async fn insert(
    tx: &mut Tx,
    tenant: &Tenant,
    new: NewWorkOrder,
    auto: Option<AutoFields>,
    requested_by: Option<Uuid>,
) -> Result<WorkOrder> {
    new.validate()?;
    check_references(tx, new.equipment_id, new.sensor_id, new.assigned_to).await?;
    let number = next_number(tx, tenant, "work_order").await?;
    let source = if auto.is_some() {
        Source::Auto
    } else {
        Source::Manual
    };
    let row = sqlx::query_as::<_, Row>(&format!(
        "INSERT INTO work_orders (id, organization_id, number, title, description, kind, priority, source,
                                  equipment_id, sensor_id, dedup_key, anomaly_id, last_occurrence_at,
                                  requested_by, assigned_to, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $12 IS NULL THEN NULL ELSE now() END,
                 $13, $14, $15)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(number)
    .bind(new.title.trim())
    .bind(&new.description)
    .bind(new.kind.unwrap_or(Kind::Corrective).as_str())
    .bind(new.priority.unwrap_or(Priority::Medium).as_str())
    .bind(source.as_str())
    .bind(new.equipment_id)
    .bind(new.sensor_id)
    .bind(auto.as_ref().map(|a| a.dedup_key.as_str()))
    .bind(auto.as_ref().map(|a| a.anomaly_id))
    .bind(requested_by)
    .bind(new.assigned_to)
    .bind(new.due_at)
    .fetch_one(&mut **tx)
    .await?;
    let wo: WorkOrder = row.try_into()?;
    record_status(tx, tenant, wo.id, None, Status::Open, "").await?;
    events::emit(tx, tenant, "work_order.created", Some(wo.id), &wo).await?;
    Ok(wo)
}

/// Checks that the equipment, sensor and assignee a work order (or a
/// schedule that generates work orders) names exist in this organization.
pub(crate) async fn check_references(
    tx: &mut Tx,
    equipment_id: Option<Uuid>,
    sensor_id: Option<Uuid>,
    assigned_to: Option<Uuid>,
) -> Result<()> {
    if let Some(eq) = equipment_id {
        equipment::get(tx, eq)
            .await
            .referenced("equipment_id", "no such equipment")?;
    }
    if let Some(s) = sensor_id {
        crate::devices::get_sensor(tx, s)
            .await
            .referenced("sensor_id", "no such sensor")?;
    }
    if let Some(u) = assigned_to {
        crate::users::get(tx, u)
            .await
            .referenced("assigned_to", "no such user")?;
    }
    Ok(())
}

/// Takes the organization's next number of a series. The counter row stays
/// locked until the transaction ends, so numbers are consecutive and unique.
async fn next_number(tx: &mut Tx, tenant: &Tenant, series: &str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "INSERT INTO org_counters (organization_id, name, value) VALUES ($1, $2, 1)
         ON CONFLICT (organization_id, name) DO UPDATE SET value = org_counters.value + 1
         RETURNING value",
    )
    .bind(tenant.org_id)
    .bind(series)
    .fetch_one(&mut **tx)
    .await?)
}

async fn record_status(
    tx: &mut Tx,
    tenant: &Tenant,
    id: Uuid,
    from: Option<Status>,
    to: Status,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO work_order_status_history (organization_id, work_order_id, from_status, to_status, changed_by, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.org_id)
    .bind(id)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(tenant.actor.user_id())
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An anomaly asking for a work order.
#[derive(Debug, Clone)]
pub struct AutoRaise {
    pub anomaly_id: Uuid,
    pub equipment_id: Uuid,
    pub sensor_id: Uuid,
    /// What makes two anomalies "the same problem" on this equipment.
    pub dedup_key: String,
    pub title: String,
    pub description: String,
    pub kind: Kind,
    pub priority: Priority,
}

/// What [`raise_auto`] did.
#[derive(Debug, Clone)]
pub struct Raised {
    pub work_order: WorkOrder,
    /// False when the anomaly was added to an open work order.
    pub created: bool,
}

/// Raises an auto work order for an anomaly, or adds the anomaly to the open
/// one for the same equipment and dedup key (at most one is ever open).
pub async fn raise_auto(tx: &mut Tx, tenant: &Tenant, raise: AutoRaise) -> Result<Raised> {
    // Serialize raises for the same key, so two workers cannot both create.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "{}:{}:{}",
            tenant.org_id, raise.equipment_id, raise.dedup_key
        ))
        .execute(&mut **tx)
        .await?;
    let open = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders
         SET occurrence_count = occurrence_count + 1, last_occurrence_at = now(), updated_at = now()
         WHERE source = 'auto' AND equipment_id = $1 AND dedup_key = $2
           AND status IN ('open', 'in_progress', 'on_hold')
         RETURNING {COLUMNS}"
    ))
    .bind(raise.equipment_id)
    .bind(&raise.dedup_key)
    .fetch_optional(&mut **tx)
    .await?;
    let (work_order, created) = match open {
        Some(row) => {
            let wo: WorkOrder = row.try_into()?;
            events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
            (wo, false)
        }
        None => {
            let new = NewWorkOrder {
                title: raise.title,
                description: raise.description,
                kind: Some(raise.kind),
                priority: Some(raise.priority),
                equipment_id: Some(raise.equipment_id),
                sensor_id: Some(raise.sensor_id),
                assigned_to: None,
                due_at: None,
            };
            let auto = AutoFields {
                dedup_key: raise.dedup_key,
                anomaly_id: raise.anomaly_id,
            };
            (insert(tx, tenant, new, Some(auto), None).await?, true)
        }
    };
    anomalies::link_work_order(tx, raise.anomaly_id, work_order.id).await?;
    Ok(Raised { work_order, created })
}

/// Moves a work order to another status, if the status machine allows it.
pub async fn transition(tx: &mut Tx, tenant: &Tenant, id: Uuid, to: Status, note: &str) -> Result<WorkOrder> {
    let current = sqlx::query_scalar::<_, String>("SELECT status FROM work_orders WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("work order"))?;
    let from: Status = current.parse()?;
    if !from.can_become(to) {
        return Err(ModelError::InvalidTransition {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let row = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders SET status = $2, updated_at = now(),
                completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(to.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let wo: WorkOrder = row.try_into()?;
    record_status(tx, tenant, id, Some(from), to, note).await?;
    events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
    Ok(wo)
}

/// One work order, if `tenant` may see it (see [`requester_scope`]).
pub async fn get_visible(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<WorkOrder> {
    let wo = get(tx, id).await?;
    match requester_scope(tenant) {
        Some(user) if wo.requested_by != Some(user) => Err(ModelError::NotFound("work order")),
        _ => Ok(wo),
    }
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<WorkOrder> {
    sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM work_orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("work order"))?
        .try_into()
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkOrderFilter {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub kind: Option<Kind>,
    pub source: Option<Source>,
    pub equipment_id: Option<Uuid>,
    pub assigned_to: Option<Uuid>,
    /// Full-text search over title and description.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// Work orders `tenant` may see, newest first, filtered and paginated by cursor.
pub async fn list(tx: &mut Tx, tenant: &Tenant, filter: &WorkOrderFilter) -> Result<Page<WorkOrder>> {
    let limit = page::limit(filter.limit)?;
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM work_orders
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::text IS NULL OR priority = $2)
           AND ($3::text IS NULL OR kind = $3)
           AND ($4::text IS NULL OR source = $4)
           AND ($5::uuid IS NULL OR equipment_id = $5)
           AND ($6::uuid IS NULL OR assigned_to = $6)
           AND ($7::text IS NULL OR search @@ websearch_to_tsquery('simple', $7) OR code = upper($7))
           AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9))
           AND ($11::uuid IS NULL OR requested_by = $11)
         ORDER BY created_at DESC, id DESC LIMIT $10"
    ))
    .bind(filter.status.map(Status::as_str))
    .bind(filter.priority.map(Priority::as_str))
    .bind(filter.kind.map(Kind::as_str))
    .bind(filter.source.map(Source::as_str))
    .bind(filter.equipment_id)
    .bind(filter.assigned_to)
    .bind(q)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .bind(requester_scope(tenant))
    .fetch_all(&mut **tx)
    .await?;
    let items = rows
        .into_iter()
        .map(WorkOrder::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page::paginate(items, limit, |w| Cursor {
        at: w.created_at,
        id: w.id,
    }))
}

/// Maps a severity to a priority, raised one step for high/critical equipment.
pub fn priority_for(severity: &str, criticality: &str) -> Priority {
    let base = match severity {
        "low" => 0,
        "medium" => 1,
        "high" => 2,
        _ => 3,
    };
    let bump = usize::from(equipment::criticality_rank(criticality) >= 3);
    let all = Priority::ALL;
    all[(base + bump).min(all.len() - 1)]
}

/// Escalates the organization's overdue work: an open work order past its
/// due date gets its priority raised one step (up to critical) and a
/// `work_order.escalated` event, again every `every` while it stays overdue.
/// Claimed with SKIP LOCKED, so several workers may run it.
pub async fn escalate_overdue(
    db: &crate::Db,
    org: Uuid,
    now: DateTime<Utc>,
    every: chrono::Duration,
) -> Result<Vec<WorkOrder>> {
    let tenant = Tenant::system(org, "scheduler");
    let mut tx = db.tenant_for(&tenant).await?;
    let rows = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders SET escalated_at = $1, updated_at = now(),
                priority = CASE priority WHEN 'low' THEN 'medium' WHEN 'medium' THEN 'high' ELSE 'critical' END
         WHERE id IN (SELECT id FROM work_orders
                      WHERE status IN ('open', 'in_progress', 'on_hold') AND due_at < $1
                        AND coalesce(escalated_at, due_at) <= $1 - $2::interval
                      FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(format!("{} seconds", every.num_seconds().max(1)))
    .fetch_all(&mut *tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let wo: WorkOrder = r.try_into()?;
        events::emit(&mut tx, &tenant, "work_order.escalated", Some(wo.id), &wo).await?;
        out.push(wo);
    }
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every (from, to) pair against the documented table.
    #[test]
    fn status_machine_table() {
        use Status::*;
        let allowed = [
            (Open, InProgress),
            (InProgress, OnHold),
            (OnHold, InProgress),
            (InProgress, Completed),
            (OnHold, Completed),
            (Completed, Verified),
            (Open, Cancelled),
            (InProgress, Cancelled),
            (OnHold, Cancelled),
        ];
        for &from in Status::ALL {
            for &to in Status::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_states_go_nowhere_but_verify() {
        for &to in Status::ALL {
            assert!(!Status::Cancelled.can_become(to));
            assert!(!Status::Verified.can_become(to));
        }
    }

    #[test]
    fn parse_and_display_roundtrip() {
        for &s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().ok(), Some(s));
        }
        let err = "done".parse::<Status>().err().map(|e| format!("{e:?}"));
        assert!(err.is_some_and(|e| e.contains("open, in_progress")));
    }

    #[test]
    fn priority_mapping() {
        assert_eq!(priority_for("low", "low"), Priority::Low);
        assert_eq!(priority_for("high", "medium"), Priority::High);
        assert_eq!(priority_for("high", "critical"), Priority::Critical);
        assert_eq!(priority_for("critical", "critical"), Priority::Critical);
    }

    proptest! {
        /// Any walk through the machine only ever visits allowed edges, and
        /// the terminal states absorb.
        #[test]
        fn random_walks_stay_legal(steps in proptest::collection::vec(0usize..6, 0..40)) {
            let mut s = Status::Open;
            for i in steps {
                let to = Status::ALL[i];
                if s.can_become(to) {
                    prop_assert!(s.is_active() || s == Status::Completed);
                    s = to;
                }
            }
        }
    }
}
