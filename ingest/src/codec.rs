//! Decoding of MQTT telemetry: the topic `mp/v1/{org}/{device}/telemetry`
//! and the JSON payload, one message or a batch:
//! `{"ts": RFC3339 | epoch-ms, "metrics": {"name": number, …}}` or `[…]`.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

/// Why input was rejected: a stable code (stored as the dead letter's
/// reason) and a human explanation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: &'static str,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

pub const BAD_TOPIC: &str = "bad_topic";
pub const MALFORMED_PAYLOAD: &str = "malformed_payload";
pub const BAD_TIMESTAMP: &str = "bad_timestamp";
pub const FUTURE_TIMESTAMP: &str = "future_timestamp";
pub const INVALID_VALUE: &str = "invalid_value";
pub const UNKNOWN_DEVICE: &str = "unknown_device";
pub const INACTIVE_DEVICE: &str = "inactive_device";
pub const UNKNOWN_SENSOR: &str = "unknown_sensor";

/// The parts of a telemetry topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic<'a> {
    pub org: &'a str,
    pub device: &'a str,
}

pub fn parse_topic(topic: &str) -> Result<Topic<'_>, Rejection> {
    let mut parts = topic.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("mp"), Some("v1"), Some(org), Some(device), Some("telemetry"), None)
            if !org.is_empty() && !device.is_empty() =>
        {
            Ok(Topic { org, device })
        }
        _ => Err(Rejection::new(
            BAD_TOPIC,
            format!("expected mp/v1/{{org}}/{{device}}/telemetry, got '{topic}'"),
        )),
    }
}

/// One decoded sample: a timestamp and metric values, not yet validated
/// against the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub ts: DateTime<Utc>,
    /// (metric, value) where the value may still be invalid.
    pub metrics: Vec<(String, Result<f64, String>)>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Batch(Vec<RawMessage>),
    One(RawMessage),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    ts: serde_json::Value,
    metrics: serde_json::Map<String, serde_json::Value>,
}

/// Largest batch accepted in one payload.
pub const MAX_SAMPLES_PER_PAYLOAD: usize = 10_000;

/// Decodes a payload into samples. Shape and timestamp errors reject the
/// whole payload; a bad value rejects only that metric (reported in the
/// sample, so the rest of the message is still stored).
pub fn decode(
    payload: &[u8],
    now: DateTime<Utc>,
    max_future_skew: chrono::Duration,
) -> Result<Vec<Sample>, Rejection> {
    let body: Body = serde_json::from_slice(payload).map_err(|e| {
        Rejection::new(
            MALFORMED_PAYLOAD,
            format!("expected {{\"ts\": …, \"metrics\": {{…}}}} or an array of them: {e}"),
        )
    })?;
    let raw = match body {
        Body::One(m) => vec![m],
        Body::Batch(v) => v,
    };
    if raw.is_empty() {
        return Err(Rejection::new(MALFORMED_PAYLOAD, "empty batch"));
    }
    if raw.len() > MAX_SAMPLES_PER_PAYLOAD {
        return Err(Rejection::new(
            MALFORMED_PAYLOAD,
            format!(
                "batch of {} messages exceeds {MAX_SAMPLES_PER_PAYLOAD}",
                raw.len()
            ),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let ts =
                parse_ts(&m.ts).map_err(|d| Rejection::new(BAD_TIMESTAMP, format!("message {i}: {d}")))?;
            if ts - now > max_future_skew {
                return Err(Rejection::new(
                    FUTURE_TIMESTAMP,
                    format!(
                        "message {i}: {ts} is more than {}s ahead of the server clock",
                        max_future_skew.num_seconds()
                    ),
                ));
            }
            if m.metrics.is_empty() {
                return Err(Rejection::new(
                    MALFORMED_PAYLOAD,
                    format!("message {i}: no metrics"),
                ));
            }
            let metrics = m
                .metrics
                .into_iter()
                .map(|(name, v)| {
                    let value = match v.as_f64() {
                        Some(f) if f.is_finite() => Ok(f),
                        _ => Err(format!("'{name}' is {v}, not a finite number")),
                    };
                    (name, value)
                })
                .collect();
            Ok(Sample { ts, metrics })
        })
        .collect()
}

fn parse_ts(v: &serde_json::Value) -> Result<DateTime<Utc>, String> {
    match v {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("'{s}' is not RFC 3339 ({e})")),
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| format!("{n} is not a valid epoch-milliseconds timestamp")),
        other => Err(format!(
            "ts must be an RFC 3339 string or epoch milliseconds, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    fn dec(s: &str) -> Result<Vec<Sample>, Rejection> {
        decode(s.as_bytes(), now(), chrono::Duration::minutes(5))
    }

    #[test]
    fn topic() {
        assert_eq!(
            parse_topic("mp/v1/acme/gw-1/telemetry").unwrap(),
            Topic {
                org: "acme",
                device: "gw-1"
            }
        );
        for bad in [
            "mp/v1/acme/telemetry",
            "mp/v1//gw/telemetry",
            "mp/v2/a/b/telemetry",
            "mp/v1/a/b/telemetry/x",
        ] {
            assert_eq!(parse_topic(bad).unwrap_err().reason, BAD_TOPIC, "{bad}");
        }
    }

    #[test]
    fn single_and_batch() {
        let one = dec(r#"{"ts":"2026-11-24T11:59:00Z","metrics":{"t":71.5,"v":2}}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].metrics.len(), 2);
        let batch = dec(r#"[{"ts":1795000000000,"metrics":{"t":1}},{"ts":"2026-11-24T11:00:00+01:00","metrics":{"t":2}}]"#).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(
            batch[1].ts,
            "2026-11-24T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn rejections() {
        assert_eq!(dec("not json").unwrap_err().reason, MALFORMED_PAYLOAD);
        assert_eq!(dec("[]").unwrap_err().reason, MALFORMED_PAYLOAD);
        assert_eq!(
            dec(r#"{"ts":"2026-11-24T11:00:00Z","metrics":{}}"#)
                .unwrap_err()
                .reason,
            MALFORMED_PAYLOAD
        );
        assert_eq!(
            dec(r#"{"ts":"yesterday","metrics":{"t":1}}"#).unwrap_err().reason,
            BAD_TIMESTAMP
        );
        assert_eq!(
            dec(r#"{"ts":"2027-01-01T00:00:00Z","metrics":{"t":1}}"#)
                .unwrap_err()
                .reason,
            FUTURE_TIMESTAMP
        );
        assert_eq!(
            dec(r#"{"ts":"2026-11-24T11:00:00Z","metrics":{"t":1},"x":1}"#)
                .unwrap_err()
                .reason,
            MALFORMED_PAYLOAD
        );
    }

    #[test]
    fn non_numeric_value_rejects_only_that_metric() {
        let s = dec(r#"{"ts":"2026-11-24T11:00:00Z","metrics":{"t":"hot","v":3.5,"n":null}}"#).unwrap();
        let bad: Vec<_> = s[0]
            .metrics
            .iter()
            .filter(|(_, v)| v.is_err())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(bad, vec!["n", "t"]);
        assert!(s[0].metrics.iter().any(|(n, v)| n == "v" && *v == Ok(3.5)));
    }

    proptest! {
        /// The decoder never panics, whatever the bytes.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, now(), chrono::Duration::minutes(5));
        }

        /// Valid messages roundtrip.
        #[test]
        fn roundtrip(ms in 0i64..1_790_000_000_000, vals in proptest::collection::btree_map("[a-z]{1,8}", -1e9f64..1e9, 1..8)) {
            let payload = serde_json::json!({"ts": ms, "metrics": vals});
            let s = decode(payload.to_string().as_bytes(), now(), chrono::Duration::minutes(5)).unwrap();
            prop_assert_eq!(s[0].ts.timestamp_millis(), ms);
            prop_assert_eq!(s[0].metrics.len(), vals.len());
            for (name, v) in &s[0].metrics {
                prop_assert_eq!(v.as_ref().ok(), vals.get(name));
            }
        }
    }
}
