//! The API's configuration: where to listen, how to sign tokens, what to serve at `/`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use maintainpro_models::attachments::Limits as AttachmentLimits;

use crate::error::ApiError;
use crate::metrics::MetricsSources;

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
    /// Where people reach this server (`https://cmms.example.com`), used in
    /// links that leave it, such as the request-form URL in asset QR codes.
    /// Default: `http://localhost:{port}` (see [`default_public_url`]).
    pub public_url: String,
    /// Work-order attachments: largest file (default 10 MiB), accepted types
    /// (default PNG, JPEG, GIF, WebP, PDF, plain text, CSV; recognized from
    /// the content) and most files per work order (default 50).
    pub attachments: AttachmentLimits,
    /// Serve Prometheus metrics at `GET /metrics` (default true; the page is
    /// unauthenticated and shows counts, so deployments that expose the API
    /// port publicly may turn it off: `--metrics off` / `MP_METRICS=off`).
    pub metrics: bool,
    /// Stats of services running in this process, for `/metrics` and
    /// `/readyz` (default: none — only the API's own figures).
    pub metrics_sources: MetricsSources,
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
            public_url: default_public_url(bind),
            attachments: AttachmentLimits::default(),
            metrics: true,
            metrics_sources: MetricsSources::default(),
        }
    }

    /// The public URL without a trailing slash, ready for `{base}/path`.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// Rejects configurations that cannot work safely.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.jwt_secret.is_empty() {
            return Err(ApiError::Config("jwt_secret must not be empty".into()));
        }
        if self.token_ttl.is_zero() {
            return Err(ApiError::Config("token_ttl must be positive".into()));
        }
        check_public_url(&self.public_url)?;
        self.attachments.validate().map_err(ApiError::Config)?;
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
            .field("public_url", &self.public_url)
            .field("attachments", &self.attachments)
            .field("metrics", &self.metrics)
            .field("metrics_sources", &self.metrics_sources)
            .finish()
    }
}

/// `http://localhost:{port}` for loopback and wildcard binds (the machine
/// itself), else `http://{address}`. Phones scanning a QR code cannot reach
/// `localhost`: deployments set the public URL (`MP_PUBLIC_URL`).
pub fn default_public_url(bind: SocketAddr) -> String {
    let ip = bind.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{}", bind.port())
    } else {
        format!("http://{bind}")
    }
}

/// An absolute http(s) URL without query or fragment (paths are appended to it).
fn check_public_url(raw: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::Config(format!("public_url '{raw}' {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not carry credentials, a query or a fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod public_url_tests {
    use super::*;

    #[test]
    fn default_public_url_follows_the_bind_address() {
        let url = |s: &str| default_public_url(s.parse().expect("address"));
        assert_eq!(url("127.0.0.1:8080"), "http://localhost:8080");
        assert_eq!(url("0.0.0.0:9000"), "http://localhost:9000");
        assert_eq!(url("[::]:8080"), "http://localhost:8080");
        assert_eq!(url("192.168.1.20:8080"), "http://192.168.1.20:8080");
        assert_eq!(url("[fd00::1]:8080"), "http://[fd00::1]:8080");
    }

    #[test]
    fn public_url_must_be_an_http_base() {
        for good in [
            "http://localhost:8080",
            "https://cmms.example.com/",
            "https://x.example/mp",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "cmms.example.com",
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
            "https://u:p@x",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        let mut config = ApiConfig::new("127.0.0.1:1".parse().expect("address"), "k".repeat(32));
        config.public_url = "https://cmms.example.com/".into();
        assert_eq!(config.public_base(), "https://cmms.example.com");
        assert!(config.validate().is_ok());
        config.public_url = "javascript:alert(1)".into();
        assert!(config.validate().is_err());
    }
}
