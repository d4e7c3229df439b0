//! MQTT broker address parsing (`mqtt://user:pass@host:port`).

use crate::EdgeError;

/// Default MQTT (plain TCP) port.
pub const DEFAULT_MQTT_PORT: u16 = 1883;

/// Where and as whom to connect. Plain TCP only (no TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl MqttTarget {
    /// Parses `mqtt://host:port`, `tcp://host:port` or bare `host:port` (port defaults to
    /// 1883; `user:pass@` is optional and may be percent-encoded; IPv6 hosts go in brackets).
    pub fn from_url(url: &str, client_id: &str) -> Result<Self, EdgeError> {
        let bad = |reason: &str| EdgeError::InvalidUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        let rest = match trimmed.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "mqtt" | "tcp" => rest,
                "mqtts" | "ssl" | "tls" | "ws" | "wss" => {
                    return Err(bad("only plain TCP (mqtt:// or tcp://) is supported"))
                }
                _ => return Err(bad("unknown scheme (use mqtt:// or tcp://)")),
            },
            None => trimmed,
        };
        // Allow a single trailing slash, nothing else after the authority.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("paths, queries and fragments are not supported"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user = percent_decode(user).ok_or_else(|| bad("bad percent-encoding"))?;
                if user.is_empty() {
                    return Err(bad("empty username"));
                }
                let pass = pass
                    .map(|p| percent_decode(p).ok_or_else(|| bad("bad percent-encoding")))
                    .transpose()?;
                (Some(user), pass)
            }
        };
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 literal"))?;
            let port = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix(':')
                        .ok_or_else(|| bad("garbage after IPv6 literal"))?,
                ),
            };
            (host.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if host.contains(':') && !hostport.starts_with('[') {
            return Err(bad("IPv6 hosts must be written in brackets, e.g. [::1]:1883"));
        }
        let port = match port {
            None => DEFAULT_MQTT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("port must be a number in 1..=65535")),
                Ok(p) => p,
            },
        };
        if client_id.starts_with(' ') {
            return Err(bad("client id must not start with a space"));
        }
        Ok(Self {
            host,
            port,
            client_id: client_id.to_string(),
            username,
            password,
        })
    }

    /// `host:port` for log messages (never includes credentials).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Hides the password of `user:pass@` in error messages.
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_schemes_and_defaults() {
        for url in ["mqtt://127.0.0.1:1883", "tcp://127.0.0.1:1883", "127.0.0.1:1883"] {
            let t = MqttTarget::from_url(url, "c1").unwrap();
            assert_eq!(t.host, "127.0.0.1");
            assert_eq!(t.port, 1883);
            assert_eq!(t.client_id, "c1");
            assert_eq!(t.username, None);
            assert_eq!(t.password, None);
        }
        let t = MqttTarget::from_url("mqtt://broker.local", "c").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("broker.local", 1883));
        let t = MqttTarget::from_url("broker.local/", "c").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("broker.local", 1883));
        let t = MqttTarget::from_url("MQTT://h:2883", "c").unwrap();
        assert_eq!(t.port, 2883);
    }

    #[test]
    fn parses_credentials() {
        let t = MqttTarget::from_url("mqtt://alice:s3cr%40t@h:1884", "c").unwrap();
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.password.as_deref(), Some("s3cr@t"));
        assert_eq!(t.port, 1884);
        let t = MqttTarget::from_url("bob@h", "c").unwrap();
        assert_eq!(t.username.as_deref(), Some("bob"));
        assert_eq!(t.password, None);
        let t = MqttTarget::from_url("u:p@w@h", "c").unwrap();
        assert_eq!(t.password.as_deref(), Some("p@w"));
    }

    #[test]
    fn parses_ipv6() {
        let t = MqttTarget::from_url("mqtt://[::1]:1999", "c").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 1999));
        assert_eq!(t.addr(), "[::1]:1999");
        let t = MqttTarget::from_url("[::1]", "c").unwrap();
        assert_eq!(t.port, 1883);
    }

    #[test]
    fn rejects_garbage() {
        for url in [
            "",
            "mqtt://",
            "mqtts://h:8883",
            "http://h",
            "h:0",
            "h:70000",
            "h:abc",
            "mqtt://h:1883/topic",
            "::1",
            ":1883",
            "[::1",
        ] {
            assert!(MqttTarget::from_url(url, "c").is_err(), "{url} should fail");
        }
    }

    #[test]
    fn error_does_not_leak_password() {
        let err = MqttTarget::from_url("mqtt://u:hunter2@h:0", "c").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
