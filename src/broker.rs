//! The embedded MQTT broker (rumqttd), for a one-command install.
//!
//! rumqttd keeps sessions and in-flight messages in memory only: a broker
//! restart loses what it held. Where that matters, run Mosquitto with
//! persistence or EMQX and point MaintAInPro at it with `--mqtt-url`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use anyhow::{bail, Context};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Whether something already listens on `addr`.
pub fn port_taken(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_err()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// Starts the broker on its own threads; it runs until the process exits.
pub fn start(listen: SocketAddr) -> anyhow::Result<()> {
    if port_taken(listen) {
        bail!(
            "MQTT port {listen} is already in use (is Mosquitto or another broker running?). \
             Use that broker with --mqtt-url mqtt://{}:{}, or pick another port with --mqtt-port",
            listen.ip(),
            listen.port()
        );
    }
    let server = ServerSettings {
        name: "v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 4 * 1024 * 1024,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .context("cannot start the broker thread")?;
    // Wait until it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    bail!("the embedded MQTT broker did not start listening on {listen}")
}
