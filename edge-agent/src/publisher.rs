//! QoS 1 MQTT publisher: owns the rumqttc event loop in a background task, reconnects with
//! backoff, counts PUBACKs and drains outstanding messages before shutting down.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS, Request};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{EdgeError, MqttTarget};

/// Largest MQTT packet we send or accept (leaves room for ~1 MiB payloads plus topic/header).
pub const MAX_PACKET_SIZE: usize = 2 * 1024 * 1024;
/// Unacknowledged QoS 1 publishes allowed in flight.
pub const INFLIGHT: u16 = 100;
/// Capacity of the client → event loop request channel.
pub const REQUEST_CHANNEL_CAPACITY: usize = 1024;
/// MQTT keep-alive interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long [`Publisher::connect`] waits for the first CONNACK.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Publisher::finish`] waits by default for outstanding PUBACKs.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Connection state published by the event-loop task.
#[derive(Debug, Clone, Default)]
struct LinkState {
    connected: bool,
    ever_connected: bool,
    acks: u64,
    last_error: Option<String>,
    refused: Option<String>,
    stopped: bool,
}

/// A connected QoS 1 publisher. Create with [`Publisher::connect`], publish, then call
/// [`Publisher::finish`] to wait for every PUBACK and disconnect cleanly.
pub struct Publisher {
    client: AsyncClient,
    link: watch::Receiver<LinkState>,
    task: JoinHandle<()>,
    stop: CancellationToken,
    published: u64,
    addr: String,
}

/// The agent's MQTT options (both the direct publisher and the outbox forwarder): a clean
/// session (what was not acknowledged is re-sent by us), the target's credentials.
pub(crate) fn mqtt_options(target: &MqttTarget) -> MqttOptions {
    let mut options = MqttOptions::new(target.client_id.clone(), target.host.clone(), target.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE)
        .set_clean_session(true);
    if let Some(user) = &target.username {
        options.set_credentials(user.clone(), target.password.clone().unwrap_or_default());
    }
    options
}

impl Publisher {
    /// Starts the event loop and waits (up to [`CONNECT_TIMEOUT`]) for the first CONNACK.
    /// Later disconnections are retried forever with exponential backoff (200 ms → 5 s);
    /// unacknowledged messages are re-sent after reconnecting.
    pub async fn connect(target: &MqttTarget, shutdown: &CancellationToken) -> Result<Self, EdgeError> {
        let addr = target.addr();
        let (client, eventloop) = AsyncClient::new(mqtt_options(target), REQUEST_CHANNEL_CAPACITY);
        let (tx, mut link) = watch::channel(LinkState::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(drive(eventloop, tx, stop.clone(), addr.clone()));

        // Reduce the watch::Ref to owned data immediately (holding it blocks the sender).
        let waited: Option<Option<(bool, Option<String>)>> = tokio::select! {
            () = shutdown.cancelled() => None,
            waited = tokio::time::timeout(
                CONNECT_TIMEOUT,
                link.wait_for(|s| s.ever_connected || s.refused.is_some() || s.stopped),
            ) => Some(match waited {
                Ok(Ok(state)) => Some((state.ever_connected, state.refused.clone())),
                Ok(Err(_)) => Some((false, None)),
                Err(_) => None,
            }),
        };
        let outcome = match waited {
            None => Err(EdgeError::Cancelled),
            Some(Some((true, _))) => Ok(()),
            Some(Some((false, refused))) => Err(EdgeError::Connect {
                addr: addr.clone(),
                reason: refused.unwrap_or_else(|| "event loop stopped".into()),
            }),
            Some(None) => Err(EdgeError::Connect {
                addr: addr.clone(),
                reason: format!(
                    "no CONNACK within {}s (last error: {})",
                    CONNECT_TIMEOUT.as_secs(),
                    link.borrow().last_error.clone().unwrap_or_else(|| "none".into())
                ),
            }),
        };
        if let Err(err) = outcome {
            stop.cancel();
            let _ = task.await;
            return Err(err);
        }
        info!(broker = %addr, client_id = %target.client_id, "connected to MQTT broker");
        Ok(Self {
            client,
            link,
            task,
            stop,
            published: 0,
            addr,
        })
    }

    /// Queues one QoS 1 publish. Waits while the request channel is full (back-pressure);
    /// if `shutdown` fires while waiting, makes one last non-blocking attempt and returns
    /// `Ok(false)` if the message could not be queued.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        shutdown: &CancellationToken,
    ) -> Result<bool, EdgeError> {
        check_size(topic, &payload)?;
        // Fast path: room in the channel, no copy of the payload needed.
        let returned = match self.client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
            Ok(()) => {
                self.published += 1;
                return Ok(true);
            }
            Err(rumqttc::ClientError::TryRequest(Request::Publish(p))) => p.payload,
            Err(err) => return Err(err.into()),
        };
        if !shutdown.is_cancelled() {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                sent = self.client.publish(topic, QoS::AtLeastOnce, false, returned.to_vec()) => {
                    sent?;
                    self.published += 1;
                    return Ok(true);
                }
            }
        }
        self.try_publish(topic, returned.to_vec())
    }

    /// Queues one QoS 1 publish without waiting; `Ok(false)` if the request channel is full.
    pub fn try_publish(&mut self, topic: &str, payload: Vec<u8>) -> Result<bool, EdgeError> {
        check_size(topic, &payload)?;
        match self.client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
            Ok(()) => {
                self.published += 1;
                Ok(true)
            }
            Err(rumqttc::ClientError::TryRequest(_)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Number of publishes handed to the client so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Number of PUBACKs received so far.
    pub fn acked(&self) -> u64 {
        self.link.borrow().acks
    }

    /// Waits until every publish has been acknowledged (or `drain_timeout` passes), then
    /// disconnects and stops the event loop. Returns the number of acknowledged messages, or
    /// [`EdgeError::Unacknowledged`] if some were still outstanding at the deadline.
    pub async fn finish(mut self, drain_timeout: Duration) -> Result<u64, EdgeError> {
        let published = self.published;
        let outstanding = published.saturating_sub(self.acked());
        if outstanding > 0 {
            info!(outstanding, "waiting for PUBACKs");
        }
        // Map the watch::Ref away at once: holding it would block the event-loop task.
        let _ = tokio::time::timeout(
            drain_timeout,
            self.link.wait_for(|s| s.acks >= published || s.stopped),
        )
        .await
        .map(|r| r.is_ok());
        let acked = self.acked().min(published);
        let result = if acked >= published {
            Ok(acked)
        } else {
            warn!(
                published,
                acked,
                timeout_s = drain_timeout.as_secs_f64(),
                broker = %self.addr,
                "giving up waiting for PUBACKs"
            );
            Err(EdgeError::Unacknowledged { published, acked })
        };
        // Ask for a clean DISCONNECT; the event loop ends once it has been sent.
        if self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(DISCONNECT_GRACE, &mut self.task).await;
        }
        self.stop.cancel();
        if !self.task.is_finished() {
            let _ = (&mut self.task).await;
        }
        debug!(published, acked, "publisher finished");
        result
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub(crate) fn check_size(topic: &str, payload: &[u8]) -> Result<(), EdgeError> {
    // Fixed header (≤5) + topic length prefix (2) + topic + packet id (2) + payload.
    let size = 5 + 2 + topic.len() + 2 + payload.len();
    if size > MAX_PACKET_SIZE {
        return Err(EdgeError::PayloadTooLarge {
            size,
            max: MAX_PACKET_SIZE,
        });
    }
    Ok(())
}

/// Owns `eventloop.poll()`: never blocks inside it, counts PUBACKs, backs off on errors.
async fn drive(
    mut eventloop: rumqttc::EventLoop,
    tx: watch::Sender<LinkState>,
    stop: CancellationToken,
    addr: String,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let event = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::PubAck(_))) => tx.send_modify(|s| s.acks += 1),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                tx.send_modify(|s| {
                    if s.ever_connected && !s.connected {
                        info!(broker = %addr, "reconnected to MQTT broker");
                    }
                    s.connected = true;
                    s.ever_connected = true;
                });
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(err) => {
                let refused = matches!(err, ConnectionError::ConnectionRefused(_));
                let message = err.to_string();
                tx.send_modify(|s| {
                    if s.connected {
                        warn!(broker = %addr, error = %message, "MQTT connection lost; reconnecting");
                    } else if s.ever_connected {
                        debug!(broker = %addr, error = %message, "MQTT reconnect failed");
                    } else {
                        debug!(broker = %addr, error = %message, "MQTT connect failed");
                    }
                    s.connected = false;
                    if refused {
                        s.refused = Some(message.clone());
                    }
                    s.last_error = Some(message);
                });
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    tx.send_modify(|s| {
        s.connected = false;
        s.stopped = true;
    });
}
