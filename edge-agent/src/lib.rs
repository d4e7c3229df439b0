//! MaintAInPro edge (gateway) agent: simulates or replays sensor telemetry and publishes it
//! over MQTT at QoS 1 to `mp/v1/{org}/{device}/telemetry`.
//!
//! * [`simulate`] — a deterministic fleet simulator with fault injection ([`Fleet`] is the
//!   pure generator underneath).
//! * [`replay`] — replays `ts,device,metric,value` or NAB `timestamp,value` CSV files.
//! * [`Publisher`] — the QoS 1 publisher both use (reconnects, waits for every PUBACK).
//! * [`Outbox`] — the optional on-disk store-and-forward buffer in front of it (see README,
//!   "Edge agent: store-and-forward", and docs/edge-agent.md for its guarantees).
//! * [`EdgeStatus`] / [`serve_metrics`] — the optional Prometheus `/metrics` page.

mod error;
mod fault;
mod message;
mod metrics;
mod outbox;
mod publisher;
mod replay;
mod sim;
mod target;
mod uplink;

pub use error::EdgeError;
pub use fault::{format_duration, parse_duration, FaultKind, FaultSpec, DEFAULT_FAULT_DURATION};
pub use message::{
    encode_payload, format_ts, parse_timestamp, telemetry_topic, truncate_to_millis, validate_topic_level,
    Message,
};
pub use metrics::{serve as serve_metrics, EdgeStatus};
pub use outbox::{
    Appended, FsyncPolicy, FullPolicy, Outbox, OutboxConfig, OutboxReader, OutboxStats, Pos, Record,
    DEFAULT_OUTBOX_MAX_BYTES,
};
pub use publisher::{Publisher, DRAIN_TIMEOUT, MAX_PACKET_SIZE};
pub use replay::{
    read_csv_messages, replay, CsvRow, CsvTelemetryReader, ReplayOptions, ReplayReport, RowGroup,
};
pub use sim::{simulate, DeviceSpec, FaultEvent, Fleet, SensorSpec, SimConfig, SimReport, DEFAULT_SEED};
pub use target::{MqttTarget, DEFAULT_MQTT_PORT};
