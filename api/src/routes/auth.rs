//! Signing in and out: `POST /auth/login` (rate limited), `/auth/refresh`
//! (rotating refresh tokens with reuse detection), `/auth/logout`,
//! `/auth/accept-invite`, and the caller's own profile (`GET /me`).
//!
//! Access tokens are short (15 min) JWTs checked on every request without
//! touching the database. Refresh tokens are opaque and stored hashed;
//! refreshing is when the user's activation and role are read afresh (see
//! `maintainpro_models::sessions`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use maintainpro_models::organizations::{self, Organization};
use maintainpro_models::sessions::{self, Refresh, TokenRejection};
use maintainpro_models::users::{self, InviteAcceptance, User};
use maintainpro_models::{Actor, ModelError, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{hash_token, plausible_token, AuthUser, ClientIp, OpaqueToken, SignIn};
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Json;
use crate::state::AppState;

/// The auth routes, with their own sign-in limiter and session policy
/// (one per built router, i.e. per API process).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/accept-invite", post(accept_invite))
        .route("/api/v1/me", get(me))
        .layer(Extension(Arc::new(SignIn::default())))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Tokens for a signed-in user (from login or refresh).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it at `POST /auth/refresh` for new tokens. Works
    /// once: a second use signs the session out everywhere.
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user: User,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptInvite {
    /// The invitation token the administrator passed on.
    pub token: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub organization: Organization,
    /// What the user's role may do, as `resource:action`.
    pub permissions: Vec<String>,
}

/// Exchanges an e-mail and password for an access token and a refresh token.
///
/// After 5 failures for one e-mail from one address within 15 minutes (or
/// 100 from one address), further attempts get 429 with `Retry-After`
/// until the window ends, whatever the password.
#[utoipa::path(
    post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in", body = Envelope<LoginResponse>),
        (status = 401, description = "wrong e-mail or password", body = ErrorEnvelope),
        (status = 400, description = "malformed body", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 429, description = "too many failed attempts (code RATE_LIMITED); see Retry-After",
         body = ErrorEnvelope,
         headers(("Retry-After" = u64, description = "seconds until the next attempt is allowed"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Extension(sign_in): Extension<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    if let Err(wait) = sign_in.limiter.check(&req.email, ip) {
        tracing::warn!(client_ip = ?ip, "sign-in rate limited");
        return Err(rate_limited(wait));
    }
    let user = match users::authenticate(&state.db, &req.email, &req.password).await {
        Ok(user) => user,
        Err(ModelError::InvalidCredentials) => {
            sign_in.limiter.record_failure(&req.email, ip);
            return Err(ModelError::InvalidCredentials.into());
        }
        Err(e) => return Err(e.into()),
    };
    sign_in.limiter.record_success(&req.email, ip);
    let tokens = start_session(&state, &sign_in, user).await?;
    tracing::info!(user_id = %tokens.user.id, org_id = %tokens.user.organization_id, "user signed in");
    Ok(ApiResponse::ok(tokens).into_response())
}

/// Issues an access token and starts a refresh-token family.
async fn start_session(state: &AppState, sign_in: &SignIn, user: User) -> Result<LoginResponse, ApiError> {
    let access_token = state.jwt.issue(&user)?;
    let refresh = OpaqueToken::generate();
    let tenant = Tenant {
        org_id: user.organization_id,
        actor: Actor::User {
            id: user.id,
            role: user.role,
        },
    };
    let mut tx = state.db.tenant_for(&tenant).await?;
    let stored = sessions::start(&mut tx, &tenant, user.id, &refresh.hash, &sign_in.policy).await?;
    tx.commit().await?;
    Ok(LoginResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs(),
        refresh_token: refresh.token,
        refresh_token_expires_at: stored.expires_at,
        user,
    })
}

/// The 429 answer: `RATE_LIMITED` with `Retry-After` in seconds.
fn rate_limited(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        message: format!("too many failed sign-in attempts; try again in {secs} s"),
        retry_after: wait,
    }
}

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthorized("invalid or expired refresh token".into())
}

/// Exchanges a refresh token for a new access token and a new refresh
/// token; the presented one is used up.
///
/// Presenting a refresh token that was already used revokes its whole
/// family (every session token descending from that sign-in) and answers
/// 401. A deactivated user cannot refresh; a changed role takes effect here.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", operation_id = "refreshToken", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = Envelope<LoginResponse>),
        (status = 401, description = "unknown, expired, revoked or reused refresh token", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Extension(sign_in): Extension<Arc<SignIn>>,
    Json(req): Json<RefreshRequest>,
) -> Result<ApiResponse<LoginResponse>, ApiError> {
    if !plausible_token(&req.refresh_token) {
        return Err(invalid_refresh_token());
    }
    let presented = hash_token(&req.refresh_token);
    let next = OpaqueToken::generate();
    match sessions::rotate(&state.db, &presented, &next.hash, &sign_in.policy).await? {
        Refresh::Rotated { user, token } => {
            let access_token = state.jwt.issue(&user)?;
            Ok(ApiResponse::ok(LoginResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: state.jwt.ttl_secs(),
                refresh_token: next.token,
                refresh_token_expires_at: token.expires_at,
                user,
            }))
        }
        Refresh::Rejected(reason) => {
            if reason != TokenRejection::Reused {
                tracing::info!(reason = reason.as_str(), "refresh refused");
            }
            Err(invalid_refresh_token())
        }
    }
}

/// Signs out: revokes the session (the refresh token's whole family).
/// Answers 204 whether or not the token was known.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "signed out"),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if plausible_token(&req.refresh_token)
        && sessions::logout(&state.db, &hash_token(&req.refresh_token)).await?
    {
        tracing::info!("user signed out");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: sets the password and activates the user, who
/// then signs in with `POST /auth/login`. Each invitation works once,
/// within 7 days.
#[utoipa::path(
    post, path = "/api/v1/auth/accept-invite", operation_id = "acceptInvite", tag = "auth",
    request_body = AcceptInvite,
    responses(
        (status = 200, description = "activated", body = Envelope<User>),
        (status = 401, description = "unknown, used, withdrawn or expired invitation", body = ErrorEnvelope),
        (status = 422, description = "password too weak", body = ErrorEnvelope),
    )
)]
pub async fn accept_invite(
    State(state): State<AppState>,
    Json(req): Json<AcceptInvite>,
) -> Result<ApiResponse<User>, ApiError> {
    let invalid = || ApiError::Unauthorized("invalid or expired invitation".into());
    if !plausible_token(&req.token) {
        return Err(invalid());
    }
    match users::accept_invite(&state.db, &hash_token(&req.token), &req.password).await? {
        InviteAcceptance::Accepted(user) => {
            tracing::info!(user_id = %user.id, org_id = %user.organization_id, "invitation accepted");
            Ok(ApiResponse::ok(user))
        }
        InviteAcceptance::Rejected(reason) => {
            tracing::info!(reason = reason.as_str(), "invitation refused");
            Err(invalid())
        }
    }
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
        ModelError::NotFound(_) => ApiError::Unauthorized("user no longer exists".into()),
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
