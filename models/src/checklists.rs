//! Work-order checklists: ordered items, each required or optional, ticked
//! off (with a result note) by whoever does the work. The list can be given
//! when the work order is created (or copied from a preventive schedule's
//! template) and replaced while the work is open; required items must be
//! done before the work order may be completed (see
//! [`crate::work_orders::completion_requirements`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{FieldError, ModelError, Result};
use crate::events;
use crate::work_orders::{self, WorkOrder};

/// Most items one work order may have.
pub const MAX_ITEMS: usize = 100;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 500;
/// Longest result note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistItem {
    pub id: Uuid,
    pub work_order_id: Uuid,
    /// 0, 1, … in the order the list was given.
    pub position: i32,
    pub label: String,
    /// Must be done before the work order may be completed.
    pub required: bool,
    pub done: bool,
    pub done_by: Option<Uuid>,
    pub done_at: Option<DateTime<Utc>>,
    /// The result or a remark ("bearing temperature 61 °C").
    pub note: String,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, work_order_id, position, label, required, done, done_by, done_at, note, updated_at";

/// An item of a checklist to create (on a new work order, or as a
/// preventive schedule's template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChecklistTemplateItem {
    /// 1-500 characters.
    pub label: String,
    /// Default true.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// The new list of a work order's checklist (`PUT …/checklist`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistReplacement {
    /// The items in order (at most 100). Items not listed are removed.
    pub items: Vec<ChecklistEntry>,
}

/// One item of a replacement list: an existing item (by `id`, keeping
/// whether and by whom it was done) or a new one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistEntry {
    /// An item of this work order's current list, to keep it (relabelled
    /// and moved as given) with its done state; absent for a new item.
    pub id: Option<Uuid>,
    pub label: String,
    /// Default true.
    #[serde(default = "yes")]
    pub required: bool,
}

/// Ticks or unticks an item, optionally with its result.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistTick {
    pub done: bool,
    /// The result or a remark (at most 2000 characters); absent keeps the current note.
    pub note: Option<String>,
}

fn check_label(label: &str, field: String, errors: &mut Vec<FieldError>) {
    let n = label.trim().chars().count();
    if n == 0 || n > MAX_LABEL_CHARS {
        errors.push(FieldError::new(
            field,
            format!("must be 1-{MAX_LABEL_CHARS} characters"),
        ));
    }
}

/// Problems with a checklist to create, with fields named `{field}[i].label`.
pub fn validate_template(items: &[ChecklistTemplateItem], field: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if items.len() > MAX_ITEMS {
        errors.push(FieldError::new(field, format!("at most {MAX_ITEMS} items")));
    }
    for (i, item) in items.iter().enumerate() {
        check_label(&item.label, format!("{field}[{i}].label"), &mut errors);
    }
    errors
}

/// A work order's checklist, in order, if `tenant` may see the work order.
pub async fn list(tx: &mut Tx, tenant: &Tenant, work_order_id: Uuid) -> Result<Vec<ChecklistItem>> {
    work_orders::get_visible(tx, tenant, work_order_id).await?;
    items(tx, work_order_id).await
}

/// A work order's checklist, in order (no visibility check).
pub(crate) async fn items(tx: &mut Tx, work_order_id: Uuid) -> Result<Vec<ChecklistItem>> {
    Ok(sqlx::query_as::<_, ChecklistItem>(&format!(
        "SELECT {COLUMNS} FROM work_order_checklist_items WHERE work_order_id = $1 ORDER BY position, id"
    ))
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// Inserts a validated list as the checklist of a work order that has none
/// yet (a new work order).
pub(crate) async fn insert_template(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    items: &[ChecklistTemplateItem],
) -> Result<()> {
    for (position, item) in items.iter().enumerate() {
        insert_item(
            tx,
            tenant,
            work_order_id,
            position,
            item.label.trim(),
            item.required,
        )
        .await?;
    }
    Ok(())
}

async fn insert_item(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    position: usize,
    label: &str,
    required: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO work_order_checklist_items (id, organization_id, work_order_id, position, label, required)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(position_of(position)?)
    .bind(label)
    .bind(required)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn position_of(i: usize) -> Result<i32> {
    i32::try_from(i).map_err(|_| ModelError::invalid("items", format!("at most {MAX_ITEMS} items")))
}

/// Locks the work order and checks that its checklist may change: only
/// while the work is open, in progress or on hold.
async fn open_work_order(tx: &mut Tx, work_order_id: Uuid) -> Result<WorkOrder> {
    let wo = work_orders::lock(tx, work_order_id).await?;
    if !wo.status.is_active() {
        return Err(ModelError::Conflict(format!(
            "the checklist of a {} work order cannot change",
            wo.status
        )));
    }
    Ok(wo)
}

/// Replaces a work order's checklist: listed existing items are kept (with
/// their done state) and renumbered, new ones added, the rest removed.
pub async fn replace(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    replacement: ChecklistReplacement,
) -> Result<Vec<ChecklistItem>> {
    let entries = replacement.items;
    let mut errors = Vec::new();
    if entries.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", format!("at most {MAX_ITEMS} items")));
    }
    for (i, e) in entries.iter().enumerate() {
        check_label(&e.label, format!("items[{i}].label"), &mut errors);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    open_work_order(tx, work_order_id).await?;
    let current: HashSet<Uuid> = items(tx, work_order_id)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let mut kept = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(id) = e.id {
            if !current.contains(&id) {
                errors.push(FieldError::new(
                    format!("items[{i}].id"),
                    "no such item on this work order",
                ));
            } else if !kept.insert(id) {
                errors.push(FieldError::new(format!("items[{i}].id"), "listed twice"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let kept: Vec<Uuid> = kept.into_iter().collect();
    sqlx::query("DELETE FROM work_order_checklist_items WHERE work_order_id = $1 AND id <> ALL($2)")
        .bind(work_order_id)
        .bind(&kept)
        .execute(&mut **tx)
        .await?;
    for (position, e) in entries.iter().enumerate() {
        match e.id {
            Some(id) => {
                sqlx::query(
                    "UPDATE work_order_checklist_items SET position = $2, label = $3, required = $4, updated_at = now()
                     WHERE id = $1 AND (position, label, required) IS DISTINCT FROM ($2, $3, $4)",
                )
                .bind(id)
                .bind(position_of(position)?)
                .bind(e.label.trim())
                .bind(e.required)
                .execute(&mut **tx)
                .await?;
            }
            None => insert_item(tx, tenant, work_order_id, position, e.label.trim(), e.required).await?,
        }
    }
    let list = items(tx, work_order_id).await?;
    events::emit(
        tx,
        tenant,
        "work_order.checklist_updated",
        Some(work_order_id),
        &serde_json::json!({ "workOrderId": work_order_id, "items": &list }),
    )
    .await?;
    Ok(list)
}

/// Ticks or unticks one item (recording who and when), while the work is
/// open, in progress or on hold.
pub async fn tick(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    item_id: Uuid,
    tick: ChecklistTick,
) -> Result<ChecklistItem> {
    if let Some(note) = &tick.note {
        if note.trim().chars().count() > MAX_NOTE_CHARS {
            return Err(ModelError::invalid(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
    }
    open_work_order(tx, work_order_id).await?;
    let item = sqlx::query_as::<_, ChecklistItem>(&format!(
        "UPDATE work_order_checklist_items
         SET done = $3,
             done_by = CASE WHEN NOT $3 THEN NULL WHEN done THEN done_by ELSE $4 END,
             done_at = CASE WHEN NOT $3 THEN NULL WHEN done THEN done_at ELSE now() END,
             note = coalesce($5, note), updated_at = now()
         WHERE id = $1 AND work_order_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(item_id)
    .bind(work_order_id)
    .bind(tick.done)
    .bind(tenant.actor.user_id())
    .bind(tick.note.as_deref().map(str::trim))
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("checklist item"))?;
    events::emit(
        tx,
        tenant,
        "work_order.checklist_item_updated",
        Some(work_order_id),
        &item,
    )
    .await?;
    Ok(item)
}
