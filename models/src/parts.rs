//! Parts inventory: the catalog, stock locations, the append-only stock
//! ledger with its on-hand figure per (part, location), reservations of stock
//! for work orders, low-stock alerts and the parts cost of a work order.
//!
//! Every change to a part's stock (movement or reservation) first locks the
//! part's row, so changes to one part are serialized: the availability checks
//! read settled figures, the on-hand figure moves in step with the ledger,
//! and the low-stock event fires exactly once per crossing of the reorder
//! point. The `stock_levels.on_hand >= 0` CHECK is the last line of defence.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Referenced, Result};
use crate::events;
use crate::page::{self, Cursor, Page};

/// Largest quantity of one movement or reservation.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Largest unit cost: 100 million in the currency's main unit.
pub const MAX_UNIT_COST_CENTS: i64 = 10_000_000_000;
/// Longest note on a movement.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Work-order statuses whose reservations hold stock.
const ACTIVE_WORK_ORDER: &str = "('open', 'in_progress', 'on_hold')";

/// A part of the catalog with its stock over all locations.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub id: Uuid,
    /// Unique per organization.
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Unit of measure, e.g. each, m, l.
    pub unit: String,
    /// Standard cost per unit in cents; issues to work orders are valued at it.
    pub unit_cost_cents: i64,
    /// Available stock below this raises a `part.low_stock` event.
    pub reorder_point: i64,
    /// How much to order when restocking.
    pub reorder_qty: i64,
    /// On hand over all locations.
    pub on_hand: i64,
    /// Reserved for open, in-progress or on-hold work orders.
    pub reserved: i64,
    /// On hand minus reserved.
    pub available: i64,
    /// True when available is below the reorder point.
    pub low_stock: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A part's stock at one location.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationStock {
    pub location_id: Uuid,
    pub location_name: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// A part with its stock per location.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartDetail {
    #[serde(flatten)]
    pub part: Part,
    /// Locations that hold or held the part, or have some of it reserved.
    pub locations: Vec<LocationStock>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPart {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Default "each".
    pub unit: Option<String>,
    /// Default 0.
    pub unit_cost_cents: Option<i64>,
    /// Default 0 (no low-stock alerts).
    pub reorder_point: Option<i64>,
    /// Default 0.
    pub reorder_qty: Option<i64>,
}

/// Changes to a part; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartPatch {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub unit: Option<String>,
    pub unit_cost_cents: Option<i64>,
    pub reorder_point: Option<i64>,
    pub reorder_qty: Option<i64>,
}

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockLocation {
    pub id: Uuid,
    /// Unique per organization.
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewStockLocation {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Stock arrives (quantity > 0).
    Receive,
    /// Stock leaves for a work order (quantity < 0 in the ledger).
    Issue,
    /// A count correction, either way; needs a note.
    Adjust,
    /// Unused stock comes back from a work order (quantity > 0).
    Return,
}

impl MovementKind {
    pub const ALL: [MovementKind; 4] = [
        MovementKind::Receive,
        MovementKind::Issue,
        MovementKind::Adjust,
        MovementKind::Return,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receive => "receive",
            MovementKind::Issue => "issue",
            MovementKind::Adjust => "adjust",
            MovementKind::Return => "return",
        }
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MovementKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        MovementKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::invalid("kind", format!("unknown movement kind '{s}'")))
    }
}

/// One row of the stock ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockMovement {
    pub id: Uuid,
    pub part_id: Uuid,
    pub location_id: Uuid,
    pub kind: MovementKind,
    /// Signed: positive adds stock, negative takes it.
    pub quantity: i64,
    pub unit_cost_cents: i64,
    pub work_order_id: Option<Uuid>,
    pub note: String,
    /// On hand at the location right after this movement.
    pub on_hand_after: i64,
    /// The user who recorded it; absent for services.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct MovementRow {
    id: Uuid,
    part_id: Uuid,
    location_id: Uuid,
    kind: String,
    quantity: i64,
    unit_cost_cents: i64,
    work_order_id: Option<Uuid>,
    note: String,
    on_hand_after: i64,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl TryFrom<MovementRow> for StockMovement {
    type Error = ModelError;
    fn try_from(r: MovementRow) -> Result<Self> {
        Ok(StockMovement {
            id: r.id,
            part_id: r.part_id,
            location_id: r.location_id,
            kind: r.kind.parse()?,
            quantity: r.quantity,
            unit_cost_cents: r.unit_cost_cents,
            work_order_id: r.work_order_id,
            note: r.note,
            on_hand_after: r.on_hand_after,
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }
}

const MOVEMENT_COLUMNS: &str =
    "id, part_id, location_id, kind, quantity, unit_cost_cents, work_order_id, note, \
     on_hand_after, created_by, created_at";

/// Stock arriving at a location.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveStock {
    pub location_id: Uuid,
    /// Greater than 0.
    pub quantity: i64,
    /// What this delivery cost per unit (default the part's unit cost).
    pub unit_cost_cents: Option<i64>,
    pub note: Option<String>,
}

/// Stock leaving a location for a work order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssueStock {
    pub location_id: Uuid,
    /// Greater than 0.
    pub quantity: i64,
    pub work_order_id: Uuid,
    pub note: Option<String>,
}

/// A count correction at a location. It records what is physically there,
/// so it may leave reservations uncovered (available then goes negative);
/// it can never take on hand below zero.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjustStock {
    pub location_id: Uuid,
    /// Signed, not 0: positive adds, negative removes.
    pub quantity: i64,
    /// Why (required).
    pub note: String,
}

/// Unused stock coming back from a work order to a location.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnStock {
    pub location_id: Uuid,
    /// Greater than 0, at most what the work order still holds.
    pub quantity: i64,
    pub work_order_id: Uuid,
    pub note: Option<String>,
}

/// Any movement, as the ledger takes it. `quantity` is as entered: positive
/// for receive, issue and return, signed for adjust.
#[derive(Debug, Clone)]
pub struct NewMovement {
    pub kind: MovementKind,
    pub location_id: Uuid,
    pub quantity: i64,
    pub unit_cost_cents: Option<i64>,
    pub work_order_id: Option<Uuid>,
    pub note: String,
}

impl From<ReceiveStock> for NewMovement {
    fn from(r: ReceiveStock) -> Self {
        NewMovement {
            kind: MovementKind::Receive,
            location_id: r.location_id,
            quantity: r.quantity,
            unit_cost_cents: r.unit_cost_cents,
            work_order_id: None,
            note: r.note.unwrap_or_default(),
        }
    }
}

impl From<IssueStock> for NewMovement {
    fn from(r: IssueStock) -> Self {
        NewMovement {
            kind: MovementKind::Issue,
            location_id: r.location_id,
            quantity: r.quantity,
            unit_cost_cents: None,
            work_order_id: Some(r.work_order_id),
            note: r.note.unwrap_or_default(),
        }
    }
}

impl From<AdjustStock> for NewMovement {
    fn from(r: AdjustStock) -> Self {
        NewMovement {
            kind: MovementKind::Adjust,
            location_id: r.location_id,
            quantity: r.quantity,
            unit_cost_cents: None,
            work_order_id: None,
            note: r.note,
        }
    }
}

impl From<ReturnStock> for NewMovement {
    fn from(r: ReturnStock) -> Self {
        NewMovement {
            kind: MovementKind::Return,
            location_id: r.location_id,
            quantity: r.quantity,
            unit_cost_cents: None,
            work_order_id: Some(r.work_order_id),
            note: r.note.unwrap_or_default(),
        }
    }
}

impl NewMovement {
    fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let q = self.quantity;
        if self.kind == MovementKind::Adjust {
            if q == 0 || q.abs() > MAX_QUANTITY {
                errors.push(FieldError::new(
                    "quantity",
                    format!("must be non-zero and between -{MAX_QUANTITY} and {MAX_QUANTITY}"),
                ));
            }
        } else if !(1..=MAX_QUANTITY).contains(&q) {
            errors.push(FieldError::new(
                "quantity",
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        match (self.kind, self.unit_cost_cents) {
            (MovementKind::Receive, Some(c)) if !(0..=MAX_UNIT_COST_CENTS).contains(&c) => {
                errors.push(FieldError::new(
                    "unitCostCents",
                    format!("must be between 0 and {MAX_UNIT_COST_CENTS}"),
                ))
            }
            (MovementKind::Receive, _) | (_, None) => {}
            (_, Some(_)) => errors.push(FieldError::new(
                "unitCostCents",
                "only a receipt sets a cost; issues use the part's unit cost",
            )),
        }
        let needs_wo = matches!(self.kind, MovementKind::Issue | MovementKind::Return);
        if needs_wo && self.work_order_id.is_none() {
            errors.push(FieldError::new("workOrderId", "is required"));
        } else if !needs_wo && self.work_order_id.is_some() {
            errors.push(FieldError::new(
                "workOrderId",
                "only issues and returns name a work order",
            ));
        }
        if self.kind == MovementKind::Adjust && self.note.trim().is_empty() {
            errors.push(FieldError::new("note", "an adjustment needs a reason"));
        }
        if self.note.chars().count() > MAX_NOTE_CHARS {
            errors.push(FieldError::new(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Validation(errors))
        }
    }

    /// The signed ledger quantity.
    fn signed(&self) -> i64 {
        match self.kind {
            MovementKind::Issue => -self.quantity,
            _ => self.quantity,
        }
    }
}

/// Stock reserved for a work order at a location.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub id: Uuid,
    pub work_order_id: Uuid,
    pub part_id: Uuid,
    pub sku: String,
    pub part_name: String,
    pub location_id: Uuid,
    pub location_name: String,
    pub quantity: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewReservation {
    pub part_id: Uuid,
    pub location_id: Uuid,
    /// Greater than 0, at most what is available at the location.
    pub quantity: i64,
}

/// What a work order consumed of one part.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedPart {
    pub part_id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub issued: i64,
    pub returned: i64,
    /// Issued minus returned.
    pub net_quantity: i64,
    /// Value of issues minus value of returns, in cents.
    pub cost_cents: i64,
}

/// A work order's parts: what it used, what it has reserved, and the cost.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkOrderParts {
    pub work_order_id: Uuid,
    pub issued: Vec<IssuedPart>,
    pub reserved: Vec<Reservation>,
    /// Sum of the issued parts' cost, in cents.
    pub total_cost_cents: i64,
}

/// The `part.low_stock` event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LowStock<'a> {
    part_id: Uuid,
    sku: &'a str,
    name: &'a str,
    on_hand: i64,
    reserved: i64,
    available: i64,
    reorder_point: i64,
    reorder_qty: i64,
}

fn part_select() -> String {
    format!(
        "SELECT p.id, p.sku, p.name, p.description, p.unit, p.unit_cost_cents, p.reorder_point, p.reorder_qty,
                s.on_hand, s.reserved, s.on_hand - s.reserved AS available,
                (s.on_hand - s.reserved) < p.reorder_point AS low_stock,
                p.created_at, p.updated_at
         FROM parts p
         CROSS JOIN LATERAL (
             SELECT COALESCE((SELECT sum(l.on_hand) FROM stock_levels l WHERE l.part_id = p.id), 0)::bigint AS on_hand,
                    COALESCE((SELECT sum(r.quantity) FROM part_reservations r
                              JOIN work_orders w ON w.id = r.work_order_id
                              WHERE r.part_id = p.id AND w.status IN {ACTIVE_WORK_ORDER}), 0)::bigint AS reserved
         ) s"
    )
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if n == 0 || n > max {
        errors.push(FieldError::new(field, format!("must be 1-{max} characters")));
    }
}

fn check_range(errors: &mut Vec<FieldError>, field: &str, value: i64, max: i64) {
    if !(0..=max).contains(&value) {
        errors.push(FieldError::new(field, format!("must be between 0 and {max}")));
    }
}

fn validate_part(patch: &PartPatch) -> Result<()> {
    let mut errors = Vec::new();
    if let Some(sku) = &patch.sku {
        check_text(&mut errors, "sku", sku, 64);
    }
    if let Some(name) = &patch.name {
        check_text(&mut errors, "name", name, 200);
    }
    if let Some(unit) = &patch.unit {
        check_text(&mut errors, "unit", unit, 32);
    }
    if patch.description.as_ref().is_some_and(|d| d.len() > 20_000) {
        errors.push(FieldError::new("description", "must be at most 20000 bytes"));
    }
    if let Some(c) = patch.unit_cost_cents {
        check_range(&mut errors, "unitCostCents", c, MAX_UNIT_COST_CENTS);
    }
    if let Some(r) = patch.reorder_point {
        check_range(&mut errors, "reorderPoint", r, MAX_QUANTITY);
    }
    if let Some(r) = patch.reorder_qty {
        check_range(&mut errors, "reorderQty", r, MAX_QUANTITY);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Validation(errors))
    }
}

fn sku_taken(sku: &str) -> impl FnOnce() -> ModelError + '_ {
    move || ModelError::Conflict(format!("SKU '{sku}' is already used by another part"))
}

/// Adds a part to the catalog.
pub async fn create_part(tx: &mut Tx, tenant: &Tenant, new: NewPart) -> Result<Part> {
    let unit = new.unit.unwrap_or_else(|| "each".to_string());
    let fields = PartPatch {
        sku: Some(new.sku),
        name: Some(new.name),
        description: Some(new.description),
        unit: Some(unit),
        unit_cost_cents: new.unit_cost_cents,
        reorder_point: new.reorder_point,
        reorder_qty: new.reorder_qty,
    };
    validate_part(&fields)?;
    let sku = fields.sku.as_deref().unwrap_or_default().trim();
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO parts (id, organization_id, sku, name, description, unit, unit_cost_cents, reorder_point, reorder_qty)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(tenant.org_id)
    .bind(sku)
    .bind(fields.name.as_deref().unwrap_or_default().trim())
    .bind(fields.description.as_deref().unwrap_or_default())
    .bind(fields.unit.as_deref().unwrap_or_default().trim())
    .bind(fields.unit_cost_cents.unwrap_or(0))
    .bind(fields.reorder_point.unwrap_or(0))
    .bind(fields.reorder_qty.unwrap_or(0))
    .execute(&mut **tx)
    .await
    .map_err(|e| on_constraint(e, "parts_sku_key", sku_taken(sku)))?;
    let part = get_part(tx, id).await?;
    events::emit(tx, tenant, "part.created", Some(part.id), &part).await?;
    check_low_stock(tx, tenant, id).await?;
    Ok(part)
}

/// Changes a part's catalog fields.
pub async fn update_part(tx: &mut Tx, tenant: &Tenant, id: Uuid, patch: PartPatch) -> Result<Part> {
    validate_part(&patch)?;
    lock_part(tx, id).await?;
    let sku = patch.sku.as_deref().map(str::trim);
    sqlx::query(
        "UPDATE parts SET sku = COALESCE($2, sku), name = COALESCE($3, name),
                description = COALESCE($4, description), unit = COALESCE($5, unit),
                unit_cost_cents = COALESCE($6, unit_cost_cents), reorder_point = COALESCE($7, reorder_point),
                reorder_qty = COALESCE($8, reorder_qty), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(sku)
    .bind(patch.name.as_deref().map(str::trim))
    .bind(patch.description.as_deref())
    .bind(patch.unit.as_deref().map(str::trim))
    .bind(patch.unit_cost_cents)
    .bind(patch.reorder_point)
    .bind(patch.reorder_qty)
    .execute(&mut **tx)
    .await
    .map_err(|e| on_constraint(e, "parts_sku_key", sku_taken(sku.unwrap_or_default())))?;
    let part = get_part(tx, id).await?;
    events::emit(tx, tenant, "part.updated", Some(part.id), &part).await?;
    check_low_stock(tx, tenant, id).await?;
    Ok(part)
}

/// One part with its totals.
pub async fn get_part(tx: &mut Tx, id: Uuid) -> Result<Part> {
    sqlx::query_as::<_, Part>(&format!("{} WHERE p.id = $1", part_select()))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("part"))
}

/// One part with its stock per location.
pub async fn part_detail(tx: &mut Tx, id: Uuid) -> Result<PartDetail> {
    let part = get_part(tx, id).await?;
    let locations = sqlx::query_as::<_, LocationStock>(&format!(
        "SELECT loc.id AS location_id, loc.name AS location_name,
                COALESCE(l.on_hand, 0)::bigint AS on_hand, COALESCE(r.reserved, 0)::bigint AS reserved,
                (COALESCE(l.on_hand, 0) - COALESCE(r.reserved, 0))::bigint AS available
         FROM stock_locations loc
         LEFT JOIN stock_levels l ON l.location_id = loc.id AND l.part_id = $1
         LEFT JOIN (SELECT r.location_id, sum(r.quantity) AS reserved
                    FROM part_reservations r JOIN work_orders w ON w.id = r.work_order_id
                    WHERE r.part_id = $1 AND w.status IN {ACTIVE_WORK_ORDER}
                    GROUP BY r.location_id) r ON r.location_id = loc.id
         WHERE l.part_id IS NOT NULL OR r.reserved IS NOT NULL
         ORDER BY loc.name, loc.id"
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(PartDetail { part, locations })
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PartFilter {
    /// Search in SKU and name (case-insensitive substring).
    pub q: Option<String>,
    /// Only parts whose available stock is (true) or is not (false) below the reorder point.
    pub low_stock: Option<bool>,
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

/// Parts, newest first, filtered and paginated by cursor.
pub async fn list_parts(tx: &mut Tx, filter: &PartFilter) -> Result<Page<Part>> {
    let limit = page::limit(filter.limit)?;
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    let pattern = filter
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(like_pattern);
    let items = sqlx::query_as::<_, Part>(&format!(
        "{}
         WHERE ($1::text IS NULL OR p.sku ILIKE $1 OR p.name ILIKE $1)
           AND ($2::boolean IS NULL OR ((s.on_hand - s.reserved) < p.reorder_point) = $2)
           AND ($3::timestamptz IS NULL OR (p.created_at, p.id) < ($3, $4))
         ORDER BY p.created_at DESC, p.id DESC LIMIT $5",
        part_select()
    ))
    .bind(pattern)
    .bind(filter.low_stock)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    Ok(page::paginate(items, limit, |p| Cursor {
        at: p.created_at,
        id: p.id,
    }))
}

/// Adds a stock location (store room, van, shelf).
pub async fn create_location(tx: &mut Tx, tenant: &Tenant, new: NewStockLocation) -> Result<StockLocation> {
    let mut errors = Vec::new();
    check_text(&mut errors, "name", &new.name, 200);
    if new.description.len() > 20_000 {
        errors.push(FieldError::new("description", "must be at most 20000 bytes"));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let name = new.name.trim();
    let location = sqlx::query_as::<_, StockLocation>(
        "INSERT INTO stock_locations (id, organization_id, name, description) VALUES ($1, $2, $3, $4)
         RETURNING id, name, description, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(name)
    .bind(&new.description)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "stock_locations_name_key", || {
            ModelError::Conflict(format!("a stock location named '{name}' already exists"))
        })
    })?;
    events::emit(tx, tenant, "stock_location.created", Some(location.id), &location).await?;
    Ok(location)
}

/// Every stock location, by name.
pub async fn list_locations(tx: &mut Tx) -> Result<Vec<StockLocation>> {
    Ok(sqlx::query_as::<_, StockLocation>(
        "SELECT id, name, description, created_at FROM stock_locations ORDER BY name, id",
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn get_location(tx: &mut Tx, id: Uuid) -> Result<StockLocation> {
    sqlx::query_as::<_, StockLocation>(
        "SELECT id, name, description, created_at FROM stock_locations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("stock location"))
}

/// Locks the part's row until the transaction ends; every stock change of
/// the part takes this lock first. Returns the part's unit cost.
async fn lock_part(tx: &mut Tx, id: Uuid) -> Result<i64> {
    sqlx::query_scalar::<_, i64>("SELECT unit_cost_cents FROM parts WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("part"))
}

/// A referenced stock location, or a validation error naming the field.
async fn location_ref(tx: &mut Tx, id: Uuid) -> Result<StockLocation> {
    get_location(tx, id)
        .await
        .referenced("locationId", "no such stock location")
}

/// A referenced work order's (code, status), or a validation error.
async fn work_order_ref(tx: &mut Tx, id: Uuid) -> Result<(String, String)> {
    sqlx::query_as::<_, (String, String)>("SELECT code, status FROM work_orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ModelError::invalid("workOrderId", "no such work order"))
}

/// On hand at a location (None when the part never was there), row locked.
async fn on_hand_at(tx: &mut Tx, part_id: Uuid, location_id: Uuid) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT on_hand FROM stock_levels WHERE part_id = $1 AND location_id = $2 FOR UPDATE",
    )
    .bind(part_id)
    .bind(location_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Reserved for active work orders at a location, and of that, for `work_order_id`.
async fn reserved_at(
    tx: &mut Tx,
    part_id: Uuid,
    location_id: Uuid,
    work_order_id: Option<Uuid>,
) -> Result<(i64, i64)> {
    Ok(sqlx::query_as::<_, (i64, i64)>(&format!(
        "SELECT COALESCE(sum(r.quantity), 0)::bigint,
                COALESCE(sum(r.quantity) FILTER (WHERE r.work_order_id = $3), 0)::bigint
         FROM part_reservations r JOIN work_orders w ON w.id = r.work_order_id
         WHERE r.part_id = $1 AND r.location_id = $2 AND w.status IN {ACTIVE_WORK_ORDER}"
    ))
    .bind(part_id)
    .bind(location_id)
    .bind(work_order_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Records a movement in the ledger and moves the on-hand figure with it,
/// refusing (with nothing changed) what the stock cannot cover: issuing or
/// adjusting away more than is on hand, issuing stock reserved for other
/// work orders, returning more than the work order holds.
pub async fn record(tx: &mut Tx, tenant: &Tenant, part_id: Uuid, new: NewMovement) -> Result<StockMovement> {
    new.validate()?;
    let part_cost = lock_part(tx, part_id).await?;
    let location = location_ref(tx, new.location_id).await?;
    let work_order = match new.work_order_id {
        Some(id) => Some(work_order_ref(tx, id).await?),
        None => None,
    };
    let level = on_hand_at(tx, part_id, new.location_id).await?;
    let (has_level, on_hand) = (level.is_some(), level.unwrap_or(0));
    let signed = new.signed();
    let short = |on_hand: i64| ModelError::Conflict(format!("only {on_hand} on hand at {}", location.name));
    let unit_cost = match new.kind {
        MovementKind::Receive => new.unit_cost_cents.unwrap_or(part_cost),
        MovementKind::Adjust => {
            if on_hand + signed < 0 {
                return Err(short(on_hand));
            }
            part_cost
        }
        MovementKind::Issue => {
            let (code, status) = work_order
                .as_ref()
                .map(|(c, s)| (c.as_str(), s.as_str()))
                .unwrap_or_default();
            if matches!(status, "cancelled" | "verified") {
                return Err(ModelError::Conflict(format!(
                    "{code} is {status}; parts cannot be issued to it"
                )));
            }
            if new.quantity > on_hand {
                return Err(short(on_hand));
            }
            let (reserved, own) = reserved_at(tx, part_id, new.location_id, new.work_order_id).await?;
            let others = reserved - own;
            if new.quantity > on_hand - others {
                return Err(ModelError::Conflict(format!(
                    "only {} available at {}: {others} reserved for other work orders",
                    (on_hand - others).max(0),
                    location.name
                )));
            }
            part_cost
        }
        MovementKind::Return => {
            let code = work_order.as_ref().map(|(c, _)| c.as_str()).unwrap_or_default();
            let (held, cost) = sqlx::query_as::<_, (i64, i64)>(
                "SELECT COALESCE(sum(-quantity), 0)::bigint, COALESCE(sum(-quantity * unit_cost_cents), 0)::bigint
                 FROM stock_movements WHERE work_order_id = $1 AND part_id = $2 AND kind IN ('issue', 'return')",
            )
            .bind(new.work_order_id)
            .bind(part_id)
            .fetch_one(&mut **tx)
            .await?;
            if new.quantity > held {
                return Err(ModelError::Conflict(format!(
                    "only {} of this part issued to {code} and not returned",
                    held.max(0)
                )));
            }
            // Credited at the average cost of what the work order holds,
            // rounded down so its parts cost never goes negative.
            cost.max(0) / held
        }
    };
    // The level row is locked (or absent, and then only a positive movement
    // got this far). An upsert would not do: the CHECK applies to the row
    // proposed for insertion, before the conflict is seen.
    let level = if has_level {
        sqlx::query_scalar::<_, i64>(
            "UPDATE stock_levels SET on_hand = on_hand + $3, updated_at = now()
             WHERE part_id = $1 AND location_id = $2 RETURNING on_hand",
        )
        .bind(part_id)
        .bind(new.location_id)
        .bind(signed)
        .fetch_one(&mut **tx)
        .await
    } else {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO stock_levels (organization_id, part_id, location_id, on_hand) VALUES ($1, $2, $3, $4)
             RETURNING on_hand",
        )
        .bind(tenant.org_id)
        .bind(part_id)
        .bind(new.location_id)
        .bind(signed)
        .fetch_one(&mut **tx)
        .await
    };
    let on_hand_after =
        level.map_err(|e| on_constraint(e, "stock_levels_on_hand_check", || short(on_hand)))?;
    let row = sqlx::query_as::<_, MovementRow>(&format!(
        "INSERT INTO stock_movements (id, organization_id, part_id, location_id, kind, quantity, unit_cost_cents,
                                      work_order_id, note, on_hand_after, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {MOVEMENT_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(part_id)
    .bind(new.location_id)
    .bind(new.kind.as_str())
    .bind(signed)
    .bind(unit_cost)
    .bind(new.work_order_id)
    .bind(new.note.trim())
    .bind(on_hand_after)
    .bind(tenant.actor.user_id())
    .fetch_one(&mut **tx)
    .await?;
    let movement = StockMovement::try_from(row)?;
    if new.kind == MovementKind::Issue {
        consume_reservation(tx, part_id, new.location_id, new.work_order_id, new.quantity).await?;
    }
    events::emit(tx, tenant, "stock.moved", Some(part_id), &movement).await?;
    check_low_stock(tx, tenant, part_id).await?;
    Ok(movement)
}

/// Issuing to a work order uses up its reservation at that location first.
async fn consume_reservation(
    tx: &mut Tx,
    part_id: Uuid,
    location_id: Uuid,
    work_order_id: Option<Uuid>,
    quantity: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM part_reservations WHERE work_order_id = $1 AND part_id = $2 AND location_id = $3 AND quantity <= $4")
        .bind(work_order_id)
        .bind(part_id)
        .bind(location_id)
        .bind(quantity)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE part_reservations SET quantity = quantity - $4, updated_at = now()
         WHERE work_order_id = $1 AND part_id = $2 AND location_id = $3 AND quantity > $4",
    )
    .bind(work_order_id)
    .bind(part_id)
    .bind(location_id)
    .bind(quantity)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stock arrives at a location.
pub async fn receive(tx: &mut Tx, tenant: &Tenant, part_id: Uuid, r: ReceiveStock) -> Result<StockMovement> {
    record(tx, tenant, part_id, r.into()).await
}

/// Stock leaves a location for a work order (consuming its reservation).
pub async fn issue(tx: &mut Tx, tenant: &Tenant, part_id: Uuid, r: IssueStock) -> Result<StockMovement> {
    record(tx, tenant, part_id, r.into()).await
}

/// A count correction at a location.
pub async fn adjust(tx: &mut Tx, tenant: &Tenant, part_id: Uuid, r: AdjustStock) -> Result<StockMovement> {
    record(tx, tenant, part_id, r.into()).await
}

/// Unused stock comes back from a work order.
pub async fn return_stock(
    tx: &mut Tx,
    tenant: &Tenant,
    part_id: Uuid,
    r: ReturnStock,
) -> Result<StockMovement> {
    record(tx, tenant, part_id, r.into()).await
}

/// Sends `part.low_stock` when available stock has just fallen below the
/// reorder point, and re-arms once it is back at or above it. Runs under
/// the part's row lock, so a crossing is reported exactly once.
async fn check_low_stock(tx: &mut Tx, tenant: &Tenant, part_id: Uuid) -> Result<()> {
    let part = get_part(tx, part_id).await?;
    let alerted = sqlx::query_scalar::<_, bool>("SELECT low_stock_alerted FROM parts WHERE id = $1")
        .bind(part_id)
        .fetch_one(&mut **tx)
        .await?;
    if part.low_stock == alerted {
        return Ok(());
    }
    sqlx::query("UPDATE parts SET low_stock_alerted = $2 WHERE id = $1")
        .bind(part_id)
        .bind(part.low_stock)
        .execute(&mut **tx)
        .await?;
    if part.low_stock {
        let event = LowStock {
            part_id,
            sku: &part.sku,
            name: &part.name,
            on_hand: part.on_hand,
            reserved: part.reserved,
            available: part.available,
            reorder_point: part.reorder_point,
            reorder_qty: part.reorder_qty,
        };
        events::emit(tx, tenant, "part.low_stock", Some(part_id), &event).await?;
        tracing::info!(part_id = %part_id, sku = %part.sku, available = part.available, "part low on stock");
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MovementFilter {
    pub location_id: Option<Uuid>,
    pub work_order_id: Option<Uuid>,
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// A part's ledger, newest first.
pub async fn list_movements(
    tx: &mut Tx,
    part_id: Uuid,
    filter: &MovementFilter,
) -> Result<Page<StockMovement>> {
    let limit = page::limit(filter.limit)?;
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    get_part(tx, part_id).await?;
    let rows = sqlx::query_as::<_, MovementRow>(&format!(
        "SELECT {MOVEMENT_COLUMNS} FROM stock_movements
         WHERE part_id = $1
           AND ($2::uuid IS NULL OR location_id = $2)
           AND ($3::uuid IS NULL OR work_order_id = $3)
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(part_id)
    .bind(filter.location_id)
    .bind(filter.work_order_id)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    let items = rows
        .into_iter()
        .map(StockMovement::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(page::paginate(items, limit, |m| Cursor {
        at: m.created_at,
        id: m.id,
    }))
}

const RESERVATION_SELECT: &str =
    "SELECT r.id, r.work_order_id, r.part_id, p.sku, p.name AS part_name, r.location_id,
            loc.name AS location_name, r.quantity, r.created_at, r.updated_at
     FROM part_reservations r
     JOIN parts p ON p.id = r.part_id
     JOIN stock_locations loc ON loc.id = r.location_id";

/// Sets stock aside for a work order (adding to what it already reserved
/// there), refusing more than is available at the location.
pub async fn reserve(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    new: NewReservation,
) -> Result<Reservation> {
    if !(1..=MAX_QUANTITY).contains(&new.quantity) {
        return Err(ModelError::invalid(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    let (code, status) =
        sqlx::query_as::<_, (String, String)>("SELECT code, status FROM work_orders WHERE id = $1")
            .bind(work_order_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(ModelError::NotFound("work order"))?;
    lock_part(tx, new.part_id)
        .await
        .referenced("partId", "no such part")?;
    let location = location_ref(tx, new.location_id).await?;
    if !matches!(status.as_str(), "open" | "in_progress" | "on_hold") {
        return Err(ModelError::Conflict(format!(
            "{code} is {status}; only open, in-progress or on-hold work orders can reserve parts"
        )));
    }
    let on_hand = on_hand_at(tx, new.part_id, new.location_id).await?.unwrap_or(0);
    let (reserved, _) = reserved_at(tx, new.part_id, new.location_id, None).await?;
    let available = on_hand - reserved;
    if new.quantity > available {
        return Err(ModelError::Conflict(format!(
            "only {} available at {} ({on_hand} on hand, {reserved} reserved)",
            available.max(0),
            location.name
        )));
    }
    let id = sqlx::query_scalar::<_, Uuid>(
        "INSERT INTO part_reservations (id, organization_id, work_order_id, part_id, location_id, quantity, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (work_order_id, part_id, location_id)
         DO UPDATE SET quantity = part_reservations.quantity + EXCLUDED.quantity, updated_at = now()
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(work_order_id)
    .bind(new.part_id)
    .bind(new.location_id)
    .bind(new.quantity)
    .bind(tenant.actor.user_id())
    .fetch_one(&mut **tx)
    .await?;
    let reservation = get_reservation(tx, id).await?;
    events::emit(tx, tenant, "part.reserved", Some(work_order_id), &reservation).await?;
    check_low_stock(tx, tenant, new.part_id).await?;
    Ok(reservation)
}

async fn get_reservation(tx: &mut Tx, id: Uuid) -> Result<Reservation> {
    sqlx::query_as::<_, Reservation>(&format!("{RESERVATION_SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("reservation"))
}

/// Releases a work order's reservation, making its stock available again.
pub async fn release_reservation(
    tx: &mut Tx,
    tenant: &Tenant,
    work_order_id: Uuid,
    reservation_id: Uuid,
) -> Result<Reservation> {
    let found = get_reservation(tx, reservation_id).await?;
    if found.work_order_id != work_order_id {
        return Err(ModelError::NotFound("reservation"));
    }
    lock_part(tx, found.part_id).await?;
    // An issue may have consumed it while we waited for the lock.
    let reservation = get_reservation(tx, reservation_id).await?;
    sqlx::query("DELETE FROM part_reservations WHERE id = $1")
        .bind(reservation_id)
        .execute(&mut **tx)
        .await?;
    events::emit(
        tx,
        tenant,
        "part.reservation_released",
        Some(work_order_id),
        &reservation,
    )
    .await?;
    check_low_stock(tx, tenant, reservation.part_id).await?;
    Ok(reservation)
}

/// The parts cost of a work order in cents: the value of what was issued to
/// it minus the value of what came back.
pub async fn work_order_cost(tx: &mut Tx, work_order_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(sum(-quantity * unit_cost_cents), 0)::bigint
         FROM stock_movements WHERE work_order_id = $1 AND kind IN ('issue', 'return')",
    )
    .bind(work_order_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// A work order's issued and reserved parts and their cost.
pub async fn work_order_parts(tx: &mut Tx, work_order_id: Uuid) -> Result<WorkOrderParts> {
    crate::work_orders::get(tx, work_order_id).await?;
    let issued = sqlx::query_as::<_, IssuedPart>(
        "SELECT m.part_id, p.sku, p.name, p.unit,
                COALESCE(sum(-m.quantity) FILTER (WHERE m.kind = 'issue'), 0)::bigint AS issued,
                COALESCE(sum(m.quantity) FILTER (WHERE m.kind = 'return'), 0)::bigint AS returned,
                COALESCE(sum(-m.quantity), 0)::bigint AS net_quantity,
                COALESCE(sum(-m.quantity * m.unit_cost_cents), 0)::bigint AS cost_cents
         FROM stock_movements m JOIN parts p ON p.id = m.part_id
         WHERE m.work_order_id = $1 AND m.kind IN ('issue', 'return')
         GROUP BY m.part_id, p.sku, p.name, p.unit
         ORDER BY p.sku",
    )
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?;
    let reserved = sqlx::query_as::<_, Reservation>(&format!(
        "{RESERVATION_SELECT} WHERE r.work_order_id = $1 ORDER BY p.sku, loc.name"
    ))
    .bind(work_order_id)
    .fetch_all(&mut **tx)
    .await?;
    let total_cost_cents = work_order_cost(tx, work_order_id).await?;
    Ok(WorkOrderParts {
        work_order_id,
        issued,
        reserved,
        total_cost_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movement(kind: MovementKind, quantity: i64, wo: bool) -> NewMovement {
        NewMovement {
            kind,
            location_id: Uuid::nil(),
            quantity,
            unit_cost_cents: None,
            work_order_id: wo.then(Uuid::nil),
            note: if kind == MovementKind::Adjust {
                "count".into()
            } else {
                String::new()
            },
        }
    }

    fn fields(e: Result<()>) -> Vec<String> {
        match e {
            Err(ModelError::Validation(v)) => v.into_iter().map(|f| f.field).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn movement_validation() {
        assert!(movement(MovementKind::Receive, 5, false).validate().is_ok());
        assert!(movement(MovementKind::Issue, 5, true).validate().is_ok());
        assert!(movement(MovementKind::Adjust, -5, false).validate().is_ok());
        assert!(movement(MovementKind::Return, 1, true).validate().is_ok());
        assert_eq!(
            fields(movement(MovementKind::Receive, 0, false).validate()),
            ["quantity"]
        );
        assert_eq!(
            fields(movement(MovementKind::Issue, -1, true).validate()),
            ["quantity"]
        );
        assert_eq!(
            fields(movement(MovementKind::Adjust, 0, false).validate()),
            ["quantity"]
        );
        assert_eq!(
            fields(movement(MovementKind::Issue, 1, false).validate()),
            ["workOrderId"]
        );
        assert_eq!(
            fields(movement(MovementKind::Receive, 1, true).validate()),
            ["workOrderId"]
        );
        let mut no_reason = movement(MovementKind::Adjust, 3, false);
        no_reason.note = "  ".into();
        assert_eq!(fields(no_reason.validate()), ["note"]);
        let mut priced_issue = movement(MovementKind::Issue, 1, true);
        priced_issue.unit_cost_cents = Some(10);
        assert_eq!(fields(priced_issue.validate()), ["unitCostCents"]);
        assert_eq!(movement(MovementKind::Issue, 4, true).signed(), -4);
        assert_eq!(movement(MovementKind::Adjust, -4, false).signed(), -4);
    }

    #[test]
    fn kind_roundtrip() {
        for k in MovementKind::ALL {
            assert_eq!(k.as_str().parse::<MovementKind>().ok(), Some(k));
        }
        assert!("steal".parse::<MovementKind>().is_err());
    }
}
