//! Work-order activity: comments and labour time logs.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{FieldError, ModelError, Referenced, Result};
use crate::{events, work_orders};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: Uuid,
    pub work_order_id: Uuid,
    /// Absent for comments written by a service (analytics).
    pub author_id: Option<Uuid>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewComment {
    pub body: String,
}

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeLog {
    pub id: Uuid,
    pub work_order_id: Uuid,
    pub user_id: Uuid,
    pub minutes: i32,
    pub performed_on: NaiveDate,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewTimeLog {
    /// Labour minutes, 1-1440.
    pub minutes: i32,
    /// Day the work was done (default today).
    pub performed_on: Option<NaiveDate>,
    #[serde(default)]
    pub note: String,
    /// Whose labour (default the caller).
    pub user_id: Option<Uuid>,
}

/// A work order's time logs and their total.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeSheet {
    pub entries: Vec<TimeLog>,
    pub total_minutes: i64,
}

pub async fn add_comment(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    new: NewComment,
) -> Result<Comment> {
    let body = new.body.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(ModelError::invalid("body", "must be 1-10000 characters"));
    }
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    let c = sqlx::query_as::<_, Comment>(
        "INSERT INTO work_order_comments (id, organization_id, work_order_id, author_id, body)
         VALUES ($1, $2, $3, $4, $5) RETURNING id, work_order_id, author_id, body, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(tenant.actor.user_id())
    .bind(body)
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, "work_order.commented", Some(work_order_id), &c).await?;
    Ok(c)
}

pub async fn comments(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid) -> Result<Vec<Comment>> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    Ok(sqlx::query_as::<_, Comment>(
        "SELECT id, work_order_id, author_id, body, created_at FROM work_order_comments
         WHERE work_order_id = $1 ORDER BY created_at, id",
    )
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn log_time(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid, new: NewTimeLog) -> Result<TimeLog> {
    let mut errors = Vec::new();
    if !(1..=1440).contains(&new.minutes) {
        errors.push(FieldError::new("minutes", "must be between 1 and 1440"));
    }
    let today = Utc::now().date_naive();
    if new.performed_on.is_some_and(|d| d > today) {
        errors.push(FieldError::new("performedOn", "must not be in the future"));
    }
    let user_id = new.user_id.or(tenant.actor.user_id());
    if user_id.is_none() {
        errors.push(FieldError::new("userId", "required when a service logs time"));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let wo = work_orders::get(tx, work_order_id).await?;
    if matches!(
        wo.status,
        work_orders::Status::Cancelled | work_orders::Status::Verified
    ) {
        return Err(ModelError::Conflict(format!(
            "cannot log time on a {} work order",
            wo.status
        )));
    }
    if let Some(u) = new.user_id {
        crate::users::get(tx, u)
            .await
            .referenced("userId", "no such user")?;
    }
    let log = sqlx::query_as::<_, TimeLog>(
        "INSERT INTO work_order_time_logs (id, organization_id, work_order_id, user_id, minutes, performed_on, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, work_order_id, user_id, minutes, performed_on, note, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(user_id)
    .bind(new.minutes)
    .bind(new.performed_on.unwrap_or(today))
    .bind(new.note.trim())
    .fetch_one(&mut **tx)
    .await?;
    events::emit(tx, tenant, "work_order.time_logged", Some(work_order_id), &log).await?;
    Ok(log)
}

pub async fn time_sheet(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid) -> Result<TimeSheet> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    let entries = sqlx::query_as::<_, TimeLog>(
        "SELECT id, work_order_id, user_id, minutes, performed_on, note, created_at FROM work_order_time_logs
         WHERE work_order_id = $1 ORDER BY performed_on, created_at, id",
    )
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?;
    let total_minutes = entries.iter().map(|e| i64::from(e.minutes)).sum();
    Ok(TimeSheet {
        entries,
        total_minutes,
    })
}
