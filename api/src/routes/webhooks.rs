//! Webhooks: register (the signing secret is returned once), list, delete,
//! and the delivery log of one webhook. Targets on loopback or private
//! networks are refused unless the configuration allows them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use maintainpro_models::webhooks::{self, Delivery, NewWebhook, Webhook};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::webhook_delivery::{check_target, generate_secret};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route("/api/v1/webhooks/{id}", axum::routing::delete(delete))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// http(s) URL receiving POSTed events.
    pub url: String,
    /// Event kinds to deliver (e.g. `work_order.created`); empty or absent: all.
    #[serde(default)]
    pub event_kinds: Vec<String>,
}

/// A new webhook with its signing secret, shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` + base64 key; sign check: base64 HMAC-SHA256 of
    /// `{webhook-id}.{webhook-timestamp}.{body}` (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many, newest first (1–500, default 100).
    pub limit: Option<i64>,
}

/// The organization's webhooks.
#[utoipa::path(
    get, path = "/api/v1/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<Vec<Webhook>>), (status = 403, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<ApiResponse<Vec<Webhook>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let hooks = webhooks::list(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(hooks))
}

/// Registers a webhook; the response carries the signing secret (only here).
#[utoipa::path(
    post, path = "/api/v1/webhooks", operation_id = "createWebhook", tag = "webhooks",
    request_body = CreateWebhook, security(("bearer" = ["webhooks:manage"])),
    responses((status = 201, body = Envelope<CreatedWebhook>), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateWebhook>,
) -> Result<ApiResponse<CreatedWebhook>, ApiError> {
    let target = check_target(&body.url, state.config.allow_private_webhook_targets)
        .await
        .map_err(|e| ApiError::Validation {
            message: format!("webhook url refused: {e}"),
            details: vec![maintainpro_models::FieldError::new("url", e.to_string())],
        })?;
    let secret = generate_secret();
    let new = NewWebhook {
        url: target.url.to_string(),
        secret: secret.clone(),
        event_kinds: body.event_kinds,
    };
    let mut tx = state.tenant_tx(&auth).await?;
    let webhook = webhooks::create(&mut tx, &auth.tenant, &new).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(CreatedWebhook { webhook, secret }))
}

/// Deletes a webhook and its delivery log.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id")), security(("bearer" = ["webhooks:manage"])),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    webhooks::delete(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's deliveries, newest first: attempts, status, last answer.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "webhook id"), DeliveriesQuery), security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = Envelope<Vec<Delivery>>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<ApiResponse<Vec<Delivery>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation {
            message: "limit must be between 1 and 500".into(),
            details: vec![maintainpro_models::FieldError::new(
                "limit",
                "must be between 1 and 500",
            )],
        });
    }
    let mut tx = state.tenant_tx(&auth).await?;
    let rows = webhooks::deliveries(&mut tx, id, limit).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(rows))
}
