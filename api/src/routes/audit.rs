//! The audit log, for administrators.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::audit::{self, AuditEntry, AuditFilter};

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit-log", get(list))
}

/// Who changed what, newest first; `meta.nextCursor` pages on.
#[utoipa::path(
    get, path = "/api/v1/audit-log", operation_id = "listAuditLog", tag = "audit",
    params(AuditFilter), security(("bearer" = ["audit:view"])),
    responses((status = 200, body = Envelope<Vec<AuditEntry>>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<AuditFilter>,
) -> Result<ApiResponse<Vec<AuditEntry>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = audit::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}
