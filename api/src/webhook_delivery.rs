//! The webhook delivery worker: turns outbox events into deliveries, claims
//! due ones (`FOR UPDATE SKIP LOCKED`, so several instances can run), POSTs
//! them signed with the Standard Webhooks scheme and records each attempt
//! with exponential backoff. Also the target check that keeps webhooks away
//! from loopback and private networks (at creation and again before each
//! send, against DNS rebinding: the checked addresses are the ones connected to).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use maintainpro_models::webhooks::{self, AttemptOutcome, Backoff, ClaimedDelivery};
use maintainpro_models::{Db, Result as ModelResult, Tenant};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use url::{Host, Url};

/// Prefix of generated secrets (Standard Webhooks: `whsec_` + base64 key).
pub const SECRET_PREFIX: &str = "whsec_";

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Pause between passes when there was nothing to do.
    pub interval: Duration,
    /// Retry schedule (base delay and attempts before `dead`).
    pub backoff: Backoff,
    /// Per-request timeout (connect + response).
    pub timeout: Duration,
    /// Deliveries claimed per organization and pass.
    pub batch: i64,
    /// Allow loopback/private targets (tests, closed networks).
    pub allow_private_targets: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(10),
            batch: 50,
            allow_private_targets: false,
        }
    }
}

/// Why a target URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("URL must not contain credentials")]
    Credentials,
    #[error("cannot resolve host {0}")]
    Unresolvable(String),
    #[error("{0} is a loopback, private, link-local or otherwise non-public address")]
    NonPublic(IpAddr),
}

/// A checked target: the URL and the addresses to connect to (empty when the
/// host may be resolved freely, i.e. private targets are allowed).
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses and checks a webhook URL: http(s) only, no credentials, and unless
/// `allow_private`, every address the host is or resolves to must be public.
pub async fn check_target(raw: &str, allow_private: bool) -> Result<Target, TargetError> {
    let url = Url::parse(raw.trim()).map_err(|e| TargetError::Invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TargetError::Invalid("no port".into()))?;
    let host = url
        .host()
        .ok_or_else(|| TargetError::Invalid("no host".into()))?
        .to_owned();
    let host_str = url.host_str().unwrap_or_default().to_string();
    if allow_private {
        return Ok(Target {
            url,
            host: host_str,
            addrs: Vec::new(),
        });
    }
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Host::Domain(name) => {
            let lower = name.trim_end_matches('.').to_ascii_lowercase();
            if lower == "localhost" || lower.ends_with(".localhost") {
                return Err(TargetError::NonPublic(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            }
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((lower.as_str(), port))
                .await
                .map_err(|_| TargetError::Unresolvable(lower.clone()))?
                .collect();
            if resolved.is_empty() {
                return Err(TargetError::Unresolvable(lower));
            }
            resolved
        }
    };
    if let Some(bad) = addrs.iter().map(|a| a.ip()).find(|ip| !is_public(*ip)) {
        return Err(TargetError::NonPublic(bad));
    }
    Ok(Target {
        url,
        host: host_str,
        addrs,
    })
}

/// False for loopback, private, link-local, unique-local, unspecified,
/// shared (CGNAT), broadcast, multicast and documentation addresses, and for
/// IPv6 addresses that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || o[0] >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in the low 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated) fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6].iter().all(|x| *x == 0)) // IPv4-compatible ::a.b.c.d
}

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The HMAC key of a secret (the base64 part of `whsec_…`, else the raw bytes).
fn secret_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| BASE64.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` keyed with the secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret_key(secret);
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Sends one delivery and says how it went (never errors: failures are outcomes).
pub async fn send(delivery: &ClaimedDelivery, config: &DeliveryConfig) -> AttemptOutcome {
    let failed = |error: String| AttemptOutcome::Failed {
        status_code: None,
        error,
    };
    // Re-check the target now (DNS may have changed since creation) and
    // connect to exactly the addresses that were checked.
    let target = match check_target(&delivery.url, config.allow_private_targets).await {
        Ok(t) => t,
        Err(e) => return failed(format!("target refused: {e}")),
    };
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("MaintAInPro-Webhooks/1");
    if !target.addrs.is_empty() && target.url.domain().is_some() {
        builder = builder.resolve_to_addrs(&target.host, &target.addrs);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return failed(format!("http client: {e}")),
    };
    let body = match serde_json::to_vec(&delivery.message()) {
        Ok(b) => b,
        Err(e) => return failed(format!("cannot encode event: {e}")),
    };
    let msg_id = format!("evt_{}", delivery.event_id);
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(&delivery.secret, &msg_id, timestamp, &body);
    let response = client
        .post(target.url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match response {
        Ok(res) if res.status().is_success() => AttemptOutcome::Succeeded {
            status_code: res.status().as_u16(),
        },
        Ok(res) => AttemptOutcome::Failed {
            status_code: Some(res.status().as_u16()),
            error: format!("receiver answered {}", res.status()),
        },
        Err(e) if e.is_timeout() => failed(format!("timed out after {:?}", config.timeout)),
        Err(e) => failed(format!("request failed: {e}")),
    }
}

/// One pass: enqueue new events as deliveries, then send every due delivery
/// of every organization with webhooks. Returns the attempts made.
pub async fn deliver_due(db: &Db, config: &DeliveryConfig) -> ModelResult<usize> {
    let mut tx = db.system().await?;
    let orgs = webhooks::organizations_with_webhooks(&mut tx).await?;
    tx.commit().await?;
    let mut attempts = 0;
    for org in orgs {
        let tenant = Tenant::system(org, "webhooks");
        let mut tx = db.tenant(org).await?;
        webhooks::enqueue(&mut tx, &tenant).await?;
        tx.commit().await?;

        let lease = config.timeout.saturating_mul(2) + Duration::from_secs(30);
        let mut tx = db.tenant(org).await?;
        let claimed = webhooks::claim_due(&mut tx, config.batch, lease).await?;
        tx.commit().await?;

        let sends = claimed.iter().map(|d| async move { (d, send(d, config).await) });
        let results = futures::future::join_all(sends).await;
        let mut tx = db.tenant(org).await?;
        for (delivery, outcome) in &results {
            let status = webhooks::record_attempt(&mut tx, delivery.id, outcome, &config.backoff).await?;
            if let AttemptOutcome::Failed { error, .. } = outcome {
                tracing::info!(
                    delivery = delivery.id,
                    webhook = %delivery.webhook_id,
                    attempt = delivery.attempt + 1,
                    status = status.as_str(),
                    error = %error,
                    "webhook delivery failed"
                );
            }
        }
        tx.commit().await?;
        attempts += results.len();
    }
    Ok(attempts)
}

/// Delivers until `shutdown` is cancelled: a pass, then a pause of
/// `config.interval` (shorter while there is work).
pub async fn run(db: Db, config: DeliveryConfig, shutdown: CancellationToken) {
    tracing::info!("webhook delivery worker started");
    loop {
        let pause = match deliver_due(&db, &config).await {
            Ok(n) if n > 0 => Duration::from_millis(10),
            Ok(_) => config.interval,
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery pass failed");
                config.interval.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("webhook delivery worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!is_public(ip), "{ip} must not be public");
        }
        for ip in ["93.184.216.34", "172.32.0.1", "8.8.8.8", "2606:4700::1111"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_public(ip), "{ip} must be public");
        }
    }

    #[tokio::test]
    async fn targets_are_checked() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "http://[::1]:8080/",
            "http://localhost/x",
            "http://api.localhost/x",
            "http://[fe80::1]/",
        ] {
            assert!(
                matches!(check_target(bad, false).await, Err(TargetError::NonPublic(_))),
                "{bad}"
            );
        }
        assert_eq!(
            check_target("ftp://example.com/", false).await.err(),
            Some(TargetError::Scheme)
        );
        assert_eq!(
            check_target("http://u:p@93.184.216.34/", false).await.err(),
            Some(TargetError::Credentials)
        );
        assert!(check_target("http://93.184.216.34/hook", false).await.is_ok());
        assert!(check_target("http://127.0.0.1:9/hook", true).await.is_ok());
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // From the Standard Webhooks specification's reference test vector.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
