//! Signing in (`POST /auth/login`) and the caller's own profile (`GET /me`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maintainpro_models::organizations::{self, Organization};
use maintainpro_models::users::{self, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/me", get(me))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user: User,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub organization: Organization,
    /// What the user's role may do, as `resource:action`.
    pub permissions: Vec<String>,
}

/// Exchanges an e-mail and password for an access token.
#[utoipa::path(
    post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in", body = Envelope<LoginResponse>),
        (status = 401, description = "wrong e-mail or password", body = ErrorEnvelope),
        (status = 400, description = "malformed body", body = ErrorEnvelope),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<ApiResponse<LoginResponse>, ApiError> {
    let user = users::authenticate(&state.db, &req.email, &req.password).await?;
    let access_token = state.jwt.issue(&user)?;
    tracing::info!(user_id = %user.id, org_id = %user.organization_id, "user signed in");
    Ok(ApiResponse::ok(LoginResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        user,
    }))
}

/// The signed-in user, their organization and permissions.
#[utoipa::path(
    get, path = "/api/v1/me", operation_id = "getMe", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Envelope<Me>),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<ApiResponse<Me>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::get(&mut tx, auth.user_id).await.map_err(|e| match e {
        // A token for a deleted user: no longer a valid identity.
        maintainpro_models::ModelError::NotFound(_) => ApiError::Unauthorized("user no longer exists".into()),
        other => other.into(),
    })?;
    let organization = organizations::current(&mut tx).await?;
    tx.commit().await?;
    let permissions = user.role.permissions().into_iter().map(String::from).collect();
    Ok(ApiResponse::ok(Me {
        user,
        organization,
        permissions,
    }))
}
