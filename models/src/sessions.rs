//! Sign-in sessions: rotating refresh tokens with reuse detection.
//!
//! Signing in starts a *family* of refresh tokens. Each refresh consumes the
//! presented token (marks it used) and issues its successor in the same
//! family. A token presented a second time can only mean that two parties
//! hold it — the client and a thief — so the whole family is revoked, the
//! newest token included, and both have to sign in again (the rotation
//! scheme of the OAuth 2.0 Security BCP and Auth0). A token lives 14 days by
//! default, and a family at most 30 days from its sign-in however often it
//! rotates. A deactivated user's families are revoked and cannot refresh.
//!
//! The tokens themselves are opaque random strings made and hashed by the
//! caller (the API); this module only ever sees their SHA-256 ([`TokenHash`]).
//! All operations on one family are serialized with a transaction-scoped
//! advisory lock, so a reuse racing a rotation cannot leave a live token
//! behind in a revoked family.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

use crate::db::{Db, Tenant, Tx};
use crate::error::Result;
use crate::events;
use crate::users::{self, User};

/// The SHA-256 of an opaque token: all the database ever stores.
pub type TokenHash = [u8; 32];

/// How long refresh tokens and their families live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Lifetime of one refresh token (default 14 days).
    pub token_ttl: Duration,
    /// Absolute lifetime of a family from sign-in (default 30 days).
    pub family_ttl: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            token_ttl: Duration::days(14),
            family_ttl: Duration::days(30),
        }
    }
}

/// One refresh token as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RefreshToken {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<Uuid>,
}

const COLUMNS: &str = "id, organization_id, user_id, family_id, created_at, expires_at, \
                       family_expires_at, used_at, revoked_at, replaced_by";

/// Why a presented token (refresh or invite) was refused. Clients are told
/// only "invalid token"; the reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No such token.
    Unknown,
    /// Past its expiry (or its family's).
    Expired,
    /// Revoked (logout, reuse of a sibling, deactivation) or, for an
    /// invitation, withdrawn.
    Revoked,
    /// Already used: for refresh tokens this revoked the whole family.
    Reused,
    /// The user has been deactivated.
    InactiveUser,
}

impl TokenRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Unknown => "unknown",
            TokenRejection::Expired => "expired",
            TokenRejection::Revoked => "revoked",
            TokenRejection::Reused => "reused",
            TokenRejection::InactiveUser => "inactive_user",
        }
    }
}

/// The outcome of presenting a refresh token.
// Returned once per request and matched at once: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Refresh {
    /// The presented token is now used; `token` is its successor.
    Rotated {
        user: User,
        token: RefreshToken,
    },
    Rejected(TokenRejection),
}

/// Starts a new family for a user who just signed in; `hash` is the
/// SHA-256 of the token handed to the client. Families of the user that
/// ended (past their absolute lifetime) are deleted on the way: nothing in
/// them can refresh, and reuse of a token that old is merely expired.
pub async fn start(
    tx: &mut Tx,
    tenant: &Tenant,
    user_id: Uuid,
    hash: &TokenHash,
    policy: &SessionPolicy,
) -> Result<RefreshToken> {
    let now = Utc::now();
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND family_expires_at < $2")
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let family_expires_at = now + policy.family_ttl;
    insert(
        tx,
        tenant.org_id,
        user_id,
        Uuid::now_v7(),
        hash,
        now,
        family_expires_at,
        policy,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    tx: &mut Tx,
    org_id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    hash: &TokenHash,
    now: DateTime<Utc>,
    family_expires_at: DateTime<Utc>,
    policy: &SessionPolicy,
) -> Result<RefreshToken> {
    let expires_at = (now + policy.token_ttl).min(family_expires_at);
    Ok(sqlx::query_as::<_, RefreshToken>(&format!(
        "INSERT INTO refresh_tokens
             (id, organization_id, user_id, family_id, token_hash, created_at, expires_at, family_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(org_id)
    .bind(user_id)
    .bind(family_id)
    .bind(&hash[..])
    .bind(now)
    .bind(expires_at)
    .bind(family_expires_at)
    .fetch_one(&mut **tx)
    .await?)
}

/// The organization a presented token belongs to (a cross-organization
/// lookup, before any tenant is known).
async fn organization_of(db: &Db, hash: &TokenHash) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar::<_, Uuid>("SELECT organization_id FROM mp_auth_refresh_token($1)")
            .bind(&hash[..])
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Opens a tenant transaction on the token's organization, serializes on
/// its family and reads it afresh. None when the token is unknown.
async fn lock_token(db: &Db, hash: &TokenHash) -> Result<Option<(Tx, RefreshToken)>> {
    let Some(org_id) = organization_of(db, hash).await? else {
        return Ok(None);
    };
    let mut tx = db.tenant_for(&Tenant::system(org_id, "auth")).await?;
    let family = sqlx::query_scalar::<_, Uuid>("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
    let Some(family) = family else {
        return Ok(None);
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(family))
        .execute(&mut *tx)
        .await?;
    let token = sqlx::query_as::<_, RefreshToken>(&format!(
        "SELECT {COLUMNS} FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE"
    ))
    .bind(&hash[..])
    .fetch_optional(&mut *tx)
    .await?;
    Ok(token.map(|t| (tx, t)))
}

/// The advisory-lock key of a family.
fn lock_key(family: Uuid) -> i64 {
    let v = family.as_u128();
    ((v >> 64) as u64 ^ v as u64) as i64
}

/// Exchanges a refresh token for its successor (hash `next`).
///
/// A used token revokes its whole family; an expired or revoked one, or one
/// of a deactivated user, is refused. Revocations are committed even though
/// the answer is a rejection.
pub async fn rotate(
    db: &Db,
    presented: &TokenHash,
    next: &TokenHash,
    policy: &SessionPolicy,
) -> Result<Refresh> {
    let Some((mut tx, current)) = lock_token(db, presented).await? else {
        return Ok(Refresh::Rejected(TokenRejection::Unknown));
    };
    let tenant = Tenant::system(current.organization_id, "auth");
    if current.revoked_at.is_some() {
        return Ok(Refresh::Rejected(TokenRejection::Revoked));
    }
    if current.used_at.is_some() {
        let revoked = revoke_family(&mut tx, current.family_id).await?;
        events::emit(
            &mut tx,
            &tenant,
            "session.reuse_detected",
            Some(current.user_id),
            &serde_json::json!({
                "userId": current.user_id,
                "familyId": current.family_id,
                "revokedTokens": revoked,
            }),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(
            user_id = %current.user_id,
            family_id = %current.family_id,
            "refresh token reused; family revoked"
        );
        return Ok(Refresh::Rejected(TokenRejection::Reused));
    }
    let now = Utc::now();
    if current.expires_at <= now {
        return Ok(Refresh::Rejected(TokenRejection::Expired));
    }
    // FOR SHARE: a concurrent deactivation either waits for this rotation
    // (and then revokes its new token too) or is seen here.
    let user = users::get_for_share(&mut tx, current.user_id).await?;
    if !user.active {
        revoke_family(&mut tx, current.family_id).await?;
        tx.commit().await?;
        return Ok(Refresh::Rejected(TokenRejection::InactiveUser));
    }
    let token = insert(
        &mut tx,
        current.organization_id,
        current.user_id,
        current.family_id,
        next,
        now,
        current.family_expires_at,
        policy,
    )
    .await?;
    sqlx::query("UPDATE refresh_tokens SET used_at = $2, replaced_by = $3 WHERE id = $1")
        .bind(current.id)
        .bind(now)
        .bind(token.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Refresh::Rotated { user, token })
}

/// Signs out: revokes the family of the presented token (whether or not the
/// token itself is still current). False when the token is unknown.
pub async fn logout(db: &Db, presented: &TokenHash) -> Result<bool> {
    let Some((mut tx, current)) = lock_token(db, presented).await? else {
        return Ok(false);
    };
    revoke_family(&mut tx, current.family_id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Revokes every live token of a family; returns how many.
pub async fn revoke_family(tx: &mut Tx, family_id: Uuid) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every live token of a user (deactivation); returns how many.
pub async fn revoke_user(tx: &mut Tx, user_id: Uuid) -> Result<u64> {
    let done =
        sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected())
}

/// Every token of a family, oldest first.
pub async fn family(tx: &mut Tx, family_id: Uuid) -> Result<Vec<RefreshToken>> {
    Ok(sqlx::query_as::<_, RefreshToken>(&format!(
        "SELECT {COLUMNS} FROM refresh_tokens WHERE family_id = $1 ORDER BY created_at, id"
    ))
    .bind(family_id)
    .fetch_all(&mut **tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_matches_the_documented_lifetimes() {
        let p = SessionPolicy::default();
        assert_eq!(p.token_ttl, Duration::days(14));
        assert_eq!(p.family_ttl, Duration::days(30));
    }

    #[test]
    fn lock_keys_differ_per_family() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_eq!(lock_key(a), lock_key(a));
        assert_ne!(lock_key(a), lock_key(b));
    }
}
