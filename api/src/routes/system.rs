//! Probes (`/healthz`, `/readyz`), the OpenAPI document, the hint at `/`,
//! and the 404 for unknown routes.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// `/api/v1` routes of this module.
pub fn api_router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// A probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Probe {
    /// ok | ready | unavailable
    pub status: &'static str,
    /// When unavailable: what is missing (`database`, or `broker` when
    /// ingest runs in this process and is not connected to MQTT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "system", responses((status = 200, body = Probe)))]
pub async fn healthz() -> axum::Json<Probe> {
    axum::Json(Probe {
        status: "ok",
        reason: None,
    })
}

/// Readiness: the database answers, and, when ingest runs in this process,
/// it is connected to the MQTT broker.
#[utoipa::path(
    get, path = "/readyz", operation_id = "readyz", tag = "system",
    responses((status = 200, body = Probe), (status = 503, body = Probe))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Probe>) {
    let ingest = state.metrics.sources().ingest.as_ref();
    let missing = if !state.db.ping().await {
        Some("database")
    } else if ingest.is_some_and(|s| !s.is_connected()) {
        Some("broker")
    } else {
        None
    };
    match missing {
        None => (
            StatusCode::OK,
            axum::Json(Probe {
                status: "ready",
                reason: None,
            }),
        ),
        Some(reason) => {
            tracing::warn!(reason, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Probe {
                    status: "unavailable",
                    reason: Some(reason),
                }),
            )
        }
    }
}

/// This document.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", operation_id = "getOpenApi", tag = "system",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        crate::openapi::openapi()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}"))
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}

/// What `/` says when no web UI is installed.
pub async fn root_hint() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "name": "MaintAInPro API",
        "version": env!("CARGO_PKG_VERSION"),
        "openapi": "/api/v1/openapi.json",
        "health": "/healthz",
        "ready": "/readyz",
    }))
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}
