//! Maintenance reports (MTBF, MTTR, availability, backlog, cost per asset).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::reports::{self, ReliabilityReport, ReportRange};

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/reports/reliability", get(reliability))
}

/// Per-asset MTBF, MTTR, availability, open/overdue work, labour and parts
/// cost over `[from, to)` (default the last 30 days).
#[utoipa::path(
    get, path = "/api/v1/reports/reliability", operation_id = "reliabilityReport", tag = "reports",
    params(ReportRange), security(("bearer" = ["reports:view"])),
    responses((status = 200, body = Envelope<ReliabilityReport>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn reliability(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(range): Query<ReportRange>,
) -> Result<ApiResponse<ReliabilityReport>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let report = reports::reliability(&mut tx, &range).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(report))
}
