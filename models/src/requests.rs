//! Work requests: a person asks for work (also from an asset's QR code); a
//! manager approves it into a work order or rejects it with a reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{FieldError, ModelError, Referenced, Result};
use crate::page::{self, Cursor, Page};
use crate::work_orders::{self, Kind, NewWorkOrder, Priority, WorkOrder};
use crate::{equipment, events};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkRequest {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub equipment_id: Option<Uuid>,
    pub requested_by: Uuid,
    /// pending | approved | rejected
    pub status: String,
    pub rejection_reason: Option<String>,
    /// The work order an approval created.
    pub work_order_id: Option<Uuid>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewWorkRequest {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The asset concerned (the QR form fills this in).
    pub equipment_id: Option<Uuid>,
}

/// A manager's approval: how to schedule the work.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Default corrective.
    pub kind: Option<Kind>,
    /// Default medium.
    pub priority: Option<Priority>,
    pub assigned_to: Option<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Rejection {
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RequestFilter {
    /// pending | approved | rejected
    pub status: Option<String>,
    /// Only requests about this equipment.
    pub equipment_id: Option<Uuid>,
    /// Only requests filed by this user (a requester sees only their own
    /// whatever this says).
    pub requested_by: Option<Uuid>,
    /// `meta.nextCursor` of the previous page (same filters).
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

const COLUMNS: &str = "id, title, description, equipment_id, requested_by, status, rejection_reason, \
     work_order_id, decided_by, decided_at, created_at";

pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewWorkRequest) -> Result<WorkRequest> {
    let mut errors = Vec::new();
    let title = new.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        errors.push(FieldError::new("title", "must be 1-200 characters"));
    }
    let Some(requested_by) = tenant.actor.user_id() else {
        return Err(ModelError::Forbidden("requests are filed by people".into()));
    };
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    if let Some(eq) = new.equipment_id {
        equipment::get(tx, eq)
            .await
            .referenced("equipmentId", "no such equipment")?;
    }
    let r = sqlx::query_as::<_, WorkRequest>(&format!(
        "INSERT INTO work_requests (id, organization_id, title, description, equipment_id, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(title)
    .bind(new.description.trim())
    .bind(new.equipment_id)
    .bind(requested_by)
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, "request.created", Some(r.id), &r).await?;
    Ok(r)
}

/// Requests `tenant` may see (requesters their own, others all), newest
/// first, filtered, paginated by a (created_at, id) cursor.
pub async fn list(tx: &mut Tx, tenant: &Tenant, filter: &RequestFilter) -> Result<Page<WorkRequest>> {
    if let Some(s) = filter.status.as_deref() {
        if !["pending", "approved", "rejected"].contains(&s) {
            return Err(ModelError::invalid(
                "status",
                "must be pending, approved or rejected",
            ));
        }
    }
    let limit = page::limit(filter.limit)?;
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    let rows = sqlx::query_as::<_, WorkRequest>(&format!(
        "SELECT {COLUMNS} FROM work_requests
         WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR equipment_id = $2)
           AND ($3::uuid IS NULL OR requested_by = $3)
           AND ($4::uuid IS NULL OR requested_by = $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC LIMIT $7"
    ))
    .bind(filter.status.as_deref())
    .bind(filter.equipment_id)
    .bind(work_orders::requester_scope(tenant))
    .bind(filter.requested_by)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    Ok(page::paginate(rows, limit, |r| Cursor {
        at: r.created_at,
        id: r.id,
    }))
}

pub async fn get(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<WorkRequest> {
    let r = sqlx::query_as::<_, WorkRequest>(&format!("SELECT {COLUMNS} FROM work_requests WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("request"))?;
    match work_orders::requester_scope(tenant) {
        Some(user) if r.requested_by != user => Err(ModelError::NotFound("request")),
        _ => Ok(r),
    }
}

/// Locks a pending request for a decision.
async fn pending(tx: &mut Tx, id: Uuid) -> Result<WorkRequest> {
    let r = sqlx::query_as::<_, WorkRequest>(&format!(
        "SELECT {COLUMNS} FROM work_requests WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("request"))?;
    if r.status != "pending" {
        return Err(ModelError::Conflict(format!(
            "the request is already {}",
            r.status
        )));
    }
    Ok(r)
}

/// Approves a pending request into a work order (credited to the requester).
pub async fn approve(
    tx: &mut Tx,
    tenant: &Tenant,
    id: Uuid,
    approval: Approval,
) -> Result<(WorkRequest, WorkOrder)> {
    let r = pending(tx, id).await?;
    let new = NewWorkOrder {
        title: r.title.clone(),
        description: r.description.clone(),
        kind: approval.kind,
        priority: approval.priority,
        equipment_id: r.equipment_id,
        sensor_id: None,
        assigned_to: approval.assigned_to,
        due_at: approval.due_at,
    };
    let wo = work_orders::create_for_request(tx, tenant, new, Some(r.requested_by)).await?;
    let r = decide(tx, tenant, id, "approved", None, Some(wo.id)).await?;
    Ok((r, wo))
}

/// Rejects a pending request; the reason is shown to the requester.
pub async fn reject(tx: &mut Tx, tenant: &Tenant, id: Uuid, rejection: Rejection) -> Result<WorkRequest> {
    let reason = rejection.reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ModelError::invalid("reason", "must be 1-2000 characters"));
    }
    pending(tx, id).await?;
    decide(tx, tenant, id, "rejected", Some(reason), None).await
}

async fn decide(
    tx: &mut Tx,
    tenant: &Tenant,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
    work_order_id: Option<Uuid>,
) -> Result<WorkRequest> {
    let r = sqlx::query_as::<_, WorkRequest>(&format!(
        "UPDATE work_requests SET status = $2, rejection_reason = $3, work_order_id = $4,
                decided_by = $5, decided_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(work_order_id)
    .bind(tenant.actor.user_id())
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, &format!("request.{status}"), Some(r.id), &r).await?;
    Ok(r)
}
