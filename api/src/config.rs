//! The API's configuration: where to listen, how to sign tokens, what to serve at `/`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ApiError;

/// Default lifetime of an access token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// Default `iss` claim of issued tokens.
pub const DEFAULT_ISSUER: &str = "maintainpro";
/// Default `aud` claim of issued tokens.
pub const DEFAULT_AUDIENCE: &str = "maintainpro-api";

/// How the API runs. Build with [`ApiConfig::new`] and adjust the fields.
#[derive(Clone)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    /// HS256 signing key for access tokens. Never logged.
    pub jwt_secret: String,
    /// Lifetime of an access token (default 15 minutes).
    pub token_ttl: Duration,
    /// `iss` claim (default "maintainpro").
    pub issuer: String,
    /// `aud` claim (default "maintainpro-api").
    pub audience: String,
    /// The built web UI, served at `/` (with SPA fallback) when it exists.
    pub static_dir: Option<PathBuf>,
    /// Allow webhooks to loopback, private, link-local and unique-local
    /// addresses (default false: refused at creation and at delivery).
    pub allow_private_webhook_targets: bool,
    /// Origins (e.g. `https://app.example.com`) allowed to open the events
    /// WebSocket besides the API's own; empty means same-origin only.
    pub allowed_ws_origins: Vec<String>,
}

impl ApiConfig {
    /// A configuration with defaults for everything but the address and the key.
    pub fn new(bind: SocketAddr, jwt_secret: impl Into<String>) -> Self {
        Self {
            bind,
            jwt_secret: jwt_secret.into(),
            token_ttl: DEFAULT_TOKEN_TTL,
            issuer: DEFAULT_ISSUER.to_string(),
            audience: DEFAULT_AUDIENCE.to_string(),
            static_dir: None,
            allow_private_webhook_targets: false,
            allowed_ws_origins: Vec::new(),
        }
    }

    /// Rejects configurations that cannot work safely.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.jwt_secret.is_empty() {
            return Err(ApiError::Config("jwt_secret must not be empty".into()));
        }
        if self.token_ttl.is_zero() {
            return Err(ApiError::Config("token_ttl must be positive".into()));
        }
        if self.jwt_secret.len() < 32 {
            tracing::warn!(len = self.jwt_secret.len(), "jwt secret is shorter than 32 bytes");
        }
        Ok(())
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bind", &self.bind)
            .field("jwt_secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("static_dir", &self.static_dir)
            .field(
                "allow_private_webhook_targets",
                &self.allow_private_webhook_targets,
            )
            .field("allowed_ws_origins", &self.allowed_ws_origins)
            .finish()
    }
}
