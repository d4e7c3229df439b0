//! CSV exports of work orders and equipment, for spreadsheets and audits.
//! Cells that a spreadsheet would run as a formula are prefixed with `'`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maintainpro_models::equipment;
use maintainpro_models::work_orders::{self, WorkOrderFilter};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/work-orders/export.csv", get(work_orders_csv))
        .route("/api/v1/equipment/export.csv", get(equipment_csv))
}

/// Neutralizes spreadsheet formulas (CSV injection).
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_response(filename: &str, rows: Vec<Vec<String>>) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r.iter().map(|c| cell(c)))
            .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Work orders matching the list filters (every page), as CSV.
#[utoipa::path(
    get, path = "/api/v1/work-orders/export.csv", operation_id = "exportWorkOrders", tag = "work-orders",
    params(WorkOrderFilter), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = ErrorEnvelope))
)]
pub async fn work_orders_csv(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(mut filter): Query<WorkOrderFilter>,
) -> Result<Response, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let mut rows = vec![[
        "code",
        "title",
        "kind",
        "status",
        "priority",
        "source",
        "equipment_id",
        "assigned_to",
        "assignees",
        "problem_code",
        "cause_code",
        "remedy_code",
        "due_at",
        "created_at",
        "completed_at",
        "occurrences",
    ]
    .map(String::from)
    .to_vec()];
    filter.limit = Some(500);
    loop {
        let page = work_orders::list(&mut tx, &auth.tenant, &filter).await?;
        for w in page.items {
            rows.push(vec![
                w.code,
                w.title,
                w.kind.to_string(),
                w.status.to_string(),
                w.priority.to_string(),
                w.source.to_string(),
                opt(w.equipment_id),
                opt(w.assigned_to),
                w.assignees
                    .iter()
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                w.problem_code.unwrap_or_default(),
                w.cause_code.unwrap_or_default(),
                w.remedy_code.unwrap_or_default(),
                opt(w.due_at.map(|t| t.to_rfc3339())),
                w.created_at.to_rfc3339(),
                opt(w.completed_at.map(|t| t.to_rfc3339())),
                w.occurrence_count.to_string(),
            ]);
        }
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    tx.commit().await?;
    csv_response("work-orders.csv", rows)
}

/// Every asset, as CSV.
#[utoipa::path(
    get, path = "/api/v1/equipment/export.csv", operation_id = "exportEquipment", tag = "equipment",
    security(("bearer" = ["equipment:view"])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = ErrorEnvelope))
)]
pub async fn equipment_csv(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let all = equipment::all(&mut tx).await?;
    tx.commit().await?;
    let mut rows = vec![[
        "asset_tag",
        "name",
        "parent_id",
        "criticality",
        "status",
        "location",
        "id",
    ]
    .map(String::from)
    .to_vec()];
    for e in all {
        rows.push(vec![
            e.asset_tag,
            e.name,
            opt(e.parent_id),
            e.criticality,
            e.status,
            e.location,
            e.id.to_string(),
        ]);
    }
    csv_response("equipment.csv", rows)
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_neutralized() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("Pump P-101"), "Pump P-101");
    }
}
