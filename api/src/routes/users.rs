//! Users of the caller's organization: list and create.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maintainpro_models::auth::Permission;
use maintainpro_models::users::{self, NewUser, User};

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users", get(list).post(create))
}

/// The organization's users.
#[utoipa::path(
    get, path = "/api/v1/users", operation_id = "listUsers", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Vec<User>>), (status = 403, body = ErrorEnvelope))
)]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<ApiResponse<Vec<User>>, ApiError> {
    auth.require(Permission::UsersView)?;
    let mut tx = state.tenant_tx(&auth).await?;
    let items = users::list(&mut tx).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// Creates a user in the caller's organization.
#[utoipa::path(
    post, path = "/api/v1/users", operation_id = "createUser", tag = "users",
    request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, body = Envelope<User>), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(new): Json<NewUser>,
) -> Result<ApiResponse<User>, ApiError> {
    auth.require(Permission::UsersManage)?;
    let mut tx = state.tenant_tx(&auth).await?;
    let user = users::create(&mut tx, &auth.tenant, new).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, role = %user.role, "user created");
    Ok(ApiResponse::created(user))
}
