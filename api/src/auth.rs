//! Access tokens (JWT, HS256) and the [`AuthUser`] extractor that turns a
//! bearer token into the tenant context of a request.
//!
//! The organization of every request comes from the verified token and
//! nowhere else; handlers check permissions with [`AuthUser::require`].
//!
//! Also here: the opaque secrets handed to clients (refresh and invite
//! tokens, [`OpaqueToken`]; only their SHA-256 is stored), the client
//! address of a request ([`ClientIp`]), and the sign-in rate limiter
//! ([`LoginLimiter`]).
//!
//! The rate limiter keeps its counters in memory, so limits hold per API
//! process: with several API replicas an attacker gets the limit once per
//! replica. The client address is the TCP peer (`ConnectInfo`, which
//! [`crate::run`] provides); `x-forwarded-for` is not trusted, so behind a
//! reverse proxy every client shares the proxy's address and only the
//! per-account limit (e-mail + proxy address) is meaningful.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use maintainpro_models::auth::{Permission, Role};
use maintainpro_models::sessions::{SessionPolicy, TokenHash};
use maintainpro_models::users::User;
use maintainpro_models::{Actor, Tenant};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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
        // Usually verified already by the access middleware.
        match parts.extensions.get::<AuthUser>() {
            Some(auth) => Ok(*auth),
            None => AuthUser::from_headers(&parts.headers, state),
        }
    }
}

impl AuthUser {
    /// Verifies the request's bearer token.
    pub fn from_headers(headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(headers)?;
        let claims = state.jwt.verify(token)?;
        Ok(AuthUser::from_claims(&claims))
    }

    /// Verifies the token of a WebSocket upgrade, wherever [`ws_token`]
    /// finds it (`query_token` is the request's `?token=`).
    pub fn from_ws_request(
        headers: &HeaderMap,
        query_token: Option<&str>,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let (token, _) = ws_token(headers, query_token)?;
        let claims = state.jwt.verify(&token)?;
        Ok(AuthUser::from_claims(&claims))
    }
}

/// The access token of a WebSocket upgrade (browsers cannot set headers on
/// one): `?token=`, else `Sec-WebSocket-Protocol: bearer, <token>`, else the
/// Authorization header; and whether it came in `Sec-WebSocket-Protocol`
/// (the server must then answer with the `bearer` subprotocol).
pub fn ws_token(headers: &HeaderMap, query_token: Option<&str>) -> Result<(String, bool), ApiError> {
    if let Some(t) = query_token.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok((t.to_string(), false));
    }
    if let Some(protocols) = headers.get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()) {
        let mut parts = protocols.split(',').map(str::trim);
        if parts.next().is_some_and(|p| p.eq_ignore_ascii_case("bearer")) {
            if let Some(t) = parts.next().filter(|t| !t.is_empty()) {
                return Ok((t.to_string(), true));
            }
        }
    }
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some((scheme, t)) = value.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() {
                return Ok((t.trim().to_string(), false));
            }
        }
    }
    Err(ApiError::Unauthorized("missing access token".into()))
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("missing bearer token".into());
    let value = headers
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

/// The longest opaque token accepted; anything longer is not one of ours.
const MAX_OPAQUE_TOKEN_LEN: usize = 256;

/// A fresh secret for a client: 32 random bytes from the OS, base64url
/// without padding (43 characters), and the SHA-256 that gets stored.
pub struct OpaqueToken {
    /// Handed to the client once; never stored or logged.
    pub token: String,
    pub hash: TokenHash,
}

impl OpaqueToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_token(&token);
        Self { token, hash }
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(<redacted>)")
    }
}

/// The SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a presented string can be one of our opaque tokens at all
/// (not empty, not absurdly long); others need no lookup.
pub fn plausible_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_OPAQUE_TOKEN_LEN
}

/// The client's address: the TCP peer when the server records it
/// (`into_make_service_with_connect_info`), else unknown. IPv6 addresses
/// are reduced to their /64, which one subscriber typically holds whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| limit_key_ip(addr.ip()));
        Ok(ClientIp(ip))
    }
}

fn limit_key_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// How many failed sign-ins are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per e-mail and client address within a window (default 5).
    pub per_account: u32,
    /// Failures per client address, whatever the e-mail (default 100):
    /// stops one address from trying one password on many accounts.
    pub per_ip: u32,
    /// The window, counted from the first failure (default 15 minutes).
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_ip: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Counters of failed sign-ins, in memory (see the module docs).
///
/// A fixed window per key starts at its first failure; when a key reaches
/// its limit, attempts are refused until the window ends, without checking
/// the password. A successful sign-in clears the account's counter (not the
/// address's). Expired windows are swept at most once a minute, and the
/// map never tracks more than [`LoginLimiter::MAX_KEYS`] accounts, so a
/// flood of made-up e-mails cannot exhaust memory (the per-address limit
/// still applies to it).
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    windows: HashMap<LimitKey, Window>,
    last_sweep: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Account { email: String, ip: Option<IpAddr> },
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Longest e-mail kept as a key (longer ones cannot be addresses anyway).
const MAX_EMAIL_KEY: usize = 254;
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl LoginLimiter {
    /// The most keys tracked at once.
    pub const MAX_KEYS: usize = 100_000;

    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(LimiterState {
                windows: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// Ok when `email` may try to sign in from `ip`; otherwise how long to wait.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(email, ip, Instant::now())
    }

    /// Counts a failed sign-in.
    pub fn record_failure(&self, email: &str, ip: Option<IpAddr>) {
        self.record_failure_at(email, ip, Instant::now());
    }

    /// Clears the account's counter after a successful sign-in.
    pub fn record_success(&self, email: &str, ip: Option<IpAddr>) {
        let mut state = self.lock();
        state.windows.remove(&account_key(email, ip));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keys(&self, email: &str, ip: Option<IpAddr>) -> [(Option<LimitKey>, u32); 2] {
        [
            (Some(account_key(email, ip)), self.limits.per_account),
            (ip.map(LimitKey::Ip), self.limits.per_ip),
        ]
    }

    fn check_at(&self, email: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let state = self.lock();
        let mut wait = Duration::ZERO;
        for (key, limit) in self.keys(email, ip) {
            let Some(w) = key.and_then(|k| state.windows.get(&k).copied()) else {
                continue;
            };
            let elapsed = now.saturating_duration_since(w.started);
            if elapsed < self.limits.window && w.failures >= limit {
                wait = wait.max(self.limits.window - elapsed);
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    fn record_failure_at(&self, email: &str, ip: Option<IpAddr>, now: Instant) {
        let mut state = self.lock();
        if now.saturating_duration_since(state.last_sweep) >= SWEEP_EVERY
            || state.windows.len() >= Self::MAX_KEYS
        {
            let window = self.limits.window;
            state
                .windows
                .retain(|_, w| now.saturating_duration_since(w.started) < window);
            state.last_sweep = now;
        }
        for (key, _) in self.keys(email, ip) {
            let Some(key) = key else { continue };
            let full = state.windows.len() >= Self::MAX_KEYS;
            if full && matches!(key, LimitKey::Account { .. }) && !state.windows.contains_key(&key) {
                continue;
            }
            let w = state.windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.saturating_duration_since(w.started) >= self.limits.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().windows.len()
    }
}

fn account_key(email: &str, ip: Option<IpAddr>) -> LimitKey {
    let email: String = email.trim().to_lowercase().chars().take(MAX_EMAIL_KEY).collect();
    LimitKey::Account { email, ip }
}

/// What the sign-in routes share, per API instance: the session lifetimes
/// and the in-memory sign-in rate limiter.
#[derive(Debug)]
pub struct SignIn {
    pub policy: SessionPolicy,
    pub limiter: LoginLimiter,
}

impl Default for SignIn {
    fn default() -> Self {
        Self {
            policy: SessionPolicy::default(),
            limiter: LoginLimiter::new(LoginLimits::default()),
        }
    }
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

    #[test]
    fn opaque_tokens_are_random_base64url_and_hashed() {
        let a = OpaqueToken::generate();
        let b = OpaqueToken::generate();
        assert_eq!(a.token.len(), 43);
        assert!(a
            .token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash_token(&a.token));
        assert_ne!(a.hash, b.hash);
        assert!(!format!("{a:?}").contains(&a.token));
        // SHA-256 of "abc" (FIPS 180-2 test vector).
        assert_eq!(hash_token("abc")[..4], [0xba, 0x78, 0x16, 0xbf],);
        assert!(plausible_token(&a.token));
        assert!(!plausible_token(""));
        assert!(!plausible_token(&"x".repeat(257)));
    }

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_account: 3,
            per_ip: 5,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn account_limit_blocks_until_the_window_ends() {
        let l = limiter();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a@x.test", ip, t0).is_ok());
            l.record_failure_at("a@x.test", ip, t0);
        }
        let wait = l.check_at("A@X.test ", ip, t0 + Duration::from_secs(10));
        assert_eq!(wait, Err(Duration::from_secs(50)));
        // Another address or another account is not affected.
        assert!(l
            .check_at("a@x.test", Some(IpAddr::from([10, 0, 0, 2])), t0)
            .is_ok());
        assert!(l.check_at("b@x.test", ip, t0).is_ok());
        // After the window the account may try again.
        assert!(l.check_at("a@x.test", ip, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let l = limiter();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        for _ in 0..2 {
            l.record_failure_at("a@x.test", ip, t0);
        }
        l.record_success("a@x.test", ip);
        l.record_failure_at("a@x.test", ip, t0);
        l.record_failure_at("a@x.test", ip, t0);
        assert!(l.check_at("a@x.test", ip, t0).is_ok());
        // The address has 4 failures; one more on any account blocks it.
        l.record_failure_at("c@x.test", ip, t0);
        assert!(l.check_at("d@x.test", ip, t0).is_err());
        assert!(l.check_at("d@x.test", None, t0).is_ok());
    }

    #[test]
    fn expired_windows_are_swept() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..10u8 {
            l.record_failure_at("a@x.test", Some(IpAddr::from([10, 0, 0, i])), t0);
        }
        assert_eq!(l.tracked(), 20);
        l.record_failure_at("z@x.test", None, t0 + Duration::from_secs(120));
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(limit_key_ip(a), limit_key_ip(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(limit_key_ip(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
