//! Equipment (assets) and their parent/child hierarchy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Referenced, Result};
use crate::events;
use crate::page::{self, KeyCursor, Page};

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
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
        errors.push(FieldError::new("assetTag", "must be 1-64 characters"));
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
        get(tx, parent)
            .await
            .referenced("parentId", "no such equipment")?;
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

/// Filters of the equipment list. Without `q` the list is in name order;
/// with `q` it is a ranked search.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct EquipmentFilter {
    /// Full-text search over asset tag, name, location and description.
    /// Websearch syntax (`"exact phrase"`, `-not`, `or`); every word also
    /// matches as a prefix ("pum" finds "pump"). An exact asset-tag match
    /// comes first, then tags starting with the query, then by relevance.
    pub q: Option<String>,
    /// active | maintenance | decommissioned | retired
    pub status: Option<String>,
    /// low | medium | high | critical
    pub criticality: Option<String>,
    /// Only the direct children of this equipment.
    pub parent_id: Option<Uuid>,
    /// true: only top-level equipment (no parent); false: only equipment
    /// that has a parent. Not together with `parent_id`.
    pub root: Option<bool>,
    /// Location contains this text (case-insensitive).
    pub location: Option<String>,
    /// `meta.nextCursor` of the previous page (same filters).
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// The longest search query accepted.
pub const MAX_QUERY_CHARS: usize = 200;

/// Separators inside words, which both the search vector (SQL
/// `mp_search_words`, migration 0013) and the query treat as spaces.
const SEPARATORS: &[char] = &['-', '_', '.', '/', '\\', ':', '#', ',', ';', '+'];

/// The query text for `websearch_to_tsquery`: a run of separators right
/// after a character becomes a space ("P-101" → "P 101"), as in the stored
/// vector, while one that starts a word stays ("-motor" means "not motor").
pub fn search_words(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut prev_is_word = false;
    let mut in_gap = false;
    for c in q.chars() {
        let separator = SEPARATORS.contains(&c);
        if separator && (prev_is_word || in_gap) {
            if !in_gap {
                out.push(' ');
                in_gap = true;
            }
            prev_is_word = false;
            continue;
        }
        out.push(c);
        in_gap = false;
        prev_is_word = !separator && !c.is_whitespace();
    }
    out
}

/// A LIKE pattern matching strings that start with `s` literally.
fn prefix_pattern(s: &str) -> String {
    format!(
        "{}%",
        s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

/// The filters every equipment list query shares: $1 status, $2
/// criticality, $3 parent_id, $4 root, $5 location pattern.
const FILTERS: &str = "($1::text IS NULL OR status = $1)
               AND ($2::text IS NULL OR criticality = $2)
               AND ($3::uuid IS NULL OR parent_id = $3)
               AND ($4::boolean IS NULL OR (parent_id IS NULL) = $4)
               AND ($5::text IS NULL OR location ILIKE $5)";

/// A search hit with its sort key: tier 2 is an exact asset-tag match, 1 a
/// tag that starts with the query, 0 a text match; then rank, name, id.
#[derive(FromRow)]
struct Hit {
    #[sqlx(flatten)]
    equipment: Equipment,
    tier: i16,
    rank: f32,
}

/// The sort key of a search hit: (tier, rank, name).
type SearchKey = (i16, f32, String);

/// Checks the filters that are not checked by their type.
fn validate(filter: &EquipmentFilter) -> Result<()> {
    let mut errors = Vec::new();
    if let Some(s) = filter.status.as_deref() {
        if !STATUSES.contains(&s) {
            errors.push(FieldError::new(
                "status",
                "must be one of active, maintenance, decommissioned, retired",
            ));
        }
    }
    if let Some(c) = filter.criticality.as_deref() {
        if !CRITICALITIES.contains(&c) {
            errors.push(FieldError::new(
                "criticality",
                "must be one of low, medium, high, critical",
            ));
        }
    }
    if filter.parent_id.is_some() && filter.root.is_some() {
        errors.push(FieldError::new("root", "give parent_id or root, not both"));
    }
    if filter
        .q
        .as_deref()
        .is_some_and(|q| q.trim().chars().count() > MAX_QUERY_CHARS)
    {
        errors.push(FieldError::new(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Validation(errors))
    }
}

/// Equipment, filtered, in name order or (with `q`) ranked by relevance,
/// paginated by a keyset cursor over the sort key and id.
pub async fn list(tx: &mut Tx, filter: &EquipmentFilter) -> Result<Page<Equipment>> {
    validate(filter)?;
    let limit = page::limit(filter.limit)?;
    let location = filter
        .location
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("%{}", prefix_pattern(l)));
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let Some(q) = q else {
        let cursor = filter
            .cursor
            .as_deref()
            .map(KeyCursor::<String>::decode)
            .transpose()?;
        let rows = sqlx::query_as::<_, Equipment>(&format!(
            "SELECT {COLUMNS} FROM equipment
             WHERE {FILTERS}
               AND ($6::text IS NULL OR (name, id) > ($6, $7))
             ORDER BY name, id LIMIT $8"
        ))
        .bind(filter.status.as_deref())
        .bind(filter.criticality.as_deref())
        .bind(filter.parent_id)
        .bind(filter.root)
        .bind(location)
        .bind(cursor.as_ref().map(|c| c.key.as_str()))
        .bind(cursor.as_ref().map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(&mut **tx)
        .await?;
        return Ok(page::paginate_by(rows, limit, |e| {
            KeyCursor {
                key: e.name.clone(),
                id: e.id,
            }
            .encode()
        }));
    };
    let cursor = filter
        .cursor
        .as_deref()
        .map(KeyCursor::<SearchKey>::decode)
        .transpose()?;
    // websearch_to_tsquery, then every lexeme ('x') made a prefix ('x':*).
    let hits = sqlx::query_as::<_, Hit>(&format!(
        r"WITH query AS (
             SELECT regexp_replace(websearch_to_tsquery('simple', $6)::text,
                                   '(''(?:[^'']|'''')*'')', '\1:*', 'g')::tsquery AS tsq
         ), hits AS (
             SELECT {COLUMNS},
                    (CASE WHEN lower(asset_tag) = lower($7) THEN 2
                          WHEN lower(asset_tag) LIKE lower($8) THEN 1
                          ELSE 0 END)::smallint AS tier,
                    ts_rank(search, query.tsq) AS rank
             FROM equipment, query
             WHERE (search @@ query.tsq OR lower(asset_tag) LIKE lower($8))
               AND {FILTERS}
         )
         SELECT * FROM hits
         WHERE $9::smallint IS NULL
            OR tier < $9
            OR (tier = $9 AND (rank < $10 OR (rank = $10 AND (name, id) > ($11, $12))))
         ORDER BY tier DESC, rank DESC, name, id LIMIT $13"
    ))
    .bind(filter.status.as_deref())
    .bind(filter.criticality.as_deref())
    .bind(filter.parent_id)
    .bind(filter.root)
    .bind(location)
    .bind(search_words(q))
    .bind(q)
    .bind(prefix_pattern(q))
    .bind(cursor.as_ref().map(|c| c.key.0))
    .bind(cursor.as_ref().map(|c| c.key.1))
    .bind(cursor.as_ref().map(|c| c.key.2.as_str()))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    let page = page::paginate_by(hits, limit, |h| {
        KeyCursor {
            key: (h.tier, h.rank, h.equipment.name.clone()),
            id: h.equipment.id,
        }
        .encode()
    });
    Ok(Page {
        items: page.items.into_iter().map(|h| h.equipment).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Every piece of equipment in name order, unpaged: for the tree and the
/// CSV export.
pub async fn all(tx: &mut Tx) -> Result<Vec<Equipment>> {
    Ok(
        sqlx::query_as::<_, Equipment>(&format!("SELECT {COLUMNS} FROM equipment ORDER BY name, id"))
            .fetch_all(&mut **tx)
            .await?,
    )
}

/// The equipment with exactly this asset tag, if any.
pub async fn find_by_tag(tx: &mut Tx, asset_tag: &str) -> Result<Option<Equipment>> {
    Ok(
        sqlx::query_as::<_, Equipment>(&format!("SELECT {COLUMNS} FROM equipment WHERE asset_tag = $1"))
            .bind(asset_tag)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// The whole hierarchy as a forest of root nodes.
pub async fn tree(tx: &mut Tx) -> Result<Vec<EquipmentNode>> {
    let all = all(tx).await?;
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

    #[test]
    fn search_words_split_like_the_vector_but_keep_negation() {
        assert_eq!(search_words("P-101"), "P 101");
        assert_eq!(search_words("AHU_3.2"), "AHU 3 2");
        assert_eq!(search_words("x--/y"), "x y");
        assert_eq!(search_words("pump -motor"), "pump -motor");
        assert_eq!(search_words("-motor"), "-motor");
        assert_eq!(search_words("\"line-2\" or fan"), "\"line 2\" or fan");
        assert_eq!(search_words("Müller-Öl"), "Müller Öl");
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(prefix_pattern("P_1%\\"), "P\\_1\\%\\\\%");
    }
}

/// Changes to an equipment record; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EquipmentUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    /// low | medium | high | critical
    pub criticality: Option<String>,
    /// active | maintenance | decommissioned | retired. Decommissioning or
    /// retiring cascades to every descendant; a node can only be active or
    /// in maintenance while its parent is.
    pub status: Option<String>,
    /// Move under another parent (`move_to_root: true` to make it a root).
    pub parent_id: Option<Uuid>,
    #[serde(default)]
    pub move_to_root: bool,
}

pub const STATUSES: [&str; 4] = ["active", "maintenance", "decommissioned", "retired"];

fn is_out_of_service(status: &str) -> bool {
    matches!(status, "decommissioned" | "retired")
}

/// Updates an equipment record: fields, status (with cascade) and parent
/// (refusing cycles). Moves in one organization are serialized so two
/// concurrent moves cannot build a cycle together.
pub async fn update(tx: &mut Tx, tenant: &Tenant, id: Uuid, change: EquipmentUpdate) -> Result<Equipment> {
    let mut errors = Vec::new();
    if let Some(n) = &change.name {
        if n.trim().is_empty() || n.len() > 200 {
            errors.push(FieldError::new("name", "must be 1-200 characters"));
        }
    }
    if let Some(c) = &change.criticality {
        if !CRITICALITIES.contains(&c.as_str()) {
            errors.push(FieldError::new(
                "criticality",
                "must be one of low, medium, high, critical",
            ));
        }
    }
    if let Some(s) = &change.status {
        if !STATUSES.contains(&s.as_str()) {
            errors.push(FieldError::new(
                "status",
                "must be one of active, maintenance, decommissioned, retired",
            ));
        }
    }
    if change.move_to_root && change.parent_id.is_some() {
        errors.push(FieldError::new(
            "parentId",
            "give parent_id or move_to_root, not both",
        ));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}:equipment-tree", tenant.org_id))
        .execute(&mut **tx)
        .await?;
    let current = get(tx, id).await?;
    let parent_id = if change.move_to_root {
        None
    } else {
        change.parent_id.or(current.parent_id)
    };
    if let Some(p) = change.parent_id {
        let parent = get(tx, p).await.referenced("parentId", "no such equipment")?;
        if subtree_ids(tx, id).await?.contains(&parent.id) {
            return Err(ModelError::invalid(
                "parentId",
                "cannot move equipment under itself or one of its descendants",
            ));
        }
    }
    let status = change.status.clone().unwrap_or_else(|| current.status.clone());
    if !is_out_of_service(&status) {
        if let Some(p) = parent_id {
            let parent = get(tx, p).await?;
            if is_out_of_service(&parent.status) {
                return Err(ModelError::Conflict(format!(
                    "'{}' is {}: its equipment cannot be {status}",
                    parent.name, parent.status
                )));
            }
        }
    }
    let updated = sqlx::query_as::<_, Equipment>(&format!(
        "UPDATE equipment SET name = coalesce($2, name), description = coalesce($3, description),
                location = coalesce($4, location), criticality = coalesce($5, criticality),
                status = $6, parent_id = $7, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(change.name.as_deref().map(str::trim))
    .bind(change.description)
    .bind(change.location)
    .bind(change.criticality)
    .bind(&status)
    .bind(parent_id)
    .fetch_one(&mut **tx)
    .await?;
    if is_out_of_service(&status) && status != current.status {
        // Cascade to every descendant that is still in service.
        sqlx::query(
            "WITH RECURSIVE sub AS (SELECT id FROM equipment WHERE parent_id = $1
                                    UNION ALL SELECT e.id FROM equipment e JOIN sub ON e.parent_id = sub.id)
             UPDATE equipment SET status = $2, updated_at = now()
             WHERE id IN (SELECT id FROM sub) AND status NOT IN ('decommissioned', 'retired')",
        )
        .bind(id)
        .bind(&status)
        .execute(&mut **tx)
        .await?;
    }
    events::emit(tx, tenant, "equipment.updated", Some(updated.id), &updated).await?;
    Ok(updated)
}

/// The ids of `id` and all its descendants.
pub async fn subtree_ids(tx: &mut Tx, id: Uuid) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar::<_, Uuid>(
        "WITH RECURSIVE sub AS (SELECT id FROM equipment WHERE id = $1
                                UNION ALL SELECT e.id FROM equipment e JOIN sub ON e.parent_id = sub.id)
         SELECT id FROM sub",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?)
}

/// `id` and its descendants as a tree.
pub async fn subtree(tx: &mut Tx, id: Uuid) -> Result<EquipmentNode> {
    let root = get(tx, id).await?;
    let ids = subtree_ids(tx, id).await?;
    let all = sqlx::query_as::<_, Equipment>(&format!(
        "SELECT {COLUMNS} FROM equipment WHERE id = ANY($1) ORDER BY name, id"
    ))
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut forest = build_tree(all.into_iter().filter(|e| e.id != root.id).collect());
    // build_tree makes the root's children roots (their parent is absent).
    forest.retain(|n| n.equipment.parent_id == Some(root.id));
    Ok(EquipmentNode {
        equipment: root,
        children: forest,
    })
}

/// The chain from the top of the hierarchy down to `id`.
pub async fn path(tx: &mut Tx, id: Uuid) -> Result<Vec<Equipment>> {
    get(tx, id).await?;
    Ok(sqlx::query_as::<_, Equipment>(&format!(
        "WITH RECURSIVE up AS (SELECT id, parent_id, 0 AS depth FROM equipment WHERE id = $1
                               UNION ALL SELECT e.id, e.parent_id, up.depth + 1
                               FROM equipment e JOIN up ON e.id = up.parent_id)
         SELECT {} FROM equipment e JOIN up USING (id) ORDER BY up.depth DESC",
        COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?)
}
