//! Access tokens (JWT, HS256) and the [`AuthUser`] extractor that turns a
//! bearer token into the tenant context of a request.
//!
//! The organization of every request comes from the verified token and
//! nowhere else; handlers check permissions with [`AuthUser::require`].

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use maintainpro_models::auth::{Permission, Role};
use maintainpro_models::users::User;
use maintainpro_models::{Actor, Tenant};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Clock skew tolerated when checking `exp`.
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The organization id.
    pub org: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Signing and verification keys, with the validation rules pinned.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(config: &ApiConfig) -> Self {
        let secret = config.jwt_secret.as_bytes();
        // Only HS256; iss, aud and exp are checked on every token.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.token_ttl,
        }
    }

    /// The lifetime of issued tokens in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// Issues an access token for a signed-in user.
    pub fn issue(&self, user: &User) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user.id,
            org: user.organization_id,
            role: user.role,
            iat: now,
            exp: now.saturating_add(ttl),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign token: {e}")))
    }

    /// Verifies a token's signature, algorithm, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "token rejected");
                ApiError::Unauthorized("invalid or expired access token".into())
            })
    }
}

/// The signed-in caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// The organization (from the token) and the acting user.
    pub tenant: Tenant,
    pub user_id: Uuid,
    pub role: Role,
}

impl AuthUser {
    pub fn from_claims(claims: &Claims) -> Self {
        Self {
            tenant: Tenant {
                org_id: claims.org,
                actor: Actor::User {
                    id: claims.sub,
                    role: claims.role,
                },
            },
            user_id: claims.sub,
            role: claims.role,
        }
    }

    pub fn org_id(&self) -> Uuid {
        self.tenant.org_id
    }

    /// Whether the caller's role holds `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.role.can(permission)
    }

    /// 403 unless the caller's role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("missing permission {permission}")))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let claims = state.jwt.verify(token)?;
        Ok(AuthUser::from_claims(&claims))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("missing bearer token".into());
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn keys() -> JwtKeys {
        JwtKeys::new(&ApiConfig::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            "unit-test-secret-unit-test-secret",
        ))
    }

    fn user() -> User {
        User {
            id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            email: "a@b.c".into(),
            name: "A".into(),
            role: Role::Technician,
            active: true,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn issued_tokens_verify() {
        let keys = keys();
        let u = user();
        let token = keys.issue(&u).expect("issue");
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(claims.sub, u.id);
        assert_eq!(claims.org, u.organization_id);
        assert_eq!(claims.role, Role::Technician);
        assert!(keys.verify(&format!("{token}x")).is_err());
    }

    #[test]
    fn other_keys_are_rejected() {
        let token = keys().issue(&user()).expect("issue");
        let other = JwtKeys::new(&ApiConfig::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            "another-secret-another-secret-xx",
        ));
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn require_names_the_permission() {
        let auth = AuthUser::from_claims(&Claims {
            sub: Uuid::new_v4(),
            org: Uuid::new_v4(),
            role: Role::Requester,
            iat: 0,
            exp: 0,
            iss: String::new(),
            aud: String::new(),
        });
        let err = auth
            .require(Permission::WorkOrdersUpdate)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("missing permission work_orders:update"));
        assert!(auth.require(Permission::WorkOrdersCreate).is_ok());
    }
}
