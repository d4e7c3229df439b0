//! Detector replay: what a detector setting would have raised over stored
//! history, without writing anything.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use maintainpro_analytics::replay::{self, ReplayReport, ReplayRequest};
use maintainpro_analytics::{AnalyticsError, DetectorConfig};
use maintainpro_models::{FieldError, ModelError};

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Json;
use crate::state::AppState;

/// Longest range one replay may cover.
const MAX_DAYS: i64 = 92;
/// Most sensors per replay.
const MAX_SENSORS: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/analytics/replay", post(run))
}

fn check(req: &ReplayRequest) -> Result<(), ModelError> {
    let mut errors = Vec::new();
    if req.sensor_ids.is_empty() || req.sensor_ids.len() > MAX_SENSORS {
        errors.push(FieldError::new(
            "sensorIds",
            format!("give 1 to {MAX_SENSORS} sensors"),
        ));
    }
    if req.to <= req.from {
        errors.push(FieldError::new("to", "must be after `from`"));
    } else if req.to - req.from > chrono::Duration::days(MAX_DAYS) {
        errors.push(FieldError::new(
            "to",
            format!("a replay covers at most {MAX_DAYS} days"),
        ));
    }
    let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
    if !positive(req.z_threshold) {
        errors.push(FieldError::new("zThreshold", "must be a positive number"));
    }
    if !req
        .probability_threshold
        .is_none_or(|p| p.is_finite() && p > 0.0 && p < 1.0)
    {
        errors.push(FieldError::new("probabilityThreshold", "must be between 0 and 1"));
    }
    if !positive(req.threshold_scale) {
        errors.push(FieldError::new("thresholdScale", "must be a positive number"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Validation(errors))
    }
}

/// Replays the live detector (or a variant of its setting) over stored
/// readings and answers what it would have raised: anomaly episodes and the
/// kind of work order each would ask for. Nothing is written — the replay
/// runs in a read-only transaction.
#[utoipa::path(
    post, path = "/api/v1/analytics/replay", operation_id = "replayDetector", tag = "anomalies",
    request_body = ReplayRequest, security(("bearer" = ["anomalies:view"])),
    responses((status = 200, body = Envelope<ReplayReport>), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn run(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<ReplayRequest>,
) -> Result<ApiResponse<ReplayReport>, ApiError> {
    check(&req)?;
    let mut tx = state.tenant_tx(&auth).await?;
    let report = replay::replay(&mut tx, DetectorConfig::default(), &req)
        .await
        .map_err(|e| match e {
            AnalyticsError::Model(m) => ApiError::Model(m),
            AnalyticsError::Database(d) => ApiError::from(d),
        })?;
    tx.rollback().await?;
    Ok(ApiResponse::ok(report))
}
