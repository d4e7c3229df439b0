//! MQTT telemetry ingest: subscribe, decode, validate, write in batches,
//! dead-letter what cannot be stored, acknowledge only after commit.
//!
//! # Layout
//! - [`codec`]: topic and JSON payload decoding (pure, property-tested).
//! - [`sparkplug`]: the Sparkplug B codec and session state (pure,
//!   property-tested); messages are routed to it by topic prefix.
//! - [`writer`]: the batching COPY writer and device/sensor resolution.
//! - [`rollup`]: keeps the 1-minute / 1-hour rollups on plain PostgreSQL.
//! - [`stats`]: counters and the publish→commit latency histogram.
//! - [`run`] (this file): the MQTT loop — one task owns `eventloop.poll()`,
//!   another batches, writes and acks.

pub mod codec;
pub mod rollup;
pub mod sparkplug;
pub mod stats;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use maintainpro_models::Db;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use stats::{IngestStats, StaleDevice, StatsSnapshot};

/// Where and how ingest connects.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// Stable client id: with a persistent session the broker keeps QoS 1
    /// messages for us while we are away.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Subscribe through `$share/{group}/…` so several instances split the load.
    pub shared_group: Option<String>,
    /// Flush when this many readings are buffered …
    pub batch_max: usize,
    /// … or this many messages (brokers send only a window of unacknowledged
    /// QoS 1 messages — rumqttd 100, Mosquitto 20 by default — and we ack
    /// only after commit, so waiting for more would stall the stream) …
    pub batch_max_messages: usize,
    /// … or when no message arrived for this long (the broker is waiting
    /// for our acks) …
    pub idle_flush: Duration,
    /// … or when the oldest buffered message is this old.
    pub flush_interval: Duration,
    /// Timestamps further in the future than this are dead-lettered.
    pub max_future_skew: Duration,
    /// Messages in flight from the broker (unacknowledged) at most.
    pub inflight: u16,
    /// Also subscribe to Sparkplug B telemetry (`spBv1.0/…`, see
    /// [`sparkplug::FILTERS`]).
    pub sparkplug: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            mqtt_host: "127.0.0.1".into(),
            mqtt_port: 1883,
            client_id: "maintainpro-ingest".into(),
            username: None,
            password: None,
            shared_group: None,
            batch_max: 5_000,
            batch_max_messages: 100,
            idle_flush: Duration::from_millis(2),
            flush_interval: Duration::from_millis(100),
            max_future_skew: Duration::from_secs(300),
            inflight: 1000,
            sparkplug: true,
        }
    }
}

/// The topic filter ingest subscribes to.
pub const TELEMETRY_FILTER: &str = "mp/v1/+/+/telemetry";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("mqtt client: {0}")]
    Client(#[from] rumqttc::ClientError),
    #[error(transparent)]
    Model(#[from] maintainpro_models::ModelError),
}

/// Runs ingest until `shutdown` is cancelled.
pub async fn run(
    db: Db,
    config: IngestConfig,
    stats: Arc<IngestStats>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let mut opts = MqttOptions::new(&config.client_id, &config.mqtt_host, config.mqtt_port);
    opts.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(config.inflight)
        .set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
    if let (Some(u), Some(p)) = (&config.username, &config.password) {
        opts.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let mut filters = vec![TELEMETRY_FILTER];
    if config.sparkplug {
        filters.extend(sparkplug::FILTERS);
    }
    let filters: Vec<String> = filters
        .into_iter()
        .map(|f| match &config.shared_group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_string(),
        })
        .collect();
    let filter = filters.join(" ");
    // Bounded: when the writer falls behind (database slow or down), the
    // poller waits here, stops reading from the broker, and the broker stops
    // sending once our unacknowledged inflight window is full.
    let (tx, rx) = mpsc::channel::<Publish>(config.inflight as usize * 2);
    let rollups = tokio::spawn(rollup::run(db.clone(), rollup::ROLLUP_INTERVAL, shutdown.clone()));
    let writer = tokio::spawn(writer::run(
        db,
        client.clone(),
        config.clone(),
        stats.clone(),
        rx,
        shutdown.clone(),
    ));

    let mut backoff = Duration::from_millis(100);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(100);
                stats.set_connected(true);
                tracing::info!(session_present = ack.session_present, %filter, "connected to broker");
                // Idempotent; covers brokers that did not keep the session.
                let subscriptions = filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                client.subscribe_many(subscriptions).await?;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                stats.message_received();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    sent = tx.send(p) => if sent.is_err() { break },
                }
            }
            Ok(_) => {}
            Err(e) => {
                stats.set_connected(false);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "mqtt connection error");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    stats.set_connected(false);
    drop(tx);
    // The writer flushes what it holds (and acks it) before returning.
    if let Ok(Err(e)) = writer.await {
        tracing::error!(error = %e, "ingest writer stopped with an error");
    }
    rollups.abort();
    let _ = client.disconnect().await;
    Ok(())
}
