//! Users of the caller's organization: list, get, create, invite, change
//! name and role, activate and deactivate.
//!
//! Everything but reading needs `users:manage`. Ids of other organizations'
//! users are invisible (row-level security): 404.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use maintainpro_models::users::{self, NewInvite, NewUser, User, UserFilter, UserUpdate};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{AuthUser, OpaqueToken};
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/invite", post(invite))
        .route("/api/v1/users/{id}", get(get_one).patch(update))
        .route("/api/v1/users/{id}/deactivate", post(deactivate))
        .route("/api/v1/users/{id}/activate", post(activate))
        .route("/api/v1/users/{id}/invite", post(reinvite))
}

/// An invited user and the one-time token to pass on to them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteResponse {
    pub user: User,
    /// Give this to the invitee; they accept with `POST /auth/accept-invite`.
    /// It is shown only here and stored only as a hash.
    pub invite_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The organization's users in name order, a page at a time, optionally
/// searched by name or e-mail and filtered by role and activity.
#[utoipa::path(
    get, path = "/api/v1/users", operation_id = "listUsers", tag = "users",
    params(UserFilter), security(("bearer" = ["users:view"])),
    responses(
        (status = 200, body = Envelope<Vec<User>>), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 422, description = "invalid filter value, limit or cursor", body = ErrorEnvelope)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(filter): Query<UserFilter>,
) -> Result<ApiResponse<Vec<User>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let page = users::list(&mut tx, &filter).await?;
    tx.commit().await?;
    Ok(ApiResponse::page(page))
}

/// One user of the organization.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", operation_id = "getUser", tag = "users",
    params(("id" = Uuid, Path, description = "user id")), security(("bearer" = ["users:view"])),
    responses((status = 200, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<User>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(user))
}

/// Creates a user in the caller's organization.
#[utoipa::path(
    post, path = "/api/v1/users", operation_id = "createUser", tag = "users",
    request_body = NewUser, security(("bearer" = ["users:manage"])),
    responses((status = 201, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewUser>,
) -> Result<ApiResponse<User>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, role = %user.role, "user created");
    Ok(ApiResponse::created(user))
}

/// Invites a user: creates them inactive, with a one-time invitation
/// token (valid 7 days) returned for the administrator to pass on.
#[utoipa::path(
    post, path = "/api/v1/users/invite", operation_id = "inviteUser", tag = "users",
    request_body = NewInvite, security(("bearer" = ["users:manage"])),
    responses((status = 201, body = Envelope<InviteResponse>), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewInvite>,
) -> Result<ApiResponse<InviteResponse>, ApiError> {
    let token = OpaqueToken::generate();
    let mut tx = state.tenant_tx(&auth).await?;
    let invitation = users::invite(&mut tx, &auth.tenant, new, &token.hash).await?;
    tx.commit().await?;
    tracing::info!(user_id = %invitation.user.id, role = %invitation.user.role, "user invited");
    Ok(ApiResponse::created(InviteResponse {
        user: invitation.user,
        invite_token: token.token,
        expires_at: invitation.expires_at,
    }))
}

/// Issues a new invitation to an invited user who has not accepted yet
/// (e.g. the first one expired); earlier invitations stop working.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/invite", operation_id = "reinviteUser", tag = "users",
    params(("id" = Uuid, Path, description = "user id")), security(("bearer" = ["users:manage"])),
    responses(
        (status = 201, body = Envelope<InviteResponse>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "the user has accepted already", body = ErrorEnvelope)
    )
)]
pub async fn reinvite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<InviteResponse>, ApiError> {
    let token = OpaqueToken::generate();
    let mut tx = state.tenant_tx(&auth).await?;
    let invitation = users::reinvite(&mut tx, &auth.tenant, id, &token.hash).await?;
    tx.commit().await?;
    tracing::info!(user_id = %invitation.user.id, "user re-invited");
    Ok(ApiResponse::created(InviteResponse {
        user: invitation.user,
        invite_token: token.token,
        expires_at: invitation.expires_at,
    }))
}

/// Changes a user's name and/or role (nobody changes their own role). A
/// new role reaches the user's access token at its next refresh.
#[utoipa::path(
    patch, path = "/api/v1/users/{id}", operation_id = "updateUser", tag = "users",
    params(("id" = Uuid, Path, description = "user id")),
    request_body = UserUpdate, security(("bearer" = ["users:manage"])),
    responses(
        (status = 200, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "own role", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(change): Json<UserUpdate>,
) -> Result<ApiResponse<User>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::update(&mut tx, &auth.tenant, id, change).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, role = %user.role, "user updated");
    Ok(ApiResponse::ok(user))
}

/// Deactivates a user: they can no longer sign in or refresh, and their
/// sessions and pending invitations are revoked (an access token already
/// issued runs out within 15 minutes). Nobody deactivates themself.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/deactivate", operation_id = "deactivateUser", tag = "users",
    params(("id" = Uuid, Path, description = "user id")), security(("bearer" = ["users:manage"])),
    responses(
        (status = 200, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "deactivating oneself", body = ErrorEnvelope)
    )
)]
pub async fn deactivate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<User>, ApiError> {
    set_active(state, auth, id, false).await
}

/// Activates a user again.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/activate", operation_id = "activateUser", tag = "users",
    params(("id" = Uuid, Path, description = "user id")), security(("bearer" = ["users:manage"])),
    responses((status = 200, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn activate(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<User>, ApiError> {
    set_active(state, auth, id, true).await
}

async fn set_active(
    state: AppState,
    auth: AuthUser,
    id: Uuid,
    active: bool,
) -> Result<ApiResponse<User>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::set_active(&mut tx, &auth.tenant, id, active).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, active, "user activation changed");
    Ok(ApiResponse::ok(user))
}
