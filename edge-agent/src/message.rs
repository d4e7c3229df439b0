//! Telemetry wire format: topics, the `{"ts", "metrics"}` message and timestamp handling.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::EdgeError;

/// One telemetry message: a timestamp and a set of metric readings taken at that instant.
///
/// Serializes as `{"ts": "2024-01-01T00:00:00.000Z", "metrics": {"vibration": 3.1}}`
/// (RFC 3339, UTC, millisecond precision). Deserializes `ts` from either an RFC 3339 string
/// or an integer of epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(serialize_with = "ser_ts", deserialize_with = "de_ts")]
    pub ts: DateTime<Utc>,
    pub metrics: BTreeMap<String, f64>,
}

impl Message {
    /// An empty message at `ts`.
    pub fn new(ts: DateTime<Utc>) -> Self {
        Self {
            ts,
            metrics: BTreeMap::new(),
        }
    }
}

/// `mp/v1/{org}/{device}/telemetry`.
pub fn telemetry_topic(org: &str, device: &str) -> String {
    format!("mp/v1/{org}/{device}/telemetry")
}

/// Checks that `name` can be used as a single MQTT topic level (org slug or device name).
pub fn validate_topic_level(kind: &str, name: &str) -> Result<(), EdgeError> {
    if name.is_empty() {
        return Err(EdgeError::Config(format!("{kind} name must not be empty")));
    }
    if name.contains(['/', '+', '#', '\0']) || name.chars().any(char::is_whitespace) {
        return Err(EdgeError::Config(format!(
            "{kind} name `{name}` must not contain '/', '+', '#', NUL or whitespace"
        )));
    }
    Ok(())
}

/// Encodes messages as one payload: a single JSON object when there is exactly one message
/// and `as_array` is false, a JSON array otherwise.
pub fn encode_payload(messages: &[Message], as_array: bool) -> Result<Vec<u8>, EdgeError> {
    match messages {
        [single] if !as_array => Ok(serde_json::to_vec(single)?),
        many => Ok(serde_json::to_vec(many)?),
    }
}

/// Formats a timestamp the way it is published: RFC 3339, UTC (`Z`), milliseconds.
pub fn format_ts(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Drops sub-millisecond precision (what gets published is what gets reported).
pub fn truncate_to_millis(ts: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ts.timestamp_millis()).unwrap_or(ts)
}

/// The current wall-clock time, truncated to milliseconds.
pub fn now_millis() -> DateTime<Utc> {
    truncate_to_millis(Utc::now())
}

/// Parses a timestamp given as RFC 3339 (`2024-01-01T00:00:00Z`), epoch milliseconds
/// (`1704067200000`), or a naive `2014-04-01 00:00:00[.fff]` / `2014-04-01T00:00:00` which is
/// taken to be UTC (the NAB corpus format).
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty timestamp".into());
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = s
            .parse()
            .map_err(|_| format!("epoch milliseconds `{s}` out of range"))?;
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("epoch milliseconds `{s}` out of range"));
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(s) {
        return Ok(ts.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(naive.and_utc());
        }
    }
    Err(format!(
        "cannot parse timestamp `{s}` (expected RFC 3339, epoch milliseconds or `YYYY-MM-DD HH:MM:SS`)"
    ))
}

pub(crate) fn ser_ts<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(ts))
}

pub(crate) fn de_ts<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| serde::de::Error::custom("epoch milliseconds out of range")),
        Raw::Text(text) => parse_timestamp(&text).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn msg() -> Message {
        let mut m = Message::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
        m.metrics.insert("bearing_temp".into(), 71.2);
        m.metrics.insert("vibration".into(), 3.1);
        m
    }

    #[test]
    fn single_payload_shape() {
        let bytes = encode_payload(&[msg()], false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ts": "2024-03-01T12:00:00.000Z",
                "metrics": {"bearing_temp": 71.2, "vibration": 3.1}
            })
        );
    }

    #[test]
    fn batch_payload_shape() {
        let bytes = encode_payload(&[msg(), msg()], false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["ts"], "2024-03-01T12:00:00.000Z");
        // A batch of one is still an array when batching is on.
        let bytes = encode_payload(&[msg()], true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.is_array());
    }

    #[test]
    fn millisecond_precision() {
        let ts = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(format_ts(&ts), "2023-11-14T22:13:20.123Z");
        assert_eq!(truncate_to_millis(ts).timestamp_subsec_nanos(), 123_000_000);
    }

    #[test]
    fn deserializes_both_ts_forms() {
        let a: Message =
            serde_json::from_str(r#"{"ts":"2024-03-01T13:00:00+01:00","metrics":{"x":1}}"#).unwrap();
        let b: Message = serde_json::from_str(r#"{"ts":1709294400000,"metrics":{"x":1}}"#).unwrap();
        assert_eq!(a.ts, b.ts);
        assert_eq!(a.ts, msg().ts);
    }

    #[test]
    fn parses_timestamps() {
        let expect = Utc.with_ymd_and_hms(2014, 4, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_timestamp("2014-04-01 00:00:00").unwrap(), expect);
        assert_eq!(parse_timestamp("2014-04-01T00:00:00").unwrap(), expect);
        assert_eq!(parse_timestamp("2014-04-01T00:00:00Z").unwrap(), expect);
        assert_eq!(parse_timestamp(" 1396310400000 ").unwrap(), expect);
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
        assert!(parse_timestamp("99999999999999999999").is_err());
    }

    #[test]
    fn topic_levels() {
        assert_eq!(telemetry_topic("acme", "gw-01"), "mp/v1/acme/gw-01/telemetry");
        assert!(validate_topic_level("device", "gw-01").is_ok());
        for bad in ["", "a/b", "a+", "#", "a b"] {
            assert!(validate_topic_level("device", bad).is_err());
        }
    }
}
