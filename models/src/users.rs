//! Users of an organization and signing in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{hash_password, validate_password, verify_password, Role};
use crate::db::{Db, Tenant, Tx};
use crate::error::{on_constraint, FieldError, ModelError, Result};

#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// Creates a user in the tenant's organization.
pub async fn create(tx: &mut Tx, tenant: &Tenant, new: NewUser) -> Result<User> {
    let mut errors = Vec::new();
    let email = new.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace) {
        errors.push(FieldError::new("email", "must be an e-mail address"));
    }
    if new.name.trim().is_empty() {
        errors.push(FieldError::new("name", "must not be empty"));
    }
    if let Err(ModelError::Validation(mut e)) = validate_password(&new.password) {
        errors.append(&mut e);
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    let password = new.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "INSERT INTO users (id, organization_id, email, name, role, password_hash)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(&email)
    .bind(new.name.trim())
    .bind(new.role.as_str())
    .bind(hash)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        on_constraint(e, "users_email_key", || {
            ModelError::Conflict(format!("a user with e-mail {email} already exists"))
        })
    })?;
    row.try_into()
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<User> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("user"))?
        .try_into()
}

pub async fn list(tx: &mut Tx) -> Result<Vec<User>> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users ORDER BY name, id"))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
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
