//! Users of an organization and signing in: creation, invitations, profile
//! and role changes, activation and deactivation.
//!
//! An invited user exists inactive, with no usable password, until they
//! accept the one-time invitation (its SHA-256 is stored, never the token;
//! 7 days). Deactivation revokes the user's sign-in sessions and pending
//! invitations; an administrator can neither deactivate themself nor change
//! their own role, so an organization always keeps an active administrator.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{hash_password, validate_password, verify_password, Role};
use crate::db::{Db, Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Result};
use crate::events;
use crate::page::{self, KeyCursor, Page};
use crate::sessions::{self, TokenHash, TokenRejection};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct UserRow {
    id: Uuid,
    organization_id: Uuid,
    email: String,
    name: String,
    role: String,
    active: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = ModelError;
    fn try_from(r: UserRow) -> Result<User> {
        Ok(User {
            id: r.id,
            organization_id: r.organization_id,
            email: r.email,
            name: r.name,
            role: r.role.parse()?,
            active: r.active,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

const COLUMNS: &str = "id, organization_id, email, name, role, active, created_at";

/// Checks an e-mail and a display name; returns the normalized e-mail.
fn validate_identity(email: &str, name: &str, errors: &mut Vec<FieldError>) -> String {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace) {
        errors.push(FieldError::new("email", "must be an e-mail address"));
    }
    validate_name(name, errors);
    email
}

fn validate_name(name: &str, errors: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 {
        errors.push(FieldError::new("name", "must not be empty"));
    } else if n > 200 {
        errors.push(FieldError::new("name", "must be at most 200 characters"));
    }
}

/// Inserts a user row with a ready password hash.
async fn insert(
    tx: &mut Tx,
    tenant: &Tenant,
    email: &str,
    name: &str,
    role: Role,
    hash: &str,
    active: bool,
) -> Result<User> {
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "INSERT INTO users (id, organization_id, email, name, role, password_hash, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(email)
    .bind(name.trim())
    .bind(role.as_str())
    .bind(hash)
    .bind(active)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "users_email_key", || {
            ModelError::Conflict(format!("a user with e-mail {email} already exists"))
        })
    })?;
    User::try_from(row)
}

/// Creates a user in the tenant's organization.
pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewUser) -> Result<User> {
    let mut errors = Vec::new();
    let email = validate_identity(&new.email, &new.name, &mut errors);
    if let Err(ModelError::Validation(mut e)) = validate_password(&new.password) {
        errors.append(&mut e);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let password = new.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let user = insert(tx, tenant, &email, &new.name, new.role, &hash, true).await?;
    events::emit(tx, tenant, "user.created", Some(user.id), &user).await?;
    Ok(user)
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<User> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("user"))?
        .try_into()
}

/// Filters of the user list (name order).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Name or e-mail contains this text (case-insensitive).
    pub q: Option<String>,
    /// admin | manager | technician | requester
    pub role: Option<String>,
    /// true: only active users; false: only deactivated or invited ones.
    pub active: Option<bool>,
    /// `meta.nextCursor` of the previous page (same filters).
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
}

/// The organization's users in name order, filtered, paginated by a keyset
/// cursor over (name, id).
pub async fn list(tx: &mut Tx, filter: &UserFilter) -> Result<Page<User>> {
    let mut errors = Vec::new();
    let role = match filter.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(role) => role,
        Err(_) => {
            let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            errors.push(FieldError::new(
                "role",
                format!("must be one of {}", all.join(", ")),
            ));
            None
        }
    };
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 200) {
        errors.push(FieldError::new("q", "must be at most 200 characters"));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let limit = page::limit(filter.limit)?;
    let cursor = filter
        .cursor
        .as_deref()
        .map(KeyCursor::<String>::decode)
        .transpose()?;
    let pattern = q.map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        )
    });
    let rows = sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE ($1::text IS NULL OR name ILIKE $1 OR email ILIKE $1)
           AND ($2::text IS NULL OR role = $2)
           AND ($3::boolean IS NULL OR active = $3)
           AND ($4::text IS NULL OR (name, id) > ($4, $5))
         ORDER BY name, id LIMIT $6"
    ))
    .bind(pattern)
    .bind(role.map(Role::as_str))
    .bind(filter.active)
    .bind(cursor.as_ref().map(|c| c.key.as_str()))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&mut **tx)
    .await?;
    let items = rows.into_iter().map(User::try_from).collect::<Result<Vec<_>>>()?;
    Ok(page::paginate_by(items, limit, |u| {
        KeyCursor {
            key: u.name.clone(),
            id: u.id,
        }
        .encode()
    }))
}

/// Checks an e-mail and password; returns the active user.
/// Takes the same time whether or not the e-mail exists.
pub async fn authenticate(db: &Db, email: &str, password: &str) -> Result<User> {
    #[derive(FromRow)]
    struct Login {
        id: Uuid,
        organization_id: Uuid,
        password_hash: String,
        active: bool,
    }
    let found = sqlx::query_as::<_, Login>(
        "SELECT id, organization_id, password_hash, active FROM mp_auth_user_by_email($1)",
    )
    .bind(email.trim())
    .fetch_optional(db.pool())
    .await?;
    // Verify against a dummy hash when the user is unknown, so timing does
    // not reveal which e-mails exist.
    let hash = found.as_ref().map(|l| l.password_hash.clone());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(dummy_hash);
        verify_password(&password, &hash)
    })
    .await?;
    match found {
        Some(login) if ok && login.active => {
            let mut tx = db.tenant(login.organization_id).await?;
            let user = get(&mut tx, login.id).await?;
            tx.commit().await?;
            Ok(user)
        }
        _ => Err(ModelError::InvalidCredentials),
    }
}

/// A real argon2id hash of nothing anyone knows, for constant-time misses.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&Uuid::new_v4().to_string()).unwrap_or_default())
        .clone()
}

/// Sets a user's password (validated, argon2id-hashed).
pub async fn set_password(tx: &mut Tx, id: Uuid, password: &str) -> Result<()> {
    validate_password(password)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let done = sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ModelError::NotFound("user"));
    }
    Ok(())
}

/// The user with this e-mail in the current organization, if any.
pub async fn find_by_email(tx: &mut Tx, email: &str) -> Result<Option<User>> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1)"
    ))
    .bind(email.trim())
    .fetch_optional(&mut **tx)
    .await?
    .map(User::try_from)
    .transpose()
}

/// The user with `id`, row-locked against concurrent activation changes
/// (refresh holds this while it issues a token).
pub(crate) async fn get_for_share(tx: &mut Tx, id: Uuid) -> Result<User> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1 FOR SHARE"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("user"))?
        .try_into()
}

/// A change to a user's profile; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
}

/// Changes a user's name and/or role. Nobody changes their own role.
pub async fn update(tx: &mut Tx, tenant: &Tenant, id: Uuid, change: UserUpdate) -> Result<User> {
    let mut errors = Vec::new();
    if let Some(name) = &change.name {
        validate_name(name, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let current = get_for_update(tx, id).await?;
    if let Some(role) = change.role {
        if role != current.role && tenant.actor.user_id() == Some(id) {
            return Err(ModelError::Conflict("you cannot change your own role".into()));
        }
    }
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET name = COALESCE($2, name), role = COALESCE($3, role), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(change.name.as_deref().map(str::trim))
    .bind(change.role.map(Role::as_str))
    .fetch_one(&mut **tx)
    .await?;
    let user = User::try_from(row)?;
    events::emit(tx, tenant, "user.updated", Some(user.id), &user).await?;
    Ok(user)
}

async fn get_for_update(tx: &mut Tx, id: Uuid) -> Result<User> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("user"))?
        .try_into()
}

/// Activates or deactivates a user. Deactivation revokes the user's
/// refresh tokens (their access tokens run out within minutes) and pending
/// invitations; nobody deactivates themself. Idempotent.
pub async fn set_active(tx: &mut Tx, tenant: &Tenant, id: Uuid, active: bool) -> Result<User> {
    let current = get_for_update(tx, id).await?;
    if !active && tenant.actor.user_id() == Some(id) {
        return Err(ModelError::Conflict("you cannot deactivate yourself".into()));
    }
    if current.active == active {
        return Ok(current);
    }
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET active = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(active)
    .fetch_one(&mut **tx)
    .await?;
    let user = User::try_from(row)?;
    let kind = if active {
        "user.activated"
    } else {
        let sessions = sessions::revoke_user(tx, id).await?;
        revoke_invites(tx, id).await?;
        tracing::info!(user_id = %id, sessions, "user deactivated; sessions revoked");
        "user.deactivated"
    };
    events::emit(tx, tenant, kind, Some(user.id), &user).await?;
    Ok(user)
}

async fn revoke_invites(tx: &mut Tx, user_id: Uuid) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE user_invites SET revoked_at = now()
         WHERE user_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// How long an invitation can be accepted.
pub const INVITE_TTL: chrono::Duration = chrono::Duration::days(7);

/// The stored password hash of an invited user: not a PHC string, so no
/// password ever verifies against it.
const NO_PASSWORD: &str = "!invited";

/// Whom to invite.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewInvite {
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// An invited (inactive) user and when the invitation lapses.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

/// Creates an inactive user with a one-time invitation; `hash` is the
/// SHA-256 of the token the admin passes on (valid for [`INVITE_TTL`]).
pub async fn invite(tx: &mut Tx, tenant: &Tenant, new: NewInvite, hash: &TokenHash) -> Result<Invitation> {
    let mut errors = Vec::new();
    let email = validate_identity(&new.email, &new.name, &mut errors);
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let user = insert(tx, tenant, &email, &new.name, new.role, NO_PASSWORD, false).await?;
    let expires_at = insert_invite(tx, tenant, user.id, hash).await?;
    events::emit(tx, tenant, "user.invited", Some(user.id), &user).await?;
    Ok(Invitation { user, expires_at })
}

async fn insert_invite(
    tx: &mut Tx,
    tenant: &Tenant,
    user_id: Uuid,
    hash: &TokenHash,
) -> Result<DateTime<Utc>> {
    let expires_at = Utc::now() + INVITE_TTL;
    sqlx::query(
        "INSERT INTO user_invites (id, organization_id, user_id, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(user_id)
    .bind(&hash[..])
    .bind(tenant.actor.user_id())
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(expires_at)
}

/// Issues a fresh invitation to an invited user who has not accepted yet
/// (say the first one expired); earlier invitations stop working. A user
/// who has a password already is a conflict.
pub async fn reinvite(tx: &mut Tx, tenant: &Tenant, id: Uuid, hash: &TokenHash) -> Result<Invitation> {
    let user = get_for_update(tx, id).await?;
    let pending: bool = sqlx::query_scalar("SELECT password_hash = $2 FROM users WHERE id = $1")
        .bind(id)
        .bind(NO_PASSWORD)
        .fetch_one(&mut **tx)
        .await?;
    if !pending {
        return Err(ModelError::Conflict(format!(
            "{} has already accepted an invitation",
            user.email
        )));
    }
    revoke_invites(tx, id).await?;
    let expires_at = insert_invite(tx, tenant, id, hash).await?;
    events::emit(tx, tenant, "user.invited", Some(user.id), &user).await?;
    Ok(Invitation { user, expires_at })
}

/// The outcome of accepting an invitation.
#[derive(Debug, Clone)]
pub enum InviteAcceptance {
    /// The user is active and signs in with the new password.
    Accepted(User),
    Rejected(TokenRejection),
}

/// Accepts an invitation: sets the password (validated, argon2id) and
/// activates the user. Each invitation works once, within its lifetime,
/// and not after the user was deactivated.
pub async fn accept_invite(db: &Db, hash: &TokenHash, password: &str) -> Result<InviteAcceptance> {
    validate_password(password)?;
    let org_id = sqlx::query_scalar::<_, Uuid>("SELECT organization_id FROM mp_auth_invite($1)")
        .bind(&hash[..])
        .fetch_optional(db.pool())
        .await?;
    let Some(org_id) = org_id else {
        return Ok(InviteAcceptance::Rejected(TokenRejection::Unknown));
    };
    let password = password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;

    #[derive(FromRow)]
    struct Invite {
        id: Uuid,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
        accepted_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    }
    // Attributed to the sign-in service: nobody is signed in yet.
    let mut tx = db.tenant_for(&Tenant::system(org_id, "auth")).await?;
    let invite = sqlx::query_as::<_, Invite>(
        "SELECT id, user_id, expires_at, accepted_at, revoked_at FROM user_invites
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(&hash[..])
    .fetch_optional(&mut *tx)
    .await?;
    let rejection = match &invite {
        None => Some(TokenRejection::Unknown),
        Some(i) if i.accepted_at.is_some() => Some(TokenRejection::Reused),
        Some(i) if i.revoked_at.is_some() => Some(TokenRejection::Revoked),
        Some(i) if i.expires_at <= Utc::now() => Some(TokenRejection::Expired),
        Some(_) => None,
    };
    let (Some(invite), None) = (invite, rejection) else {
        return Ok(InviteAcceptance::Rejected(
            rejection.unwrap_or(TokenRejection::Unknown),
        ));
    };
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET password_hash = $2, active = true, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(invite.user_id)
    .bind(password_hash)
    .fetch_one(&mut *tx)
    .await?;
    let user = User::try_from(row)?;
    sqlx::query("UPDATE user_invites SET accepted_at = now() WHERE id = $1")
        .bind(invite.id)
        .execute(&mut *tx)
        .await?;
    // Any other outstanding invitation of the user is void now.
    revoke_invites(&mut tx, user.id).await?;
    let tenant = Tenant {
        org_id,
        actor: crate::db::Actor::User {
            id: user.id,
            role: user.role,
        },
    };
    events::emit(&mut tx, &tenant, "user.invite_accepted", Some(user.id), &user).await?;
    tx.commit().await?;
    Ok(InviteAcceptance::Accepted(user))
}
