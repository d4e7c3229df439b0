//! Work orders: list (filters, search, cursor pages), one (with its anomaly),
//! its status history, create, edit, assignees, and status changes through
//! the models' state machine (which also holds what completing needs).

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::Router;
use maintainpro_models::anomalies::{self, Anomaly};
use maintainpro_models::auth::Permission;
use maintainpro_models::auto_policy::AutoPolicy;
use maintainpro_models::work_orders::{
    self, AssigneeSet, CreateWorkOrder, Status, StatusStep, Verdict, WorkOrder, WorkOrderFilter,
    WorkOrderPatch,
};
use maintainpro_models::ModelError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// Longest note accepted with a status change.
const MAX_NOTE_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/work-orders", get(list).post(create))
        .route("/api/v1/work-orders/statuses", get(statuses))
        .route("/api/v1/work-orders/{id}", get(get_one).patch(update))
        .route("/api/v1/work-orders/{id}/status", post(change_status))
        .route("/api/v1/work-orders/{id}/history", get(history))
        .route("/api/v1/work-orders/{id}/assignees", put(set_assignees))
}

/// A work order with the anomaly that raised it (when the caller may see anomalies).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkOrderDetail {
    #[serde(flatten)]
    pub work_order: WorkOrder,
    pub anomaly: Option<Anomaly>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusChange {
    pub status: Status,
    /// Why, for the history.
    pub note: Option<String>,
    /// Auto work orders, with `status: completed` only: what the anomaly
    /// turned out to be. Required to complete an auto work order (here or
    /// set earlier with PATCH); `false_alarm` needs no failure codes and
    /// widens the detector's thresholds on that sensor.
    pub verdict: Option<Verdict>,
}

/// One status of the work-order status machine and where it may go next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    pub status: Status,
    /// The statuses `POST /work-orders/{id}/status` accepts from this one.
    pub next: Vec<Status>,
    /// Still open work (counts for deduplication and overdue checks).
    pub active: bool,
}

/// The work-order status machine (`models::work_orders::Status`), so that
/// clients such as the web board offer only the moves the API accepts.
#[utoipa::path(
    get, path = "/api/v1/work-orders/statuses", operation_id = "workOrderStatuses", tag = "work-orders",
    security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<StatusInfo>>))
)]
pub async fn statuses() -> ApiResponse<Vec<StatusInfo>> {
    let machine = Status::ALL
        .iter()
        .map(|&status| StatusInfo {
            status,
            next: Status::ALL
                .iter()
                .copied()
                .filter(|&to| status.can_become(to))
                .collect(),
            active: status.is_active(),
        })
        .collect();
    ApiResponse::ok(machine)
}

/// Work orders, newest first; `meta.nextCursor` pages on.
#[utoipa::path(
    get, path = "/api/v1/work-orders", operation_id = "listWorkOrders", tag = "work-orders",
    params(WorkOrderFilter), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<WorkOrder>>), (status = 400, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<WorkOrderFilter>,
) -> Result<ApiResponse<Vec<WorkOrder>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = work_orders::list(&mut tx, &auth.tenant, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// One work order.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}", operation_id = "getWorkOrder", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<WorkOrderDetail>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<WorkOrderDetail>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let work_order = work_orders::get_visible(&mut tx, &auth.tenant, id).await?;
    let anomaly = match work_order.anomaly_id {
        Some(anomaly_id) if auth.can(Permission::AnomaliesView) => {
            match anomalies::get(&mut tx, anomaly_id).await {
                Ok(a) => Some(a),
                Err(ModelError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            }
        }
        _ => None,
    };
    tx.commit().await?;
    Ok(ApiResponse::ok(WorkOrderDetail { work_order, anomaly }))
}

/// A work order's status steps, oldest first: from which status to which,
/// who and why. Visible exactly when the work order is (a requester: only
/// their own).
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/history", operation_id = "workOrderHistory", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<StatusStep>>), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<StatusStep>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let steps = work_orders::status_history(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(steps))
}

/// Creates a work order (status open, source manual, requested by the
/// caller), optionally with assignees (needs `work_orders:assign`), a
/// checklist and failure codes. Requesters may not set priority or assignees.
#[utoipa::path(
    post, path = "/api/v1/work-orders", operation_id = "createWorkOrder", tag = "work-orders",
    request_body = CreateWorkOrder, security(("bearer" = ["work_orders:create"])),
    responses(
        (status = 201, body = Envelope<WorkOrder>),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<CreateWorkOrder>,
) -> Result<ApiResponse<WorkOrder>, ApiError> {
    if new.assigns() {
        auth.require(Permission::WorkOrdersAssign)?;
    }
    let (new, details) = new.into_parts();
    let mut tx = state.tenant_tx(&auth).await?;
    let wo = work_orders::create_detailed(&mut tx, &auth.tenant, new, details).await?;
    tx.commit().await?;
    tracing::info!(work_order_id = %wo.id, code = %wo.code, "work order created");
    Ok(ApiResponse::created(wo))
}

/// Edits a work order: title, description, kind, priority, due date,
/// failure codes (`null` clears the due date or a code) and, for auto work
/// orders, the verdict (`true_alarm` | `false_alarm`; final once completed:
/// 409). Verified and cancelled work orders are final (409); a completed one
/// may be corrected only so that it still meets the completion requirements (422).
#[utoipa::path(
    patch, path = "/api/v1/work-orders/{id}", operation_id = "updateWorkOrder", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body = WorkOrderPatch, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 200, body = Envelope<WorkOrder>),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(patch): Json<WorkOrderPatch>,
) -> Result<ApiResponse<WorkOrder>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let wo = work_orders::update(&mut tx, &auth.tenant, id, patch).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(wo))
}

/// Replaces who is assigned to a work order (open, in progress or on hold).
/// The first user is the lead (`assigned_to`); every user must be an active
/// member of the organization (422 naming `userIds[i]` otherwise).
#[utoipa::path(
    put, path = "/api/v1/work-orders/{id}/assignees", operation_id = "setWorkOrderAssignees", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body = AssigneeSet, security(("bearer" = ["work_orders:assign"])),
    responses(
        (status = 200, body = Envelope<WorkOrder>),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn set_assignees(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(set): Json<AssigneeSet>,
) -> Result<ApiResponse<WorkOrder>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let wo = work_orders::set_assignees(&mut tx, &auth.tenant, id, set).await?;
    tx.commit().await?;
    tracing::info!(work_order_id = %wo.id, assignees = wo.assignees.len(), "work order assignees set");
    Ok(ApiResponse::ok(wo))
}

/// Moves a work order to another status, as the status machine allows.
/// Completing needs what the work order's kind requires (every kind: required
/// checklist items done, no running downtime; corrective and emergency:
/// problem, cause and remedy codes; inspection: every checklist item done
/// and a remedy code; auto work orders: a `verdict`, given in this body or
/// set before with PATCH — with `false_alarm` no failure codes) — otherwise
/// 422 VALIDATION_ERROR listing the missing fields (`verdict`, `problemCode`,
/// `checklist[2]`, `downtime[0]` …) and nothing changes. An auto work order
/// completed as a true alarm may be verified only after its quiet period
/// (the signal must stay normal for a while after the repair; analytics
/// verifies it then): 409 CONFLICT before.
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/status", operation_id = "changeWorkOrderStatus", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body = StatusChange, security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 200, body = Envelope<WorkOrder>),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "INVALID_TRANSITION, or CONFLICT: verifying an auto work order before its quiet period", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR, e.g. what completing still needs", body = ErrorEnvelope)
    )
)]
pub async fn change_status(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(change): Json<StatusChange>,
) -> Result<ApiResponse<WorkOrder>, ApiError> {
    let note = change.note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(
            ModelError::invalid("note", format!("must be at most {MAX_NOTE_CHARS} characters")).into(),
        );
    }
    let mut tx = state.tenant_tx(&auth).await?;
    let wo = work_orders::transition_with(
        &mut tx,
        &auth.tenant,
        id,
        change.status,
        note.trim(),
        change.verdict,
        &AutoPolicy::default(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(work_order_id = %wo.id, status = %wo.status, "work order status changed");
    Ok(ApiResponse::ok(wo))
}
