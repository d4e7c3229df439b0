//! Dead letters: input that could not be stored, kept with the reason.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{set_org, Db};
use crate::error::Result;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub topic: String,
    /// The payload as received (lossy UTF-8 for display).
    #[sqlx(skip)]
    pub payload_text: String,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub reason: String,
    pub detail: String,
}

/// A rejected message, before it is stored.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The organization, when the input could be attributed to one.
    pub organization_id: Option<Uuid>,
    pub topic: String,
    pub payload: Vec<u8>,
    /// A stable machine-readable reason, e.g. `malformed_payload`.
    pub reason: String,
    pub detail: String,
}

/// Stores dead letters, each in its organization's context, in one transaction.
pub async fn insert_many(db: &Db, letters: &[NewDeadLetter]) -> Result<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let mut tx = db.system().await?;
    for l in letters {
        match l.organization_id {
            Some(org) => set_org(&mut tx, org).await?,
            None => {
                sqlx::query("SELECT set_config('app.org_id', '', true)")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO dead_letters (organization_id, topic, payload, reason, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(l.organization_id)
        .bind(&l.topic)
        .bind(&l.payload)
        .bind(&l.reason)
        .bind(&l.detail)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The tenant's most recent dead letters.
pub async fn list(tx: &mut crate::Tx, limit: i64) -> Result<Vec<DeadLetter>> {
    let mut rows = sqlx::query_as::<_, DeadLetter>(
        "SELECT id, received_at, topic, payload, reason, detail FROM dead_letters ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    for r in &mut rows {
        r.payload_text = String::from_utf8_lossy(&r.payload).into_owned();
    }
    Ok(rows)
}
