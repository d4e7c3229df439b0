//! Equipment (assets) and their parent/child hierarchy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Result};
use crate::events;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Equipment {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub asset_tag: String,
    pub description: String,
    pub location: String,
    /// low | medium | high | critical
    pub criticality: String,
    /// active | maintenance | decommissioned | retired
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEquipment {
    pub name: String,
    pub asset_tag: String,
    pub parent_id: Option<Uuid>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub location: String,
    /// low | medium | high | critical (default medium)
    pub criticality: Option<String>,
}

/// An equipment node with its children, for the tree view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EquipmentNode {
    #[serde(flatten)]
    pub equipment: Equipment,
    #[schema(no_recursion)]
    pub children: Vec<EquipmentNode>,
}

pub const CRITICALITIES: [&str; 4] = ["low", "medium", "high", "critical"];
const COLUMNS: &str =
    "id, parent_id, name, asset_tag, description, location, criticality, status, created_at, updated_at";

pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewEquipment) -> Result<Equipment> {
    let mut errors = Vec::new();
    if new.name.trim().is_empty() || new.name.len() > 200 {
        errors.push(FieldError::new("name", "must be 1-200 characters"));
    }
    let tag = new.asset_tag.trim();
    if tag.is_empty() || tag.len() > 64 {
        errors.push(FieldError::new("asset_tag", "must be 1-64 characters"));
    }
    let criticality = new.criticality.as_deref().unwrap_or("medium");
    if !CRITICALITIES.contains(&criticality) {
        errors.push(FieldError::new(
            "criticality",
            "must be one of low, medium, high, critical",
        ));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    if let Some(parent) = new.parent_id {
        // RLS makes another organization's equipment invisible: 404 either way.
        get(tx, parent).await.map_err(|e| match e {
            ModelError::NotFound(_) => ModelError::invalid("parent_id", "no such equipment"),
            other => other,
        })?;
    }
    let eq = sqlx::query_as::<_, Equipment>(&format!(
        "INSERT INTO equipment (id, organization_id, parent_id, name, asset_tag, description, location, criticality)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(new.parent_id)
    .bind(new.name.trim())
    .bind(tag)
    .bind(new.description)
    .bind(new.location)
    .bind(criticality)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "equipment_asset_tag_key", || {
            ModelError::Conflict(format!("asset tag '{tag}' is already used"))
        })
    })?;
    events::emit(tx, tenant, "equipment.created", Some(eq.id), &eq).await?;
    Ok(eq)
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Equipment> {
    sqlx::query_as::<_, Equipment>(&format!("SELECT {COLUMNS} FROM equipment WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("equipment"))
}

/// Equipment list with optional search over name, tag and location.
pub async fn list(tx: &mut Tx, q: Option<&str>, parent_id: Option<Uuid>) -> Result<Vec<Equipment>> {
    let pattern = q.map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        )
    });
    Ok(sqlx::query_as::<_, Equipment>(&format!(
        "SELECT {COLUMNS} FROM equipment
         WHERE ($1::text IS NULL OR name ILIKE $1 OR asset_tag ILIKE $1 OR location ILIKE $1)
           AND ($2::uuid IS NULL OR parent_id = $2)
         ORDER BY name, id"
    ))
    .bind(pattern)
    .bind(parent_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// The whole hierarchy as a forest of root nodes.
pub async fn tree(tx: &mut Tx) -> Result<Vec<EquipmentNode>> {
    let all = list(tx, None, None).await?;
    Ok(build_tree(all))
}

/// Nests a flat list by parent_id (children sorted as given). Nodes whose
/// parent is missing become roots.
pub fn build_tree(all: Vec<Equipment>) -> Vec<EquipmentNode> {
    use std::collections::{HashMap, HashSet};
    let ids: HashSet<Uuid> = all.iter().map(|e| e.id).collect();
    let mut children: HashMap<Option<Uuid>, Vec<Equipment>> = HashMap::new();
    for e in all {
        let key = e.parent_id.filter(|p| ids.contains(p));
        children.entry(key).or_default().push(e);
    }
    fn attach(
        parent: Option<Uuid>,
        children: &mut HashMap<Option<Uuid>, Vec<Equipment>>,
    ) -> Vec<EquipmentNode> {
        let mine = children.remove(&parent).unwrap_or_default();
        mine.into_iter()
            .map(|e| {
                let kids = attach(Some(e.id), children);
                EquipmentNode {
                    equipment: e,
                    children: kids,
                }
            })
            .collect()
    }
    attach(None, &mut children)
}

/// Numeric weight of a criticality (1 low .. 4 critical).
pub fn criticality_rank(c: &str) -> u8 {
    match c {
        "low" => 1,
        "high" => 3,
        "critical" => 4,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(id: u128, parent: Option<u128>) -> Equipment {
        Equipment {
            id: Uuid::from_u128(id),
            parent_id: parent.map(Uuid::from_u128),
            name: format!("e{id}"),
            asset_tag: format!("t{id}"),
            description: String::new(),
            location: String::new(),
            criticality: "medium".into(),
            status: "active".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn tree_nests_children() {
        let t = build_tree(vec![
            eq(1, None),
            eq(2, Some(1)),
            eq(3, Some(2)),
            eq(4, None),
            eq(5, Some(99)),
        ]);
        assert_eq!(t.len(), 3, "roots: 1, 4 and the orphan 5");
        assert_eq!(t[0].children.len(), 1);
        assert_eq!(t[0].children[0].children[0].equipment.id, Uuid::from_u128(3));
    }
}
