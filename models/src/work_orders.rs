//! Work orders: the status machine, numbering, and the one creation path
//! shared by people (API) and analytics (auto work orders); assignees,
//! failure codes, edits, and the rule of what a work order needs before it
//! may be completed ([`completion_requirements`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Role;
use crate::auto_policy;
pub use crate::auto_policy::{AutoPolicy, SuppressReason};
use crate::checklists::{self, ChecklistItem, ChecklistTemplateItem};
use crate::db::{Actor, Tenant, Tx};
use crate::downtime::{self, Downtime};
use crate::error::{FieldError, ModelError, Referenced, Result};
use crate::failure_codes::{self, CodeKind};
use crate::page::{self, Cursor, Page};
use crate::{anomalies, equipment, events};

/// Most people one work order may be assigned to.
pub const MAX_ASSIGNEES: usize = 20;

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

string_enum!(
    /// What completing an auto work order found: the anomaly was real
    /// (`true_alarm`) or not (`false_alarm`, which widens the detector's
    /// thresholds on that sensor).
    Verdict {
        TrueAlarm => "true_alarm",
        FalseAlarm => "false_alarm",
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
#[serde(rename_all = "camelCase")]
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
    /// The lead assignee: the first of `assignees` (absent when nobody is
    /// assigned). Kept for clients that know one assignee only.
    pub assigned_to: Option<Uuid>,
    /// Everyone assigned, the lead first, then in the order they were assigned.
    pub assignees: Vec<Uuid>,
    /// Failure codes from the organization's catalog (`/failure-codes`):
    /// what was wrong, why, and what was done.
    pub problem_code: Option<String>,
    pub cause_code: Option<String>,
    pub remedy_code: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Auto work orders: the failure mode (`family:detail`, e.g.
    /// `process:temp-high`); with the equipment, the key of "the same problem".
    pub failure_mode: Option<String>,
    /// Auto work orders: what analytics saw when it raised it (similar past
    /// anomalies, a readings window, scores …); absent for manual work.
    pub evidence: Option<serde_json::Value>,
    /// Auto work orders: true_alarm | false_alarm, required to complete one.
    pub verdict: Option<Verdict>,
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
    assignees: Vec<Uuid>,
    problem_code: Option<String>,
    cause_code: Option<String>,
    remedy_code: Option<String>,
    due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    failure_mode: Option<String>,
    evidence: Option<serde_json::Value>,
    verdict: Option<String>,
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
            assignees: r.assignees,
            problem_code: r.problem_code,
            cause_code: r.cause_code,
            remedy_code: r.remedy_code,
            due_at: r.due_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
            failure_mode: r.failure_mode,
            evidence: r.evidence,
            verdict: r.verdict.as_deref().map(str::parse).transpose()?,
        })
    }
}

/// A work order's columns, with its assignees (lead first) and failure
/// codes looked up; also usable in `RETURNING` (the subqueries name the
/// table, not an alias).
const COLUMNS: &str = "id, code, number, title, description, kind, status, priority, source, equipment_id, \
     sensor_id, anomaly_id, occurrence_count, last_occurrence_at, requested_by, assigned_to, \
     ARRAY(SELECT a.user_id FROM work_order_assignees a WHERE a.work_order_id = work_orders.id \
           ORDER BY a.user_id IS DISTINCT FROM work_orders.assigned_to, a.assigned_at, a.id) AS assignees, \
     (SELECT f.code FROM failure_codes f WHERE f.id = work_orders.problem_code_id) AS problem_code, \
     (SELECT f.code FROM failure_codes f WHERE f.id = work_orders.cause_code_id) AS cause_code, \
     (SELECT f.code FROM failure_codes f WHERE f.id = work_orders.remedy_code_id) AS remedy_code, \
     due_at, created_at, updated_at, completed_at, failure_mode, evidence, verdict";

/// A work order to create: its core fields. Services (analytics, the PM
/// scheduler, request approval) fill it directly; the API takes
/// [`CreateWorkOrder`], which adds assignees, a checklist and failure codes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
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
    /// The lead assignee (an active user of the organization).
    pub assigned_to: Option<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
}

impl NewWorkOrder {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_title(&self.title, errors);
        check_description(&self.description, errors);
    }
}

fn check_title(title: &str, errors: &mut Vec<FieldError>) {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        errors.push(FieldError::new("title", "must be 1-200 characters"));
    }
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) {
    if description.len() > 20_000 {
        errors.push(FieldError::new("description", "must be at most 20000 bytes"));
    }
}

/// What a new work order carries beyond its core fields.
#[derive(Debug, Clone, Default)]
pub struct WorkOrderDetails {
    /// Further assignees (after the lead, `assigned_to`).
    pub assignees: Vec<Uuid>,
    pub checklist: Vec<ChecklistTemplateItem>,
    pub problem_code: Option<String>,
    pub cause_code: Option<String>,
    pub remedy_code: Option<String>,
}

/// A work order to create through the API (field names as in [`WorkOrder`]).
///
/// The fields of [`NewWorkOrder`] and [`WorkOrderDetails`] spelled out
/// rather than `#[serde(flatten)]`ed: flattening loses the field name of a
/// type error (a bad `priority` would be reported against the whole body).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkOrder {
    /// 1-200 characters.
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Default corrective.
    pub kind: Option<Kind>,
    /// Default medium. Requesters may not set it.
    pub priority: Option<Priority>,
    pub equipment_id: Option<Uuid>,
    pub sensor_id: Option<Uuid>,
    /// The lead assignee (needs `work_orders:assign`; an active user).
    pub assigned_to: Option<Uuid>,
    /// Everyone to assign (needs `work_orders:assign`; active users); the
    /// first is the lead unless `assignedTo` names one.
    #[serde(default)]
    pub assignees: Vec<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
    /// Checklist items, in order (at most 100).
    #[serde(default)]
    pub checklist: Vec<ChecklistTemplateItem>,
    /// An active problem code of the catalog (e.g. `VIB`).
    pub problem_code: Option<String>,
    /// An active cause code of the catalog (e.g. `WEA`).
    pub cause_code: Option<String>,
    /// An active remedy code of the catalog (e.g. `REP`).
    pub remedy_code: Option<String>,
}

impl CreateWorkOrder {
    /// True when the body assigns someone (which needs `work_orders:assign`).
    pub fn assigns(&self) -> bool {
        self.assigned_to.is_some() || !self.assignees.is_empty()
    }

    pub fn into_parts(self) -> (NewWorkOrder, WorkOrderDetails) {
        (
            NewWorkOrder {
                title: self.title,
                description: self.description,
                kind: self.kind,
                priority: self.priority,
                equipment_id: self.equipment_id,
                sensor_id: self.sensor_id,
                assigned_to: self.assigned_to,
                due_at: self.due_at,
            },
            WorkOrderDetails {
                assignees: self.assignees,
                checklist: self.checklist,
                problem_code: self.problem_code,
                cause_code: self.cause_code,
                remedy_code: self.remedy_code,
            },
        )
    }
}

/// The auto-work-order fields analytics supplies.
#[derive(Debug, Clone)]
struct AutoFields {
    failure_mode: String,
    anomaly_id: Uuid,
    evidence: serde_json::Value,
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
    create_detailed(tx, tenant, new, WorkOrderDetails::default()).await
}

/// [`create`] with assignees, a checklist and failure codes.
pub async fn create_detailed(
    tx: &mut Tx,
    tenant: &Tenant,
    new: NewWorkOrder,
    details: WorkOrderDetails,
) -> Result<WorkOrder> {
    if requester_scope(tenant).is_some()
        && (new.priority.is_some() || new.assigned_to.is_some() || !details.assignees.is_empty())
    {
        return Err(ModelError::Forbidden(
            "requesters cannot set priority or assignee; a manager does".into(),
        ));
    }
    insert(tx, tenant, new, details, None, tenant.actor.user_id()).await
}

/// Creates the work order an approved request asks for, crediting the
/// person who requested it.
pub async fn create_for_request(
    tx: &mut Tx,
    tenant: &Tenant,
    new: NewWorkOrder,
    requested_by: Option<Uuid>,
) -> Result<WorkOrder> {
    insert(tx, tenant, new, WorkOrderDetails::default(), None, requested_by).await
}

/// Creates a work order a schedule generates, with the schedule's checklist.
/// A scheduled assignee who has since been deactivated is left out (the
/// work order is generated unassigned) rather than failing the job.
pub async fn create_scheduled(
    tx: &mut Tx,
    tenant: &Tenant,
    mut new: NewWorkOrder,
    checklist: Vec<ChecklistTemplateItem>,
) -> Result<WorkOrder> {
    if let Some(user) = new.assigned_to {
        let active = crate::users::get(tx, user).await.map(|u| u.active);
        match active {
            Ok(true) => {}
            Ok(false) | Err(ModelError::NotFound(_)) => {
                tracing::warn!(%user, title = %new.title, "scheduled assignee is not active; generated unassigned");
                new.assigned_to = None;
            }
            Err(e) => return Err(e),
        }
    }
    let details = WorkOrderDetails {
        checklist,
        ..WorkOrderDetails::default()
    };
    insert(tx, tenant, new, details, None, None).await
}

async fn insert(
    tx: &mut Tx,
    tenant: &Tenant,
    new: NewWorkOrder,
    details: WorkOrderDetails,
    auto: Option<AutoFields>,
    requested_by: Option<Uuid>,
) -> Result<WorkOrder> {
    let mut errors = Vec::new();
    new.validate(&mut errors);
    errors.extend(checklists::validate_template(&details.checklist, "checklist"));
    if details.assignees.len() > MAX_ASSIGNEES {
        errors.push(FieldError::new(
            "assignees",
            format!("at most {MAX_ASSIGNEES} people"),
        ));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    check_references(tx, new.equipment_id, new.sensor_id, None).await?;
    // The lead first, then the others, each once.
    let mut assignees: Vec<(String, Uuid)> = Vec::new();
    if let Some(lead) = new.assigned_to {
        assignees.push(("assignedTo".into(), lead));
    }
    for (i, u) in details.assignees.iter().enumerate() {
        if !assignees.iter().any(|(_, a)| a == u) {
            assignees.push((format!("assignees[{i}]"), *u));
        }
    }
    check_assignable(tx, &assignees).await?;
    let codes = resolve_codes(
        tx,
        [
            details.problem_code.as_deref().map(Some),
            details.cause_code.as_deref().map(Some),
            details.remedy_code.as_deref().map(Some),
        ],
    )
    .await?;
    let number = next_number(tx, tenant, "work_order").await?;
    let source = if auto.is_some() {
        Source::Auto
    } else {
        Source::Manual
    };
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO work_orders (id, organization_id, number, title, description, kind, priority, source,
                                  equipment_id, sensor_id, failure_mode, anomaly_id, last_occurrence_at,
                                  requested_by, assigned_to, due_at, problem_code_id, cause_code_id, remedy_code_id,
                                  evidence)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $12 IS NULL THEN NULL ELSE now() END,
                 $13, $14, $15, $16, $17, $18, $19)
         RETURNING id",
    )
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
    .bind(auto.as_ref().map(|a| a.failure_mode.as_str()))
    .bind(auto.as_ref().map(|a| a.anomaly_id))
    .bind(requested_by)
    .bind(assignees.first().map(|(_, u)| *u))
    .bind(new.due_at)
    .bind(codes[0].flatten())
    .bind(codes[1].flatten())
    .bind(codes[2].flatten())
    .bind(auto.as_ref().map(|a| &a.evidence))
    .fetch_one(&mut **tx)
    .await?;
    let users: Vec<Uuid> = assignees.iter().map(|(_, u)| *u).collect();
    add_assignees(tx, tenant, id, &users).await?;
    checklists::insert_template(tx, tenant, id, &details.checklist).await?;
    let wo = get(tx, id).await?;
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
            .referenced("equipmentId", "no such equipment")?;
    }
    if let Some(s) = sensor_id {
        crate::devices::get_sensor(tx, s)
            .await
            .referenced("sensorId", "no such sensor")?;
    }
    if let Some(u) = assigned_to {
        crate::users::get(tx, u)
            .await
            .referenced("assignedTo", "no such user")?;
    }
    Ok(())
}

/// Checks that every (field, user) may be assigned work: an active user of
/// this organization. Reports every offending field at once.
async fn check_assignable(tx: &mut Tx, users: &[(String, Uuid)]) -> Result<()> {
    let mut errors = Vec::new();
    for (field, id) in users {
        match crate::users::get(tx, *id).await.referenced(field, "no such user") {
            Ok(u) if u.active => {}
            Ok(_) => errors.push(FieldError::new(
                field.clone(),
                "the user is not active (deactivated, or has not accepted the invitation)",
            )),
            Err(ModelError::Validation(mut e)) => errors.append(&mut e),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Validation(errors))
    }
}

/// Adds assignee rows (already checked) for a work order, keeping existing ones.
async fn add_assignees(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, users: &[Uuid]) -> Result<()> {
    for user in users {
        sqlx::query(
            "INSERT INTO work_order_assignees (id, organization_id, work_order_id, user_id, assigned_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT ON CONSTRAINT work_order_assignees_key DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.org_id)
        .bind(work_order_id)
        .bind(user)
        .bind(tenant.actor.user_id())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Resolves (problem, cause, remedy) codes as given: `None` leaves a code
/// alone, `Some(None)` clears it, `Some(Some(code))` must name an active
/// code of that kind. Returns the ids in the same shape.
async fn resolve_codes(tx: &mut Tx, given: [Option<Option<&str>>; 3]) -> Result<[Option<Option<Uuid>>; 3]> {
    const KINDS: [(CodeKind, &str); 3] = [
        (CodeKind::Problem, "problemCode"),
        (CodeKind::Cause, "causeCode"),
        (CodeKind::Remedy, "remedyCode"),
    ];
    let mut out = [None, None, None];
    let mut errors = Vec::new();
    for (i, ((kind, field), code)) in KINDS.into_iter().zip(given).enumerate() {
        out[i] = match code {
            None => None,
            Some(None) => Some(None),
            Some(Some(code)) => match failure_codes::resolve(tx, kind, field, code).await {
                Ok(id) => Some(Some(id)),
                Err(ModelError::Validation(mut e)) => {
                    errors.append(&mut e);
                    None
                }
                Err(e) => return Err(e),
            },
        };
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ModelError::Validation(errors))
    }
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

/// One step of a work order's status history.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusStep {
    /// Absent for the step that created the work order.
    pub from_status: Option<String>,
    pub to_status: String,
    /// Who made the change (absent: analytics or another service).
    pub changed_by: Option<Uuid>,
    /// Their name, when they are a user of the organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by_name: Option<String>,
    /// Why, as given with the change.
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// A work order's status steps, oldest first, if `tenant` may see the work
/// order (see [`get_visible`]; otherwise not found).
pub async fn status_history(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<Vec<StatusStep>> {
    get_visible(tx, tenant, id).await?;
    Ok(sqlx::query_as::<_, StatusStep>(
        "SELECT h.from_status, h.to_status, h.changed_by, u.name AS changed_by_name, h.note,
                h.changed_at AS created_at
         FROM work_order_status_history h
         LEFT JOIN users u ON u.id = h.changed_by
         WHERE h.work_order_id = $1
         ORDER BY h.changed_at, h.id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?)
}

/// An anomaly asking for a work order.
#[derive(Debug, Clone)]
pub struct AutoRaise {
    pub anomaly_id: Uuid,
    pub equipment_id: Uuid,
    pub sensor_id: Uuid,
    /// What went wrong, `family:detail` (`process:temp-high`,
    /// `sensor_health:stuck:<sensor>` …): with the equipment, the key of
    /// "the same problem" (at most one open auto work order per key). See
    /// [`auto_policy`] for the families.
    pub failure_mode: String,
    /// The anomaly's severity: low | medium | high | critical. With the
    /// equipment's criticality it gives the priority ([`priority_for`]).
    pub severity: String,
    /// What analytics saw (similar anomalies, a readings window, scores …),
    /// stored on a created work order as `evidence`.
    pub evidence: serde_json::Value,
    pub title: String,
    pub description: String,
    pub kind: Kind,
}

/// What [`raise_auto`] did with an anomaly.
#[derive(Debug, Clone)]
pub enum Raised {
    /// A new auto work order, linked to the anomaly.
    Created(WorkOrder),
    /// The anomaly was added to the key's open work order (one more occurrence).
    Added(WorkOrder),
    /// No work order of its own; the anomaly records why
    /// (`suppressed_reason`). For a parent alarm it was recorded on the
    /// ancestor's work order as an occurrence.
    Suppressed { reason: SuppressReason },
}

impl Raised {
    /// The work order the anomaly raised or joined (not for suppressions).
    pub fn work_order(&self) -> Option<&WorkOrder> {
        match self {
            Raised::Created(wo) | Raised::Added(wo) => Some(wo),
            Raised::Suppressed { .. } => None,
        }
    }

    pub fn is_created(&self) -> bool {
        matches!(self, Raised::Created(_))
    }
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

impl AutoRaise {
    fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let fm = self.failure_mode.trim();
        if fm.is_empty()
            || auto_policy::family(fm).is_empty()
            || fm.chars().count() > auto_policy::MAX_FAILURE_MODE_CHARS
        {
            errors.push(FieldError::new(
                "failureMode",
                format!(
                    "must be 1-{} characters, `family:detail` with a non-empty family",
                    auto_policy::MAX_FAILURE_MODE_CHARS
                ),
            ));
        }
        if !SEVERITIES.contains(&self.severity.as_str()) {
            errors.push(FieldError::new(
                "severity",
                format!("'{}' is not one of {}", self.severity, SEVERITIES.join(", ")),
            ));
        }
        check_title(&self.title, &mut errors);
        check_description(&self.description, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Validation(errors))
        }
    }
}

/// Raises an auto work order for an anomaly — or adds the anomaly to the
/// open one of its key (equipment, failure mode), or suppresses it — as the
/// policy in [`auto_policy`] says (its module docs give the decision
/// order). The priority is computed here, from the severity and the
/// equipment's criticality. Whatever the outcome, the anomaly records its
/// failure mode, and the work order it was linked to or why it was suppressed.
pub async fn raise_auto(
    tx: &mut Tx,
    tenant: &Tenant,
    raise: AutoRaise,
    policy: &AutoPolicy,
) -> Result<Raised> {
    raise.validate()?;
    let failure_mode = raise.failure_mode.trim().to_string();
    let family = auto_policy::family(&failure_mode).to_string();
    let equipment = equipment::get(tx, raise.equipment_id)
        .await
        .referenced("equipmentId", "no such equipment")?;
    let anomaly = anomalies::get(tx, raise.anomaly_id)
        .await
        .referenced("anomalyId", "no such anomaly")?;
    // Serialize raises for the same key, so two workers cannot both create.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "{}:{}:{}",
            tenant.org_id, raise.equipment_id, failure_mode
        ))
        .execute(&mut **tx)
        .await?;

    // 1. The key's open work order.
    let open = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders
         SET occurrence_count = occurrence_count + 1, last_occurrence_at = now(), updated_at = now()
         WHERE source = 'auto' AND equipment_id = $1 AND failure_mode = $2
           AND status IN ('open', 'in_progress', 'on_hold')
         RETURNING {COLUMNS}"
    ))
    .bind(raise.equipment_id)
    .bind(&failure_mode)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = open {
        let wo: WorkOrder = row.try_into()?;
        anomalies::record_raise(tx, anomaly.id, &failure_mode, Some(wo.id), None).await?;
        events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
        return Ok(Raised::Added(wo));
    }

    // 2. An ancestor's open alarm of the same family (the nearest one).
    if auto_policy::silenced_by_parent(&family) {
        let parent = sqlx::query_as::<_, Row>(&format!(
            "WITH RECURSIVE up (id, depth) AS (
                 SELECT e.parent_id, 1 FROM equipment e WHERE e.id = $1 AND e.parent_id IS NOT NULL
                 UNION ALL
                 SELECT e.parent_id, up.depth + 1 FROM equipment e JOIN up ON e.id = up.id
                 WHERE e.parent_id IS NOT NULL AND up.depth < 64
             ), target AS (
                 SELECT w.id FROM work_orders w JOIN up ON w.equipment_id = up.id
                 WHERE w.source = 'auto' AND w.status IN ('open', 'in_progress', 'on_hold')
                   AND split_part(w.failure_mode, ':', 1) = $2
                 ORDER BY up.depth, w.created_at, w.id LIMIT 1
             )
             UPDATE work_orders
             SET occurrence_count = occurrence_count + 1, last_occurrence_at = now(), updated_at = now()
             WHERE id = (SELECT id FROM target) AND status IN ('open', 'in_progress', 'on_hold')
             RETURNING {COLUMNS}"
        ))
        .bind(raise.equipment_id)
        .bind(&family)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = parent {
            let wo: WorkOrder = row.try_into()?;
            let reason = SuppressReason::ParentAlarm { work_order_id: wo.id };
            anomalies::record_raise(tx, anomaly.id, &failure_mode, Some(wo.id), Some(&reason)).await?;
            events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
            return Ok(Raised::Suppressed { reason });
        }
    }

    // 3. Cooldown after the key's last closed work order.
    if let Some(until) =
        auto_policy::cooldown_until(tx, raise.equipment_id, &failure_mode, policy.cooldown).await?
    {
        let reason = SuppressReason::Cooldown { until };
        anomalies::record_raise(tx, anomaly.id, &failure_mode, None, Some(&reason)).await?;
        return Ok(Raised::Suppressed { reason });
    }

    // 4. Flapping.
    let before = auto_policy::flap_count(
        tx,
        anomaly.id,
        raise.equipment_id,
        &failure_mode,
        anomaly.started_at,
        policy.flap_window,
    )
    .await?;
    if before + 1 > i64::from(policy.flap_limit) {
        let reason = SuppressReason::Flapping;
        anomalies::record_raise(tx, anomaly.id, &failure_mode, None, Some(&reason)).await?;
        return Ok(Raised::Suppressed { reason });
    }

    // 5. A new work order.
    let new = NewWorkOrder {
        title: raise.title,
        description: raise.description,
        kind: Some(raise.kind),
        priority: Some(priority_for(&raise.severity, &equipment.criticality)),
        equipment_id: Some(raise.equipment_id),
        sensor_id: Some(raise.sensor_id),
        assigned_to: None,
        due_at: None,
    };
    let auto = AutoFields {
        failure_mode: failure_mode.clone(),
        anomaly_id: anomaly.id,
        evidence: raise.evidence,
    };
    let wo = insert(tx, tenant, new, WorkOrderDetails::default(), Some(auto), None).await?;
    anomalies::record_raise(tx, anomaly.id, &failure_mode, Some(wo.id), None).await?;
    Ok(Raised::Created(wo))
}

/// Moves a work order to another status, if the status machine allows it,
/// with the default [`AutoPolicy`] and no verdict; see [`transition_with`].
pub async fn transition(tx: &mut Tx, tenant: &Tenant, id: Uuid, to: Status, note: &str) -> Result<WorkOrder> {
    transition_with(tx, tenant, id, to, note, None, &AutoPolicy::default()).await
}

/// Moves a work order to another status, if the status machine allows it.
/// Completing also needs what [`completion_requirements`] lists; a refused
/// completion is a validation error naming the missing fields, and
/// nothing changes.
///
/// Auto work orders close the loop:
/// - `verdict` (only with `completed`, only for auto work orders; it may
///   also be set earlier with [`update`]) is required to complete one. On
///   completion the verdict is copied to its anomalies, counted in the
///   detector tuning ([`crate::tuning`]), and a true alarm of the process or
///   multivariate family asks for a baseline refit.
/// - One completed as a true alarm may be verified only once
///   `policy.verify_quiet` has passed since completion (409 before;
///   [`verify_quiet_auto`] verifies it when the signal stayed normal).
pub async fn transition_with(
    tx: &mut Tx,
    tenant: &Tenant,
    id: Uuid,
    to: Status,
    note: &str,
    verdict: Option<Verdict>,
    policy: &AutoPolicy,
) -> Result<WorkOrder> {
    change_status(tx, tenant, id, to, note, verdict, Some(policy.verify_quiet)).await
}

/// [`transition_with`]; `quiet` None skips the quiet-period check (the
/// caller has checked the signal itself).
async fn change_status(
    tx: &mut Tx,
    tenant: &Tenant,
    id: Uuid,
    to: Status,
    note: &str,
    verdict: Option<Verdict>,
    quiet: Option<chrono::Duration>,
) -> Result<WorkOrder> {
    let mut current = lock(tx, id).await?;
    let from = current.status;
    if !from.can_become(to) {
        return Err(ModelError::InvalidTransition {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    if let Some(v) = verdict {
        if current.source != Source::Auto {
            return Err(ModelError::invalid(
                "verdict",
                "only auto work orders take a verdict",
            ));
        }
        if to != Status::Completed {
            return Err(ModelError::invalid(
                "verdict",
                "is given when completing (status completed), or earlier with PATCH",
            ));
        }
        current.verdict = Some(v);
    }
    if to == Status::Completed {
        let checklist = checklists::items(tx, id).await?;
        let downtime = downtime::entries(tx, id).await?;
        let missing = completion_requirements(&current, &checklist, &downtime);
        if !missing.is_empty() {
            return Err(ModelError::Validation(missing));
        }
    }
    if let (Status::Verified, Source::Auto, Some(Verdict::TrueAlarm), Some(quiet), Some(completed)) =
        (to, current.source, current.verdict, quiet, current.completed_at)
    {
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&mut **tx).await?;
        let until = completed + quiet;
        if now < until {
            return Err(ModelError::Conflict(format!(
                "{} was completed as a true alarm; it may be verified once its signal has stayed normal \
                 for {} after completion (not before {}) — analytics verifies it then",
                current.code,
                auto_policy::humanize(quiet),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
    }
    let row = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders SET status = $2, updated_at = now(),
                completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END,
                verdict = coalesce($3, verdict)
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(to.as_str())
    .bind(verdict.map(Verdict::as_str))
    .fetch_one(&mut **tx)
    .await?;
    let wo: WorkOrder = row.try_into()?;
    record_status(tx, tenant, id, Some(from), to, note).await?;
    if to == Status::Completed && wo.source == Source::Auto {
        if let Some(v) = wo.verdict {
            close_loop(tx, tenant, &wo, v).await?;
        }
    }
    events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
    Ok(wo)
}

/// What a verdict on a completed auto work order feeds back: the anomalies'
/// verdict, the detector tuning, and (a repair of the process or
/// multivariate family) a baseline refit request.
async fn close_loop(tx: &mut Tx, tenant: &Tenant, wo: &WorkOrder, verdict: Verdict) -> Result<()> {
    anomalies::record_verdict(tx, wo.id, verdict.as_str()).await?;
    crate::tuning::record_verdict(tx, tenant, wo.id, verdict == Verdict::FalseAlarm).await?;
    let family = auto_policy::family(wo.failure_mode.as_deref().unwrap_or_default());
    if let (Verdict::TrueAlarm, Some(equipment_id)) = (verdict, wo.equipment_id) {
        if auto_policy::refits_after_repair(family) {
            let sensor = if family == auto_policy::MULTIVARIATE {
                None
            } else {
                wo.sensor_id
            };
            let reason = format!(
                "{} completed as a true alarm ({}): the asset was repaired",
                wo.code,
                wo.failure_mode.as_deref().unwrap_or_default()
            );
            crate::tuning::request_refit(tx, tenant, equipment_id, sensor, Some(wo.id), &reason).await?;
        }
    }
    Ok(())
}

/// The signal of an auto work order's key since its completion.
#[derive(FromRow)]
struct KeySignal {
    /// The first anomaly of the key that started after completion.
    recurred: Option<DateTime<Utc>>,
    recurred_anomaly: Option<Uuid>,
    /// An anomaly of the key is still open.
    ongoing: bool,
    /// The last end of an anomaly of the key that started before completion.
    last_end: Option<DateTime<Utc>>,
}

/// What [`verify_quiet_auto`] did.
#[derive(Debug, Clone, Default)]
pub struct QuietVerification {
    /// Verified: the signal stayed normal for the quiet period.
    pub verified: Vec<WorkOrder>,
    /// The failure mode came back after completion: left completed, with a
    /// comment saying so (reported once; not verified automatically, a
    /// person may still verify it).
    pub recurred: Vec<WorkOrder>,
}

/// Verifies the organization's auto work orders completed as true alarms
/// whose signal stayed normal for `quiet`: no anomaly of their key
/// (equipment, failure mode) started since completion, none is still open,
/// and the last one ended (or the completion was) at least `quiet` before
/// `now`. Status history note: "signal normal for … after completion". One
/// whose failure mode came back after completion is left completed, noted
/// once in a comment and returned in `recurred` (reopening is not in the
/// status machine). Claimed with SKIP LOCKED, so several workers may run it.
pub async fn verify_quiet_auto(
    tx: &mut Tx,
    tenant: &Tenant,
    now: DateTime<Utc>,
    quiet: chrono::Duration,
) -> Result<QuietVerification> {
    let candidates: Vec<(Uuid, Uuid, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT id, equipment_id, failure_mode, completed_at, code FROM work_orders
         WHERE source = 'auto' AND status = 'completed' AND verdict = 'true_alarm' AND recurred_at IS NULL
           AND completed_at IS NOT NULL AND completed_at <= $1 AND equipment_id IS NOT NULL
           AND failure_mode IS NOT NULL
         ORDER BY completed_at, id
         FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = QuietVerification::default();
    for (id, equipment_id, failure_mode, completed_at, code) in candidates {
        let KeySignal {
            recurred,
            recurred_anomaly,
            ongoing,
            last_end,
        } = sqlx::query_as(
            "SELECT r.started_at AS recurred, r.id AS recurred_anomaly,
                    EXISTS (SELECT 1 FROM anomalies a
                            WHERE a.equipment_id = $1 AND a.failure_mode = $2 AND a.status = 'open') AS ongoing,
                    (SELECT max(a.ended_at) FROM anomalies a
                     WHERE a.equipment_id = $1 AND a.failure_mode = $2 AND a.started_at < $3) AS last_end
             FROM (SELECT 1) one
             LEFT JOIN LATERAL (SELECT a.started_at, a.id FROM anomalies a
                                WHERE a.equipment_id = $1 AND a.failure_mode = $2 AND a.started_at >= $3
                                ORDER BY a.started_at, a.id LIMIT 1) r ON true",
        )
        .bind(equipment_id)
        .bind(&failure_mode)
        .bind(completed_at)
        .fetch_one(&mut **tx)
        .await?;
        if let (Some(at), Some(anomaly)) = (recurred, recurred_anomaly) {
            sqlx::query("UPDATE work_orders SET recurred_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            let body = format!(
                "The failure mode {failure_mode} came back at {} (anomaly {anomaly}) after {code} was \
                 completed as a true alarm, before it could be verified; it stays completed — the repair may \
                 not have held.",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            crate::activity::add_comment(tx, tenant, id, crate::activity::NewComment { body }).await?;
            out.recurred.push(get(tx, id).await?);
            continue;
        }
        let quiet_since = last_end.map_or(completed_at, |e| e.max(completed_at));
        if ongoing || now - quiet_since < quiet {
            continue;
        }
        let note = format!(
            "signal normal for {} after completion (quiet period {})",
            auto_policy::humanize(now - quiet_since),
            auto_policy::humanize(quiet)
        );
        out.verified
            .push(change_status(tx, tenant, id, Status::Verified, &note, None, None).await?);
    }
    Ok(out)
}

/// What a work order still lacks before it may be completed, as field
/// errors (empty: it may be completed). The one rule, used by
/// [`transition`] and by edits of completed work orders:
///
/// - every kind: each *required* checklist item is done (`checklist[i]`,
///   `i` its position), and no downtime entry is still running
///   (`downtime[i]`, `i` its index in the oldest-first list);
/// - corrective and emergency work (a failure): problem, cause and remedy
///   codes are set (`problem_code`, `cause_code`, `remedy_code`) — this
///   includes auto work orders raised by analytics for process anomalies;
/// - inspection: *every* checklist item is done, optional ones too (an
///   inspection's checklist is its record), and a remedy code records the
///   outcome (`remedy_code`; `NON` when nothing needed doing) — this
///   includes auto inspections raised for suspected sensor faults;
/// - preventive: nothing more (its checklist carries the requirements);
/// - auto work orders (raised by analytics): a `verdict`; with
///   `false_alarm` no failure codes are needed (there was no failure),
///   with `true_alarm` the codes of its kind are.
pub fn completion_requirements(
    wo: &WorkOrder,
    checklist: &[ChecklistItem],
    downtime: &[Downtime],
) -> Vec<FieldError> {
    let mut missing = Vec::new();
    let every_item = wo.kind == Kind::Inspection;
    for item in checklist.iter().filter(|i| !i.done && (i.required || every_item)) {
        let what = if item.required { "required" } else { "inspection" };
        missing.push(FieldError::new(
            format!("checklist[{}]", item.position),
            format!("{what} item '{}' is not done", item.label),
        ));
    }
    for (i, d) in downtime.iter().enumerate().filter(|(_, d)| d.is_running()) {
        missing.push(FieldError::new(
            format!("downtime[{i}]"),
            format!("downtime {} has not ended", d.id),
        ));
    }
    let codes = [
        ("problemCode", &wo.problem_code),
        ("causeCode", &wo.cause_code),
        ("remedyCode", &wo.remedy_code),
    ];
    if wo.source == Source::Auto && wo.verdict.is_none() {
        missing.push(FieldError::new(
            "verdict",
            "required to complete an auto work order: true_alarm or false_alarm",
        ));
    }
    let false_alarm = wo.source == Source::Auto && wo.verdict == Some(Verdict::FalseAlarm);
    let needed: &[&str] = match wo.kind {
        _ if false_alarm => &[],
        Kind::Corrective | Kind::Emergency => &["problemCode", "causeCode", "remedyCode"],
        Kind::Inspection => &["remedyCode"],
        Kind::Preventive => &[],
    };
    for (field, value) in codes {
        if needed.contains(&field) && value.is_none() {
            missing.push(FieldError::new(
                field,
                format!("required to complete {} work", wo.kind),
            ));
        }
    }
    missing
}

/// A work order, locked for the rest of the transaction (every change of a
/// work order and of its details takes this lock first).
pub(crate) async fn lock(tx: &mut Tx, id: Uuid) -> Result<WorkOrder> {
    sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM work_orders WHERE id = $1 FOR UPDATE OF work_orders"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("work order"))?
    .try_into()
}

/// A change to a work order's fields. Status changes go through
/// [`transition`], assignees through [`set_assignees`]. Field names as in
/// [`WorkOrder`].
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkOrderPatch {
    /// 1-200 characters.
    pub title: Option<String>,
    pub description: Option<String>,
    pub kind: Option<Kind>,
    /// Requesters may not set it.
    pub priority: Option<Priority>,
    /// `null` removes the due date.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// An active problem code (e.g. `VIB`); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub problem_code: Option<Option<String>>,
    /// An active cause code (e.g. `WEA`); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub cause_code: Option<Option<String>>,
    /// An active remedy code (e.g. `REP`); `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub remedy_code: Option<Option<String>>,
    /// Auto work orders only: true_alarm | false_alarm. May be set (and
    /// changed) until the work order is completed; final from then on (it
    /// has been counted against the detector).
    pub verdict: Option<Verdict>,
}

/// Present-and-null vs absent, for PATCH fields that may be cleared.
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Changes a work order's fields. Verified and cancelled work orders are
/// final; a completed one may still be corrected, but only so that it keeps
/// meeting [`completion_requirements`]. Requesters may not set priority.
pub async fn update(tx: &mut Tx, tenant: &Tenant, id: Uuid, patch: WorkOrderPatch) -> Result<WorkOrder> {
    if requester_scope(tenant).is_some() && patch.priority.is_some() {
        return Err(ModelError::Forbidden(
            "requesters cannot set priority; a manager does".into(),
        ));
    }
    let mut errors = Vec::new();
    if let Some(t) = &patch.title {
        check_title(t, &mut errors);
    }
    if let Some(d) = &patch.description {
        check_description(d, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let current = lock(tx, id).await?;
    if matches!(current.status, Status::Verified | Status::Cancelled) {
        return Err(ModelError::Conflict(format!(
            "a {} work order cannot be changed",
            current.status
        )));
    }
    if let Some(v) = patch.verdict {
        if current.source != Source::Auto {
            return Err(ModelError::invalid(
                "verdict",
                "only auto work orders take a verdict",
            ));
        }
        if current.status == Status::Completed && current.verdict != Some(v) {
            return Err(ModelError::Conflict(
                "the verdict of a completed work order is final (it has been counted against the detector)"
                    .into(),
            ));
        }
    }
    let codes = resolve_codes(
        tx,
        [
            patch.problem_code.as_ref().map(|c| c.as_deref()),
            patch.cause_code.as_ref().map(|c| c.as_deref()),
            patch.remedy_code.as_ref().map(|c| c.as_deref()),
        ],
    )
    .await?;
    if current.status == Status::Completed {
        // The work order as it would be, against the completion rule.
        let normalized = |c: &Option<Option<String>>, old: &Option<String>| match c {
            None => old.clone(),
            Some(None) => None,
            Some(Some(code)) => Some(code.trim().to_uppercase()),
        };
        let after = WorkOrder {
            kind: patch.kind.unwrap_or(current.kind),
            problem_code: normalized(&patch.problem_code, &current.problem_code),
            cause_code: normalized(&patch.cause_code, &current.cause_code),
            remedy_code: normalized(&patch.remedy_code, &current.remedy_code),
            verdict: patch.verdict.or(current.verdict),
            ..current.clone()
        };
        let checklist = checklists::items(tx, id).await?;
        let downtime = downtime::entries(tx, id).await?;
        let missing = completion_requirements(&after, &checklist, &downtime);
        if !missing.is_empty() {
            return Err(ModelError::Validation(missing));
        }
    }
    let row = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders SET
             title = coalesce($2, title), description = coalesce($3, description),
             kind = coalesce($4, kind), priority = coalesce($5, priority),
             due_at = CASE WHEN $6 THEN $7 ELSE due_at END,
             problem_code_id = CASE WHEN $8 THEN $9 ELSE problem_code_id END,
             cause_code_id = CASE WHEN $10 THEN $11 ELSE cause_code_id END,
             remedy_code_id = CASE WHEN $12 THEN $13 ELSE remedy_code_id END,
             verdict = coalesce($14, verdict),
             updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(patch.title.as_deref().map(str::trim))
    .bind(patch.description.as_deref())
    .bind(patch.kind.map(Kind::as_str))
    .bind(patch.priority.map(Priority::as_str))
    .bind(patch.due_at.is_some())
    .bind(patch.due_at.flatten())
    .bind(codes[0].is_some())
    .bind(codes[0].flatten())
    .bind(codes[1].is_some())
    .bind(codes[1].flatten())
    .bind(codes[2].is_some())
    .bind(codes[2].flatten())
    .bind(patch.verdict.map(Verdict::as_str))
    .fetch_one(&mut **tx)
    .await?;
    let wo: WorkOrder = row.try_into()?;
    events::emit(tx, tenant, "work_order.updated", Some(wo.id), &wo).await?;
    Ok(wo)
}

/// The new set of a work order's assignees (`PUT …/assignees`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssigneeSet {
    /// Active users of the organization, at most 20; the first is the lead
    /// (`assigned_to`). Empty: nobody is assigned.
    pub user_ids: Vec<Uuid>,
}

/// Replaces who is assigned to a work order (while it is open, in progress
/// or on hold). People who stay assigned keep their assignment time; the
/// first of the list becomes the lead (`assigned_to`).
pub async fn set_assignees(tx: &mut Tx, tenant: &Tenant, id: Uuid, set: AssigneeSet) -> Result<WorkOrder> {
    let mut users: Vec<(String, Uuid)> = Vec::new();
    for (i, u) in set.user_ids.iter().enumerate() {
        if !users.iter().any(|(_, seen)| seen == u) {
            users.push((format!("userIds[{i}]"), *u));
        }
    }
    if users.len() > MAX_ASSIGNEES {
        return Err(ModelError::invalid(
            "userIds",
            format!("at most {MAX_ASSIGNEES} people"),
        ));
    }
    let current = lock(tx, id).await?;
    if !current.status.is_active() {
        return Err(ModelError::Conflict(format!(
            "the assignees of a {} work order cannot change",
            current.status
        )));
    }
    check_assignable(tx, &users).await?;
    let ids: Vec<Uuid> = users.iter().map(|(_, u)| *u).collect();
    sqlx::query("DELETE FROM work_order_assignees WHERE work_order_id = $1 AND user_id <> ALL($2)")
        .bind(id)
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    add_assignees(tx, tenant, id, &ids).await?;
    let row = sqlx::query_as::<_, Row>(&format!(
        "UPDATE work_orders SET assigned_to = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(ids.first())
    .fetch_one(&mut **tx)
    .await?;
    let wo: WorkOrder = row.try_into()?;
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
#[serde(rename_all = "camelCase")]
pub struct WorkOrderFilter {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub kind: Option<Kind>,
    pub source: Option<Source>,
    pub equipment_id: Option<Uuid>,
    /// Work orders this user is assigned to (lead or not).
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
           AND ($6::uuid IS NULL OR EXISTS (SELECT 1 FROM work_order_assignees a
                                            WHERE a.work_order_id = work_orders.id AND a.user_id = $6))
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
