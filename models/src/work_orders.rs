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
     due_at, created_at, updated_at, completed_at";

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
                                  equipment_id, sensor_id, dedup_key, anomaly_id, last_occurrence_at,
                                  requested_by, assigned_to, due_at, problem_code_id, cause_code_id, remedy_code_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, CASE WHEN $12 IS NULL THEN NULL ELSE now() END,
                 $13, $14, $15, $16, $17, $18)
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
    .bind(auto.as_ref().map(|a| a.dedup_key.as_str()))
    .bind(auto.as_ref().map(|a| a.anomaly_id))
    .bind(requested_by)
    .bind(assignees.first().map(|(_, u)| *u))
    .bind(new.due_at)
    .bind(codes[0].flatten())
    .bind(codes[1].flatten())
    .bind(codes[2].flatten())
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
            let details = WorkOrderDetails::default();
            (insert(tx, tenant, new, details, Some(auto), None).await?, true)
        }
    };
    anomalies::link_work_order(tx, raise.anomaly_id, work_order.id).await?;
    Ok(Raised { work_order, created })
}

/// Moves a work order to another status, if the status machine allows it.
/// Completing also needs what [`completion_requirements`] lists; a refused
/// completion is a validation error naming the missing fields, and
/// nothing changes.
pub async fn transition(tx: &mut Tx, tenant: &Tenant, id: Uuid, to: Status, note: &str) -> Result<WorkOrder> {
    let current = lock(tx, id).await?;
    let from = current.status;
    if !from.can_become(to) {
        return Err(ModelError::InvalidTransition {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    if to == Status::Completed {
        let checklist = checklists::items(tx, id).await?;
        let downtime = downtime::entries(tx, id).await?;
        let missing = completion_requirements(&current, &checklist, &downtime);
        if !missing.is_empty() {
            return Err(ModelError::Validation(missing));
        }
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
/// - preventive: nothing more (its checklist carries the requirements).
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
    let needed: &[&str] = match wo.kind {
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
