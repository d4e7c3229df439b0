//! The audit log: every write to a tenant table, recorded by a database
//! trigger with the acting user or service and the row before and after.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{ModelError, Result};
use crate::page;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub table_name: String,
    pub row_id: Option<String>,
    /// insert | update | delete
    pub action: String,
    /// The signed-in user who made the change, if a person did.
    pub actor_user_id: Option<Uuid>,
    /// `user:<role>` for people, the service name (analytics, ingest, …) otherwise.
    pub actor: String,
    /// The row before the change (secrets removed); absent for inserts.
    pub before: Option<serde_json::Value>,
    /// The row after the change (secrets removed); absent for deletes.
    pub after: Option<serde_json::Value>,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AuditFilter {
    /// Only changes to this table, e.g. `work_orders`.
    pub table: Option<String>,
    /// Only changes to this row (its id).
    pub row_id: Option<String>,
    /// Only changes made by this user.
    pub actor_user_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Pass `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// Audit entries, newest first.
pub async fn list(tx: &mut Tx, filter: &AuditFilter) -> Result<page::Page<AuditEntry>> {
    let limit = page::limit(filter.limit)?;
    let before_id = filter
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ModelError::invalid("cursor", "malformed cursor"))
        })
        .transpose()?;
    let mut rows = sqlx::query_as::<_, AuditEntry>(
        "SELECT id, table_name, row_id, action, actor_user_id, actor, before, after, changed_at FROM audit_log
         WHERE ($1::text IS NULL OR table_name = $1)
           AND ($2::text IS NULL OR row_id = $2)
           AND ($3::uuid IS NULL OR actor_user_id = $3)
           AND ($4::timestamptz IS NULL OR changed_at >= $4)
           AND ($5::timestamptz IS NULL OR changed_at < $5)
           AND ($6::bigint IS NULL OR id < $6)
         ORDER BY id DESC LIMIT $7",
    )
    .bind(filter.table.as_deref())
    .bind(filter.row_id.as_deref())
    .bind(filter.actor_user_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before_id)
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(page::Page {
        items: rows,
        next_cursor,
    })
}
