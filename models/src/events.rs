//! The change outbox: events written in the same transaction as the change
//! they describe, read later by WebSocket fan-out and webhook delivery.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::Result;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Records an event in the caller's transaction.
pub async fn emit<T: Serialize>(
    tx: &mut Tx,
    tenant: &Tenant,
    kind: &str,
    subject_id: Option<Uuid>,
    payload: &T,
) -> Result<()> {
    let payload = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
    sqlx::query("INSERT INTO events (organization_id, kind, subject_id, payload) VALUES ($1, $2, $3, $4)")
        .bind(tenant.org_id)
        .bind(kind)
        .bind(subject_id)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Events after `after_id`, oldest first.
pub async fn list_after(tx: &mut Tx, after_id: i64, limit: i64) -> Result<Vec<Event>> {
    Ok(sqlx::query_as::<_, Event>(
        "SELECT id, kind, subject_id, payload, created_at FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}
