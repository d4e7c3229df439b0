//! Error type shared by every part of the edge agent library.

use std::path::PathBuf;

/// Everything that can go wrong inside the edge agent.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The broker URL could not be understood.
    #[error("invalid broker url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A `DEVICE/METRIC:KIND@START+DURATION*MAGNITUDE` fault spec could not be parsed.
    #[error("invalid fault spec `{spec}`: {reason}")]
    InvalidFault { spec: String, reason: String },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A CSV row (or the header) could not be used; `line` is 1-based.
    #[error("{path}: line {line}: {message}")]
    Csv {
        path: String,
        line: u64,
        message: String,
    },

    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The very first connection to the broker could not be established.
    #[error("could not connect to MQTT broker {addr}: {reason}")]
    Connect { addr: String, reason: String },

    /// The MQTT client rejected a request (e.g. the event loop is gone).
    #[error("MQTT client error: {0}")]
    Client(#[from] rumqttc::ClientError),

    /// A payload is larger than the configured maximum packet size.
    #[error("payload of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PayloadTooLarge { size: usize, max: usize },

    /// Not every QoS 1 publish was acknowledged before the drain timeout.
    #[error("only {acked} of {published} QoS 1 messages were acknowledged before the drain timeout")]
    Unacknowledged { published: u64, acked: u64 },

    /// Shutdown was requested before anything could be done.
    #[error("cancelled")]
    Cancelled,

    /// A background task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),

    /// A payload could not be serialized.
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
}
