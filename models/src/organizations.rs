//! Organizations: the tenants.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{set_org, Db};
use crate::error::{on_constraint, ModelError, Result};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Creates an organization (in its own transaction, acting for it).
pub async fn create(db: &Db, slug: &str, name: &str) -> Result<Organization> {
    validate_slug(slug)?;
    if name.trim().is_empty() {
        return Err(ModelError::invalid("name", "must not be empty"));
    }
    let id = Uuid::now_v7();
    let mut tx = db.system().await?;
    set_org(&mut tx, id).await?;
    let org = sqlx::query_as::<_, Organization>(
        "INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $3) RETURNING id, slug, name, created_at",
    )
    .bind(id)
    .bind(slug)
    .bind(name.trim())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        on_constraint(e, "organizations_slug_key", || {
            ModelError::Conflict(format!("organization '{slug}' already exists"))
        })
    })?;
    tx.commit().await?;
    Ok(org)
}

/// The id of the organization with this slug, if any.
pub async fn id_by_slug(db: &Db, slug: &str) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar::<_, Option<Uuid>>("SELECT mp_org_id_by_slug($1)")
            .bind(slug)
            .fetch_one(db.pool())
            .await?,
    )
}

/// The current organization of a tenant transaction.
pub async fn current(tx: &mut crate::Tx) -> Result<Organization> {
    sqlx::query_as::<_, Organization>("SELECT id, slug, name, created_at FROM organizations")
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("organization"))
}

pub fn validate_slug(slug: &str) -> Result<()> {
    let ok = (2..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::invalid(
            "slug",
            "2-63 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}
