//! One place that sets up logging: `RUST_LOG` filters, `MP_LOG_FORMAT=json`
//! switches to JSON lines.

use tracing_subscriber::EnvFilter;

/// Default filter: our crates at info, the chatty dependencies at warn.
/// rumqttd logs every ordinary client disconnect as an ERROR, so it is off
/// unless asked for (`RUST_LOG=info,rumqttd=info`).
pub const DEFAULT_FILTER: &str = "info,rumqttd=off,rumqttc=warn,sqlx=warn,tower_http=warn";

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("MP_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
