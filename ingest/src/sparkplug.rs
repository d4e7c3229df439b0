//! Sparkplug B, the second telemetry codec: the topic namespace
//! `spBv1.0/{group_id}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{edge_node_id}[/{device_id}]`,
//! the protobuf `Payload` (hand-written prost messages holding only the
//! fields ingest needs; unknown fields are skipped) and the per-edge-node
//! session state (alias maps from births, sequence numbers, bdSeq).
//!
//! Mapping onto the registry (see README "Sending telemetry"):
//! - `group_id` is the organization slug;
//! - an edge node's own metrics (N* messages) belong to the device named
//!   `{edge_node_id}`; a Sparkplug device's (D* messages) to the device named
//!   `{edge_node_id}.{device_id}`;
//! - a metric name is the sensor metric, with `/` (Sparkplug's folder
//!   separator, not allowed in sensor metrics) replaced by `.`;
//! - control metrics (`bdSeq`, `Node Control/*`, `Device Control/*`,
//!   `Properties/*`) are protocol, never readings.
//!
//! Everything here is pure (no I/O) and property-tested; the writer resolves
//! devices and sensors and stores what [`Sessions::apply`] returns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use crate::codec::{Rejection, BAD_TIMESTAMP, BAD_TOPIC, FUTURE_TIMESTAMP, MALFORMED_PAYLOAD};

/// The Sparkplug B topic namespace.
pub const NAMESPACE: &str = "spBv1.0";

/// The topic filters ingest subscribes to (commands and host STATE messages
/// are not telemetry and are not subscribed).
pub const FILTERS: [&str; 6] = [
    "spBv1.0/+/NBIRTH/+",
    "spBv1.0/+/NDATA/+",
    "spBv1.0/+/NDEATH/+",
    "spBv1.0/+/DBIRTH/+/+",
    "spBv1.0/+/DDATA/+/+",
    "spBv1.0/+/DDEATH/+/+",
];

/// A DATA metric referred to by an alias no birth defined.
pub const UNKNOWN_ALIAS: &str = "unknown_alias";
/// A DATA message without a single numeric or boolean value.
pub const NO_USABLE_METRICS: &str = "no_usable_metrics";

/// Largest number of metrics accepted in one payload.
pub const MAX_METRICS_PER_PAYLOAD: usize = 10_000;

/// A rebirth is requested from one edge node at most this often.
pub const REBIRTH_INTERVAL: Duration = Duration::from_secs(10);

/// Whether a topic is in the Sparkplug B namespace (the codec router).
pub fn is_sparkplug(topic: &str) -> bool {
    topic
        .strip_prefix(NAMESPACE)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The protobuf messages of `sparkplug_b.proto`, only the fields ingest
/// reads. Dataset, template and extension values are kept as raw bytes:
/// ingest only needs to know they were there (they are skipped).
pub mod proto {
    /// `org.eclipse.tahu.protobuf.Payload`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Payload {
        /// Epoch milliseconds.
        #[prost(uint64, optional, tag = "1")]
        pub timestamp: Option<u64>,
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
        /// 0..=255, wrapping, per edge node.
        #[prost(uint64, optional, tag = "3")]
        pub seq: Option<u64>,
    }

    /// `Payload.Metric`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(uint64, optional, tag = "2")]
        pub alias: Option<u64>,
        /// Epoch milliseconds.
        #[prost(uint64, optional, tag = "3")]
        pub timestamp: Option<u64>,
        /// A [`super::datatype`] code.
        #[prost(uint32, optional, tag = "4")]
        pub datatype: Option<u32>,
        #[prost(bool, optional, tag = "7")]
        pub is_null: Option<bool>,
        #[prost(oneof = "metric::Value", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19")]
        pub value: Option<metric::Value>,
    }

    pub mod metric {
        /// The `value` oneof of a metric.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// Int8/16/32 (two's complement) and UInt8/16(/32).
            #[prost(uint32, tag = "10")]
            IntValue(u32),
            /// Int64 (two's complement), UInt32/64, DateTime.
            #[prost(uint64, tag = "11")]
            LongValue(u64),
            #[prost(float, tag = "12")]
            FloatValue(f32),
            #[prost(double, tag = "13")]
            DoubleValue(f64),
            #[prost(bool, tag = "14")]
            BooleanValue(bool),
            #[prost(string, tag = "15")]
            StringValue(String),
            #[prost(bytes = "vec", tag = "16")]
            BytesValue(Vec<u8>),
            #[prost(bytes = "vec", tag = "17")]
            DatasetValue(Vec<u8>),
            #[prost(bytes = "vec", tag = "18")]
            TemplateValue(Vec<u8>),
            #[prost(bytes = "vec", tag = "19")]
            ExtensionValue(Vec<u8>),
        }
    }
}

/// Sparkplug B data type codes (the ones ingest interprets).
pub mod datatype {
    pub const INT8: u32 = 1;
    pub const INT16: u32 = 2;
    pub const INT32: u32 = 3;
    pub const INT64: u32 = 4;
    pub const UINT8: u32 = 5;
    pub const UINT16: u32 = 6;
    pub const UINT32: u32 = 7;
    pub const UINT64: u32 = 8;
    pub const FLOAT: u32 = 9;
    pub const DOUBLE: u32 = 10;
    pub const BOOLEAN: u32 = 11;
    pub const STRING: u32 = 12;
    pub const DATETIME: u32 = 13;
}

/// The Sparkplug message types ingest handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    NBirth,
    NData,
    NDeath,
    DBirth,
    DData,
    DDeath,
}

impl MessageType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NBIRTH" => Self::NBirth,
            "NDATA" => Self::NData,
            "NDEATH" => Self::NDeath,
            "DBIRTH" => Self::DBirth,
            "DDATA" => Self::DData,
            "DDEATH" => Self::DDeath,
            _ => return None,
        })
    }

    fn is_device(self) -> bool {
        matches!(self, Self::DBirth | Self::DData | Self::DDeath)
    }

    pub fn is_birth(self) -> bool {
        matches!(self, Self::NBirth | Self::DBirth)
    }

    pub fn is_data(self) -> bool {
        matches!(self, Self::NData | Self::DData)
    }

    pub fn is_death(self) -> bool {
        matches!(self, Self::NDeath | Self::DDeath)
    }
}

/// The parts of a Sparkplug B topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpTopic<'a> {
    /// The organization slug.
    pub group: &'a str,
    pub kind: MessageType,
    pub edge_node: &'a str,
    /// Present exactly for D* messages.
    pub device: Option<&'a str>,
}

impl SpTopic<'_> {
    /// The registered device name this message belongs to.
    pub fn device_name(&self) -> String {
        device_name(self.edge_node, self.device)
    }
}

/// `{edge_node_id}` or `{edge_node_id}.{device_id}`.
pub fn device_name(edge_node: &str, device: Option<&str>) -> String {
    match device {
        Some(d) => format!("{edge_node}.{d}"),
        None => edge_node.to_string(),
    }
}

/// The sensor metric for a Sparkplug metric name (`/` becomes `.`).
pub fn sensor_metric(name: &str) -> String {
    name.replace('/', ".")
}

/// Metrics that are Sparkplug protocol, not measurements.
fn is_control(name: &str) -> bool {
    name == "bdSeq"
        || name.starts_with("Node Control/")
        || name.starts_with("Device Control/")
        || name.starts_with("Properties/")
}

pub fn parse_topic(topic: &str) -> Result<SpTopic<'_>, Rejection> {
    let bad = || {
        Rejection::new(
            BAD_TOPIC,
            format!(
                "expected spBv1.0/{{group}}/{{NBIRTH|NDATA|NDEATH}}/{{edge_node}} or \
                 spBv1.0/{{group}}/{{DBIRTH|DDATA|DDEATH}}/{{edge_node}}/{{device}}, got '{topic}'"
            ),
        )
    };
    let parts: Vec<&str> = topic.split('/').collect();
    if parts.len() < 4 || parts.len() > 5 || parts[0] != NAMESPACE || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let kind = MessageType::parse(parts[2]).ok_or_else(bad)?;
    let device = parts.get(4).copied();
    if kind.is_device() != device.is_some() {
        return Err(bad());
    }
    Ok(SpTopic {
        group: parts[1],
        kind,
        edge_node: parts[3],
        device,
    })
}

/// Decodes the protobuf payload.
pub fn decode_payload(bytes: &[u8]) -> Result<proto::Payload, Rejection> {
    let payload = <proto::Payload as prost::Message>::decode(bytes).map_err(|e| {
        Rejection::new(
            MALFORMED_PAYLOAD,
            format!("not a Sparkplug B protobuf Payload: {e}"),
        )
    })?;
    if payload.metrics.len() > MAX_METRICS_PER_PAYLOAD {
        return Err(Rejection::new(
            MALFORMED_PAYLOAD,
            format!(
                "{} metrics exceed {MAX_METRICS_PER_PAYLOAD}",
                payload.metrics.len()
            ),
        ));
    }
    Ok(payload)
}

/// What a metric's value is to ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Number(f64),
    /// A number that is not finite.
    Invalid(String),
    /// `is_null`, or no value at all.
    Null,
    /// A type that is not a reading (string, bytes, dataset, …).
    Unsupported(&'static str),
}

/// Interprets a metric's value; `datatype` is the metric's own or the one
/// its birth declared (signed integers travel as two's complement).
pub fn metric_value(metric: &proto::Metric, datatype: Option<u32>) -> MetricValue {
    use proto::metric::Value as V;
    if metric.is_null == Some(true) {
        return MetricValue::Null;
    }
    let number = match &metric.value {
        None => return MetricValue::Null,
        Some(V::IntValue(v)) => match datatype {
            Some(datatype::INT8) => f64::from(*v as u8 as i8),
            Some(datatype::INT16) => f64::from(*v as u16 as i16),
            Some(datatype::INT32) => f64::from(*v as i32),
            _ => f64::from(*v),
        },
        Some(V::LongValue(v)) => match datatype {
            Some(datatype::DATETIME) => return MetricValue::Unsupported("datetime"),
            Some(datatype::INT64) => *v as i64 as f64,
            _ => *v as f64,
        },
        Some(V::FloatValue(v)) => f64::from(*v),
        Some(V::DoubleValue(v)) => *v,
        Some(V::BooleanValue(b)) => f64::from(u8::from(*b)),
        Some(V::StringValue(_)) => return MetricValue::Unsupported("string"),
        Some(V::BytesValue(_)) => return MetricValue::Unsupported("bytes"),
        Some(V::DatasetValue(_)) => return MetricValue::Unsupported("dataset"),
        Some(V::TemplateValue(_)) => return MetricValue::Unsupported("template"),
        Some(V::ExtensionValue(_)) => return MetricValue::Unsupported("extension"),
    };
    if number.is_finite() {
        MetricValue::Number(number)
    } else {
        MetricValue::Invalid(format!("{number} is not a finite number"))
    }
}

/// A metric as a birth declared it.
#[derive(Debug, Clone, Default)]
struct AliasMap {
    by_alias: HashMap<u64, (String, Option<u32>)>,
    datatype_by_name: HashMap<String, u32>,
}

impl AliasMap {
    fn from_birth(metrics: &[proto::Metric]) -> Self {
        let mut map = Self::default();
        for m in metrics {
            let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            if let Some(alias) = m.alias {
                map.by_alias.insert(alias, (name.to_string(), m.datatype));
            }
            if let Some(dt) = m.datatype {
                map.datatype_by_name.insert(name.to_string(), dt);
            }
        }
        map
    }
}

/// What ingest knows of one edge node since its last birth.
#[derive(Debug, Clone, Default)]
struct NodeState {
    last_seq: Option<u8>,
    bd_seq: Option<u64>,
    aliases: AliasMap,
    devices: HashMap<String, AliasMap>,
    rebirth_requested: Option<Instant>,
}

/// One value to store (metric name as sent, not yet mapped to a sensor).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: String,
    pub ts: DateTime<Utc>,
    pub value: Result<f64, String>,
}

/// The outcome of one Sparkplug message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    pub readings: Vec<Reading>,
    /// DATA metrics whose alias no birth defined.
    pub unknown_aliases: Vec<u64>,
    /// Metrics that are neither readable nor named (explanations).
    pub invalid: Vec<String>,
    /// String/bytes/dataset/template/… metrics skipped.
    pub unsupported: u64,
    /// Null metrics skipped.
    pub nulls: u64,
    /// `(expected, received)` when the sequence number jumped.
    pub seq_gap: Option<(u8, u64)>,
    /// Device names that went offline (a death).
    pub died: Vec<String>,
    /// The device name that (re)appeared (a birth).
    pub born: Option<String>,
    /// An NDEATH whose bdSeq did not match the current session (an old
    /// connection's will): ignored.
    pub stale_death: bool,
}

/// Session state of every edge node seen, keyed by (group, edge node).
#[derive(Debug, Default)]
pub struct Sessions {
    nodes: HashMap<(String, String), NodeState>,
}

fn epoch_ms(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn bd_seq(metrics: &[proto::Metric]) -> Option<u64> {
    use proto::metric::Value as V;
    metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| match m.value {
            Some(V::LongValue(v)) => Some(v),
            Some(V::IntValue(v)) => Some(u64::from(v)),
            _ => None,
        })
}

impl Sessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`Self::track_seq`] then [`Self::apply_message`], the gap reported
    /// in the result.
    pub fn apply(
        &mut self,
        topic: &SpTopic<'_>,
        payload: &proto::Payload,
        now: DateTime<Utc>,
        max_future_skew: chrono::Duration,
    ) -> Result<Decoded, Rejection> {
        let gap = self.track_seq(topic, payload.seq);
        let mut out = self.apply_message(topic, payload, now, max_future_skew)?;
        out.seq_gap = gap;
        Ok(out)
    }

    /// Checks a message's sequence number: one counter per edge node,
    /// across its devices, 0..=255 wrapping; NBIRTH restarts it, NDEATH
    /// carries none. Returns `(expected, received)` on a gap.
    pub fn track_seq(&mut self, topic: &SpTopic<'_>, seq: Option<u64>) -> Option<(u8, u64)> {
        let key = (topic.group.to_string(), topic.edge_node.to_string());
        let node = self.nodes.entry(key).or_default();
        let mut gap = None;
        match (topic.kind, seq) {
            (MessageType::NBirth, seq) => node.last_seq = seq.and_then(|s| u8::try_from(s).ok()),
            (MessageType::NDeath, _) | (_, None) => {}
            (_, Some(seq)) => {
                if let Some(last) = node.last_seq {
                    let expected = last.wrapping_add(1);
                    if seq != u64::from(expected) {
                        gap = Some((expected, seq));
                    }
                }
                node.last_seq = u8::try_from(seq).ok();
            }
        }
        gap
    }

    /// Applies one message to the session state (births define aliases,
    /// deaths forget them) and returns its readings. State is updated even
    /// when the message is then rejected (a birth's aliases stand although
    /// its timestamps are bad). Sequence numbers: [`Self::track_seq`].
    pub fn apply_message(
        &mut self,
        topic: &SpTopic<'_>,
        payload: &proto::Payload,
        now: DateTime<Utc>,
        max_future_skew: chrono::Duration,
    ) -> Result<Decoded, Rejection> {
        let key = (topic.group.to_string(), topic.edge_node.to_string());
        let node = self.nodes.entry(key).or_default();
        let mut out = Decoded::default();

        let name = topic.device_name();
        match topic.kind {
            MessageType::NBirth => {
                node.aliases = AliasMap::from_birth(&payload.metrics);
                node.bd_seq = bd_seq(&payload.metrics);
                node.rebirth_requested = None;
                out.born = Some(name);
            }
            MessageType::DBirth => {
                let device = topic.device.unwrap_or_default().to_string();
                node.devices
                    .insert(device, AliasMap::from_birth(&payload.metrics));
                out.born = Some(name);
            }
            MessageType::NDeath => {
                let death = bd_seq(&payload.metrics);
                if matches!((node.bd_seq, death), (Some(b), Some(d)) if b != d) {
                    out.stale_death = true;
                    return Ok(out);
                }
                out.died.push(name);
                let mut devices: Vec<String> = node
                    .devices
                    .keys()
                    .map(|d| device_name(topic.edge_node, Some(d)))
                    .collect();
                devices.sort();
                out.died.extend(devices);
                let rebirth_requested = node.rebirth_requested;
                *node = NodeState {
                    rebirth_requested,
                    ..NodeState::default()
                };
                return Ok(out);
            }
            MessageType::DDeath => {
                node.devices.remove(topic.device.unwrap_or_default());
                out.died.push(name);
                return Ok(out);
            }
            MessageType::NData | MessageType::DData => {}
        }

        let empty = AliasMap::default();
        let aliases = match topic.device {
            Some(d) => node.devices.get(d).unwrap_or(&empty),
            None => &node.aliases,
        };
        let mut bad_ts = None;
        let mut future = None;
        for (i, m) in payload.metrics.iter().enumerate() {
            let (metric, datatype) = match (m.name.as_deref().filter(|n| !n.is_empty()), m.alias) {
                (Some(n), _) => (
                    n.to_string(),
                    m.datatype.or(aliases.datatype_by_name.get(n).copied()),
                ),
                (None, Some(alias)) => match aliases.by_alias.get(&alias) {
                    Some((n, dt)) => (n.clone(), m.datatype.or(*dt)),
                    None => {
                        out.unknown_aliases.push(alias);
                        continue;
                    }
                },
                (None, None) => {
                    out.invalid
                        .push(format!("metric #{i} has neither a name nor an alias"));
                    continue;
                }
            };
            if is_control(&metric) {
                continue;
            }
            let value = match metric_value(m, datatype) {
                MetricValue::Number(v) => Ok(v),
                MetricValue::Invalid(why) => Err(format!("'{metric}': {why}")),
                MetricValue::Null => {
                    out.nulls += 1;
                    continue;
                }
                MetricValue::Unsupported(_) => {
                    out.unsupported += 1;
                    continue;
                }
            };
            let Some(ms) = m.timestamp.or(payload.timestamp) else {
                bad_ts.get_or_insert_with(|| format!("metric '{metric}' and the payload have no timestamp"));
                continue;
            };
            let Some(ts) = epoch_ms(ms) else {
                bad_ts.get_or_insert_with(|| {
                    format!("metric '{metric}': {ms} is not a valid epoch-milliseconds timestamp")
                });
                continue;
            };
            if ts - now > max_future_skew {
                future.get_or_insert_with(|| {
                    format!(
                        "metric '{metric}': {ts} is more than {}s ahead of the server clock",
                        max_future_skew.num_seconds()
                    )
                });
                continue;
            }
            out.readings.push(Reading { metric, ts, value });
        }
        if let Some(detail) = bad_ts {
            return Err(Rejection::new(BAD_TIMESTAMP, detail));
        }
        if let Some(detail) = future {
            return Err(Rejection::new(FUTURE_TIMESTAMP, detail));
        }
        if topic.kind.is_data()
            && out.readings.is_empty()
            && out.unknown_aliases.is_empty()
            && out.invalid.is_empty()
        {
            return Err(Rejection::new(
                NO_USABLE_METRICS,
                format!(
                    "{} metric(s), none numeric or boolean ({} of an unsupported type, {} null)",
                    payload.metrics.len(),
                    out.unsupported,
                    out.nulls
                ),
            ));
        }
        Ok(out)
    }

    /// Whether to ask this edge node for a rebirth now (at most once per
    /// [`REBIRTH_INTERVAL`], and again only after a birth or the interval).
    pub fn should_request_rebirth(&mut self, group: &str, edge_node: &str, now: Instant) -> bool {
        let node = self
            .nodes
            .entry((group.to_string(), edge_node.to_string()))
            .or_default();
        match node.rebirth_requested {
            Some(at) if now.duration_since(at) < REBIRTH_INTERVAL => false,
            _ => {
                node.rebirth_requested = Some(now);
                true
            }
        }
    }
}

/// The NCMD topic and payload asking an edge node to publish its births
/// again (`Node Control/Rebirth = true`).
pub fn rebirth_command(group: &str, edge_node: &str, now: DateTime<Utc>) -> (String, Vec<u8>) {
    let payload = proto::Payload {
        timestamp: u64::try_from(now.timestamp_millis()).ok(),
        metrics: vec![proto::Metric {
            name: Some("Node Control/Rebirth".into()),
            datatype: Some(datatype::BOOLEAN),
            value: Some(proto::metric::Value::BooleanValue(true)),
            ..Default::default()
        }],
        seq: None,
    };
    (
        format!("{NAMESPACE}/{group}/NCMD/{edge_node}"),
        prost::Message::encode_to_vec(&payload),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::proto::metric::Value as V;
    use super::proto::{Metric, Payload};
    use super::*;
    use proptest::prelude::*;
    use prost::Message as _;

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    const NOW_MS: u64 = 1_795_521_600_000;

    fn skew() -> chrono::Duration {
        chrono::Duration::minutes(5)
    }

    fn metric(name: Option<&str>, alias: Option<u64>, dt: Option<u32>, v: Option<V>) -> Metric {
        Metric {
            name: name.map(Into::into),
            alias,
            datatype: dt,
            value: v,
            ..Default::default()
        }
    }

    fn apply(s: &mut Sessions, topic: &str, p: &Payload) -> Result<Decoded, Rejection> {
        let bytes = p.encode_to_vec();
        let decoded = decode_payload(&bytes).unwrap();
        s.apply(&parse_topic(topic).unwrap(), &decoded, now(), skew())
    }

    #[test]
    fn now_ms_is_now() {
        assert_eq!(epoch_ms(NOW_MS).unwrap(), now());
    }

    #[test]
    fn topics() {
        let t = parse_topic("spBv1.0/acme/DDATA/gw-1/plc1").unwrap();
        assert_eq!(
            (t.group, t.kind, t.edge_node, t.device),
            ("acme", MessageType::DData, "gw-1", Some("plc1"))
        );
        assert_eq!(t.device_name(), "gw-1.plc1");
        assert_eq!(
            parse_topic("spBv1.0/acme/NDATA/gw-1").unwrap().device_name(),
            "gw-1"
        );
        for bad in [
            "spBv1.0/acme/NDATA",
            "spBv1.0/acme/NDATA/gw/extra",
            "spBv1.0/acme/DDATA/gw",
            "spBv1.0/acme/NCMD/gw",
            "spBv1.0/STATE/host",
            "spBv1.0//NDATA/gw",
            "spBv2.0/acme/NDATA/gw",
        ] {
            assert_eq!(parse_topic(bad).unwrap_err().reason, BAD_TOPIC, "{bad}");
        }
        assert!(is_sparkplug("spBv1.0/a/NDATA/b"));
        assert!(!is_sparkplug("spBv1.0x/a"));
        assert!(!is_sparkplug("mp/v1/a/b/telemetry"));
    }

    #[test]
    fn birth_aliases_then_data_by_alias() {
        let mut s = Sessions::new();
        let birth = Payload {
            timestamp: Some(NOW_MS - 1000),
            seq: Some(0),
            metrics: vec![
                metric(Some("bdSeq"), None, Some(datatype::INT64), Some(V::LongValue(3))),
                metric(
                    Some("Motor/Temp"),
                    Some(1),
                    Some(datatype::DOUBLE),
                    Some(V::DoubleValue(20.5)),
                ),
                metric(
                    Some("count"),
                    Some(2),
                    Some(datatype::INT16),
                    Some(V::IntValue(0xFFFF)),
                ),
                metric(
                    Some("label"),
                    Some(3),
                    Some(datatype::STRING),
                    Some(V::StringValue("x".into())),
                ),
            ],
        };
        let d = apply(&mut s, "spBv1.0/acme/NBIRTH/gw", &birth).unwrap();
        assert_eq!(d.born.as_deref(), Some("gw"));
        assert_eq!(d.unsupported, 1);
        let got: Vec<_> = d
            .readings
            .iter()
            .map(|r| (r.metric.as_str(), r.value.clone()))
            .collect();
        assert_eq!(got, vec![("Motor/Temp", Ok(20.5)), ("count", Ok(-1.0))]);

        let data = Payload {
            timestamp: Some(NOW_MS),
            seq: Some(1),
            metrics: vec![
                metric(None, Some(1), None, Some(V::DoubleValue(21.0))),
                // The birth's datatype (Int16) applies to the alias.
                metric(None, Some(2), None, Some(V::IntValue(0xFFFE))),
                metric(None, Some(9), None, Some(V::DoubleValue(1.0))),
            ],
        };
        let d = apply(&mut s, "spBv1.0/acme/NDATA/gw", &data).unwrap();
        assert_eq!(d.seq_gap, None);
        assert_eq!(d.unknown_aliases, vec![9]);
        assert_eq!(d.readings[0].metric, "Motor/Temp");
        assert_eq!(d.readings[0].ts, now());
        assert_eq!(d.readings[1].value, Ok(-2.0));
        assert_eq!(sensor_metric("Motor/Temp"), "Motor.Temp");

        // Device aliases are separate from the node's.
        let ddata = Payload {
            timestamp: Some(NOW_MS),
            seq: Some(2),
            metrics: vec![metric(None, Some(1), None, Some(V::DoubleValue(1.0)))],
        };
        let d = apply(&mut s, "spBv1.0/acme/DDATA/gw/plc", &ddata).unwrap();
        assert_eq!(d.unknown_aliases, vec![1]);
    }

    #[test]
    fn seq_gaps_wrap_and_are_reported() {
        let mut s = Sessions::new();
        let p = |seq| Payload {
            timestamp: Some(NOW_MS),
            seq: Some(seq),
            metrics: vec![metric(Some("t"), None, None, Some(V::DoubleValue(1.0)))],
        };
        apply(&mut s, "spBv1.0/a/NBIRTH/gw", &p(254)).unwrap();
        assert_eq!(
            apply(&mut s, "spBv1.0/a/NDATA/gw", &p(255)).unwrap().seq_gap,
            None
        );
        assert_eq!(
            apply(&mut s, "spBv1.0/a/DDATA/gw/d", &p(0)).unwrap().seq_gap,
            None
        );
        assert_eq!(
            apply(&mut s, "spBv1.0/a/NDATA/gw", &p(5)).unwrap().seq_gap,
            Some((1, 5))
        );
        assert_eq!(apply(&mut s, "spBv1.0/a/NDATA/gw", &p(6)).unwrap().seq_gap, None);
    }

    #[test]
    fn deaths() {
        let mut s = Sessions::new();
        let birth = |bd| Payload {
            timestamp: Some(NOW_MS),
            seq: Some(0),
            metrics: vec![
                metric(Some("bdSeq"), None, Some(datatype::INT64), Some(V::LongValue(bd))),
                metric(
                    Some("t"),
                    Some(1),
                    Some(datatype::DOUBLE),
                    Some(V::DoubleValue(1.0)),
                ),
            ],
        };
        let death = |bd| Payload {
            timestamp: Some(NOW_MS),
            seq: None,
            metrics: vec![metric(
                Some("bdSeq"),
                None,
                Some(datatype::INT64),
                Some(V::LongValue(bd)),
            )],
        };
        apply(&mut s, "spBv1.0/a/NBIRTH/gw", &birth(7)).unwrap();
        let d = apply(
            &mut s,
            "spBv1.0/a/DBIRTH/gw/plc",
            &Payload {
                seq: Some(1),
                ..birth(0)
            },
        )
        .unwrap();
        assert_eq!(d.born.as_deref(), Some("gw.plc"));
        // An old connection's will is ignored.
        let d = apply(&mut s, "spBv1.0/a/NDEATH/gw", &death(6)).unwrap();
        assert!(d.stale_death && d.died.is_empty());
        let d = apply(&mut s, "spBv1.0/a/NDEATH/gw", &death(7)).unwrap();
        assert_eq!(d.died, vec!["gw".to_string(), "gw.plc".to_string()]);
        // The aliases died with the node.
        let data = Payload {
            timestamp: Some(NOW_MS),
            seq: Some(2),
            metrics: vec![metric(None, Some(1), None, Some(V::DoubleValue(2.0)))],
        };
        assert_eq!(
            apply(&mut s, "spBv1.0/a/NDATA/gw", &data)
                .unwrap()
                .unknown_aliases,
            vec![1]
        );
        let d = apply(&mut s, "spBv1.0/a/DDEATH/gw/plc", &death(0)).unwrap();
        assert_eq!(d.died, vec!["gw.plc".to_string()]);
    }

    #[test]
    fn rejections() {
        let mut s = Sessions::new();
        assert_eq!(
            decode_payload(b"\xff\xff\xff").unwrap_err().reason,
            MALFORMED_PAYLOAD
        );
        let only = |m: Metric, ts| Payload {
            timestamp: ts,
            seq: None,
            metrics: vec![m],
        };
        let text = metric(
            Some("s"),
            None,
            Some(datatype::STRING),
            Some(V::StringValue("on".into())),
        );
        let r = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(text, Some(NOW_MS))).unwrap_err();
        assert_eq!(r.reason, NO_USABLE_METRICS);
        let null = Metric {
            is_null: Some(true),
            ..metric(Some("t"), None, None, None)
        };
        let r = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(null, Some(NOW_MS))).unwrap_err();
        assert_eq!(r.reason, NO_USABLE_METRICS);
        let t = metric(Some("t"), None, None, Some(V::DoubleValue(1.0)));
        let r = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(t.clone(), None)).unwrap_err();
        assert_eq!(r.reason, BAD_TIMESTAMP);
        let r = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(t.clone(), Some(u64::MAX))).unwrap_err();
        assert_eq!(r.reason, BAD_TIMESTAMP);
        let r = apply(
            &mut s,
            "spBv1.0/a/NDATA/gw",
            &only(t.clone(), Some(NOW_MS + 3_600_000)),
        )
        .unwrap_err();
        assert_eq!(r.reason, FUTURE_TIMESTAMP);
        // The metric's own timestamp wins over the payload's.
        let own = Metric {
            timestamp: Some(NOW_MS - 5),
            ..t
        };
        let d = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(own, Some(NOW_MS + 3_600_000))).unwrap();
        assert_eq!(d.readings[0].ts.timestamp_millis() as u64, NOW_MS - 5);
        let nan = metric(Some("t"), None, None, Some(V::FloatValue(f32::NAN)));
        let d = apply(&mut s, "spBv1.0/a/NDATA/gw", &only(nan, Some(NOW_MS))).unwrap();
        assert!(d.readings[0].value.is_err());
    }

    #[test]
    fn rebirth_requests_are_rate_limited() {
        let mut s = Sessions::new();
        let t0 = Instant::now();
        assert!(s.should_request_rebirth("a", "gw", t0));
        assert!(!s.should_request_rebirth("a", "gw", t0 + Duration::from_secs(1)));
        assert!(s.should_request_rebirth("a", "gw2", t0));
        assert!(s.should_request_rebirth("a", "gw", t0 + REBIRTH_INTERVAL));
        let (topic, bytes) = rebirth_command("a", "gw", now());
        assert_eq!(topic, "spBv1.0/a/NCMD/gw");
        let p = decode_payload(&bytes).unwrap();
        assert_eq!(p.metrics[0].name.as_deref(), Some("Node Control/Rebirth"));
        assert_eq!(p.metrics[0].value, Some(V::BooleanValue(true)));
    }

    /// A numeric value as a sender would encode it, and what it reads as.
    fn arb_value() -> impl Strategy<Value = (u32, V, f64)> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| (datatype::DOUBLE, V::DoubleValue(v), v)),
            any::<f32>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| (datatype::FLOAT, V::FloatValue(v), f64::from(v))),
            any::<i8>().prop_map(|v| (datatype::INT8, V::IntValue(v as i32 as u32), f64::from(v))),
            any::<i16>().prop_map(|v| (datatype::INT16, V::IntValue(v as i32 as u32), f64::from(v))),
            any::<i32>().prop_map(|v| (datatype::INT32, V::IntValue(v as u32), f64::from(v))),
            any::<i64>().prop_map(|v| (datatype::INT64, V::LongValue(v as u64), v as f64)),
            any::<u32>().prop_map(|v| (datatype::UINT32, V::LongValue(u64::from(v)), f64::from(v))),
            any::<u64>().prop_map(|v| (datatype::UINT64, V::LongValue(v), v as f64)),
            any::<bool>().prop_map(|v| (datatype::BOOLEAN, V::BooleanValue(v), f64::from(u8::from(v)))),
        ]
    }

    fn arb_any_value() -> impl Strategy<Value = Option<V>> {
        prop_oneof![
            Just(None),
            any::<u32>().prop_map(|v| Some(V::IntValue(v))),
            any::<u64>().prop_map(|v| Some(V::LongValue(v))),
            any::<f32>().prop_map(|v| Some(V::FloatValue(v))),
            any::<f64>().prop_map(|v| Some(V::DoubleValue(v))),
            any::<bool>().prop_map(|v| Some(V::BooleanValue(v))),
            ".{0,8}".prop_map(|v| Some(V::StringValue(v))),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(|v| Some(V::BytesValue(v))),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(|v| Some(V::DatasetValue(v))),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(|v| Some(V::TemplateValue(v))),
        ]
    }

    fn arb_metric() -> impl Strategy<Value = Metric> {
        (
            proptest::option::of("[a-zA-Z/ ]{0,6}"),
            proptest::option::of(0u64..8),
            proptest::option::of(any::<u64>()),
            proptest::option::of(0u32..22),
            proptest::option::of(any::<bool>()),
            arb_any_value(),
        )
            .prop_map(|(name, alias, timestamp, datatype, is_null, value)| Metric {
                name,
                alias,
                timestamp,
                datatype,
                is_null,
                value,
            })
    }

    fn arb_payload() -> impl Strategy<Value = Payload> {
        (
            proptest::option::of(prop_oneof![any::<u64>(), (NOW_MS - 1_000_000)..NOW_MS]),
            proptest::collection::vec(arb_metric(), 0..8),
            proptest::option::of(prop_oneof![any::<u64>(), 0u64..256]),
        )
            .prop_map(|(timestamp, metrics, seq)| Payload {
                timestamp,
                metrics,
                seq,
            })
    }

    fn arb_topic() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("spBv1.0".to_string()), "[a-zA-Z0-9.]{0,8}"],
            prop_oneof![Just("g".to_string()), "[a-z/]{0,4}"],
            prop_oneof![
                Just("NBIRTH"),
                Just("NDATA"),
                Just("NDEATH"),
                Just("DBIRTH"),
                Just("DDATA"),
                Just("DDEATH"),
                Just("NCMD"),
                Just("STATE")
            ],
            prop_oneof![Just("gw".to_string()), "[a-z/]{0,4}"],
            proptest::option::of(prop_oneof![Just("d".to_string()), "[a-z/]{0,3}"]),
        )
            .prop_map(|(ns, g, kind, edge, dev)| match dev {
                Some(d) => format!("{ns}/{g}/{kind}/{edge}/{d}"),
                None => format!("{ns}/{g}/{kind}/{edge}"),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The payload decoder never panics, whatever the bytes.
        #[test]
        fn bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), topic in arb_topic()) {
            let _ = parse_topic(&topic);
            if let (Ok(p), Ok(t)) = (decode_payload(&bytes), parse_topic(&topic)) {
                let _ = Sessions::new().apply(&t, &p, now(), skew());
            }
        }

        /// Arbitrary structured payloads on arbitrary topics, one session
        /// for the whole sequence: never a panic.
        #[test]
        fn structured_never_panic(msgs in proptest::collection::vec((arb_topic(), arb_payload()), 1..12)) {
            let mut s = Sessions::new();
            for (topic, payload) in msgs {
                let bytes = payload.encode_to_vec();
                let decoded = decode_payload(&bytes).unwrap();
                // NaN != NaN: compare the wire form.
                prop_assert_eq!(decoded.encode_to_vec(), bytes);
                if let Ok(t) = parse_topic(&topic) {
                    let _ = s.apply(&t, &decoded, now(), skew());
                }
            }
        }

        /// A birth with names and aliases, then data by alias only: the
        /// readings are what was encoded, in order, by name.
        #[test]
        fn birth_then_data_roundtrip(
            vals in proptest::collection::btree_map("[a-z]{1,8}", (arb_value(), arb_value(), 0u64..1_000_000), 1..8),
            device in any::<bool>(),
            seq in 0u64..256,
        ) {
            let (birth_topic, data_topic) = if device {
                ("spBv1.0/g/DBIRTH/gw/d", "spBv1.0/g/DDATA/gw/d")
            } else {
                ("spBv1.0/g/NBIRTH/gw", "spBv1.0/g/NDATA/gw")
            };
            let named: Vec<_> = vals.iter().enumerate().collect();
            let birth = Payload {
                timestamp: Some(NOW_MS),
                seq: Some(seq),
                metrics: named.iter().map(|(i, (name, ((dt, v, _), _, _)))| Metric {
                    name: Some((*name).clone()),
                    alias: Some(*i as u64 + 100),
                    datatype: Some(*dt),
                    value: Some(v.clone()),
                    ..Default::default()
                }).collect(),
            };
            let mut s = Sessions::new();
            let d = apply(&mut s, birth_topic, &birth).unwrap();
            let got: Vec<_> = d.readings.iter().map(|r| (r.metric.clone(), r.value.clone().unwrap())).collect();
            let want: Vec<_> = named.iter().map(|(_, (n, ((_, _, f), _, _)))| ((*n).clone(), *f)).collect();
            prop_assert_eq!(got, want);

            // Data: aliases only, the birth's datatypes (same type as in the
            // birth is what senders do), the metric's own timestamps.
            let data = Payload {
                timestamp: Some(NOW_MS),
                seq: Some((seq + 1) % 256),
                metrics: named.iter().map(|(i, (_, ((dt, _, _), (dt2, v2, _), age)))| Metric {
                    alias: Some(*i as u64 + 100),
                    datatype: (dt != dt2).then_some(*dt2),
                    timestamp: Some(NOW_MS - age),
                    value: Some(v2.clone()),
                    ..Default::default()
                }).collect(),
            };
            let d = apply(&mut s, data_topic, &data).unwrap();
            prop_assert_eq!(d.seq_gap, None);
            prop_assert!(d.unknown_aliases.is_empty());
            let got: Vec<_> = d.readings.iter()
                .map(|r| (r.metric.clone(), r.ts.timestamp_millis() as u64, r.value.clone().unwrap()))
                .collect();
            let want: Vec<_> = named.iter()
                .map(|(_, (n, (_, (_, _, f), age)))| ((*n).clone(), NOW_MS - age, *f))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
