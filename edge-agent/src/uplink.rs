//! Where the sources hand their messages: straight to the QoS 1 [`Publisher`], or into the
//! on-disk [`Outbox`] with a forwarder task that publishes from it in order and advances the
//! ack cursor only on PUBACK.
//!
//! Reconnects: every connection is a fresh rumqttc client with a clean session. After a
//! disconnect the forwarder forgets what was in flight and re-reads the outbox from the ack
//! cursor, so everything not yet PUBACKed is published again (rumqttc 0.24 would otherwise also
//! re-send its own pending copies). Duplicates are possible — the server keeps one row per
//! `(sensor, ts)` — losses are not.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::outbox::{Outbox, OutboxConfig, OutboxReader, OutboxStats, Pos};
use crate::publisher::{check_size, mqtt_options, Publisher, INFLIGHT};
use crate::{EdgeError, MqttTarget};

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(50);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// The sink a source publishes into.
pub(crate) enum Uplink {
    Direct(Publisher),
    Buffered(Buffered),
}

pub(crate) struct Buffered {
    outbox: Arc<Outbox>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    connected: watch::Receiver<bool>,
}

impl Uplink {
    /// Direct: waits for the first CONNACK like before. Buffered: opens (and recovers) the
    /// outbox and starts the forwarder; the broker may be down.
    pub(crate) async fn open(
        target: &MqttTarget,
        outbox: Option<&OutboxConfig>,
        shutdown: &CancellationToken,
    ) -> Result<Self, EdgeError> {
        let Some(config) = outbox else {
            return Ok(Self::Direct(Publisher::connect(target, shutdown).await?));
        };
        let status = config.status.clone();
        let config = config.clone();
        let outbox = tokio::task::spawn_blocking(move || Outbox::open(config))
            .await
            .map_err(|e| EdgeError::Internal(format!("outbox open task failed: {e}")))??;
        let outbox = Arc::new(outbox);
        let stop = CancellationToken::new();
        let (tx, connected) = watch::channel(false);
        if let Some(status) = status {
            status.attach(outbox.clone());
            let mut up = connected.clone();
            tokio::spawn(async move {
                loop {
                    status.set_connected(*up.borrow_and_update());
                    if up.changed().await.is_err() {
                        break;
                    }
                }
            });
        }
        let task = tokio::spawn(forward(outbox.clone(), target.clone(), stop.clone(), tx));
        Ok(Self::Buffered(Buffered {
            outbox,
            stop,
            task,
            connected,
        }))
    }

    /// Hands one message over; `Ok(false)` if it could not be taken before/after shutdown.
    pub(crate) async fn send(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        shutdown: &CancellationToken,
    ) -> Result<bool, EdgeError> {
        match self {
            Self::Direct(p) => p.publish(topic, payload, shutdown).await,
            Self::Buffered(b) => {
                check_size(topic, &payload)?;
                b.outbox.append(topic, &payload, shutdown).await
            }
        }
    }

    /// Direct: waits for every PUBACK (error if some are missing at the deadline).
    /// Buffered: waits up to the outbox's drain timeout for the broker to acknowledge what is
    /// buffered; what is left stays on disk for the next run. Returns the outbox counters.
    pub(crate) async fn finish(
        self,
        drain_timeout: std::time::Duration,
    ) -> Result<Option<OutboxStats>, EdgeError> {
        match self {
            Self::Direct(p) => p.finish(drain_timeout).await.map(|_| None),
            Self::Buffered(b) => b.finish().await.map(Some),
        }
    }
}

impl Buffered {
    async fn finish(mut self) -> Result<OutboxStats, EdgeError> {
        let timeout = self.outbox_drain_timeout();
        let pending = self.outbox.stats().buffered_records;
        if pending > 0 {
            info!(
                buffered = pending,
                connected = *self.connected.borrow(),
                timeout_s = timeout.as_secs_f64(),
                "waiting for the broker to acknowledge the outbox"
            );
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while self.outbox.stats().buffered_records > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(TICK).await;
        }
        self.stop.cancel();
        let _ = tokio::time::timeout(DISCONNECT_GRACE * 2, &mut self.task).await;
        self.task.abort();
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.flush())
            .await
            .map_err(|e| EdgeError::Internal(format!("outbox flush task failed: {e}")))??;
        let stats = self.outbox.stats();
        if stats.buffered_records > 0 {
            warn!(
                buffered = stats.buffered_records,
                bytes = stats.buffered_bytes,
                dir = %self.outbox.dir().display(),
                "broker did not acknowledge everything; the rest stays in the outbox for the next run"
            );
        }
        log_stats(&stats, "outbox closed");
        Ok(stats)
    }

    fn outbox_drain_timeout(&self) -> Duration {
        self.outbox.drain_timeout()
    }
}

fn log_stats(s: &OutboxStats, what: &str) {
    info!(
        buffered_records = s.buffered_records,
        buffered_bytes = s.buffered_bytes,
        acked = s.acked_records,
        dropped = s.dropped_records,
        replayed = s.replayed_records,
        "{what}"
    );
}

/// Polls one connection's event loop and forwards its events; ends on the first error.
async fn drive(mut eventloop: rumqttc::EventLoop, tx: mpsc::UnboundedSender<Result<Event, ConnectionError>>) {
    loop {
        let event = eventloop.poll().await;
        let end = event.is_err() || matches!(event, Ok(Event::Outgoing(Outgoing::Disconnect)));
        if tx.send(event).is_err() || end {
            break;
        }
    }
}

/// Records handed to the current connection, oldest first.
#[derive(Default)]
struct InFlight {
    /// (end position, acknowledged) by sequence number `base..`.
    entries: VecDeque<(Pos, bool)>,
    base: u64,
    /// Sequence numbers handed to the client whose packet id is not known yet.
    unsent: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
}

impl InFlight {
    fn push(&mut self, end: Pos) {
        self.unsent.push_back(self.base + self.entries.len() as u64);
        self.entries.push_back((end, false));
    }

    fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.unsent.pop_front() {
            self.by_pkid.insert(pkid, seq);
        }
    }

    /// Marks one PUBACK; returns (end of the acknowledged prefix, records in it).
    fn acked(&mut self, pkid: u16) -> Option<(Pos, u64)> {
        let seq = self.by_pkid.remove(&pkid)?;
        let idx = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        if let Some(entry) = self.entries.get_mut(idx) {
            entry.1 = true;
        }
        let mut done = None;
        let mut n = 0;
        while let Some(&(pos, true)) = self.entries.front() {
            self.entries.pop_front();
            self.base += 1;
            n += 1;
            done = Some(pos);
        }
        done.map(|p| (p, n))
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The forwarder: one fresh clean-session connection after another, each publishing the
/// outbox from the ack cursor on, in order, at most [`INFLIGHT`] unacknowledged at a time.
async fn forward(
    outbox: Arc<Outbox>,
    target: MqttTarget,
    stop: CancellationToken,
    connected: watch::Sender<bool>,
) {
    let addr = target.addr();
    let mut backoff = BACKOFF_MIN;
    let mut ever_connected = false;
    let mut last_progress = tokio::time::Instant::now();
    let mut last_stats = outbox.stats();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'connections: while !stop.is_cancelled() {
        let (client, eventloop) = AsyncClient::new(mqtt_options(&target), usize::from(INFLIGHT) + 8);
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut driver = tokio::spawn(drive(eventloop, tx));
        let mut reader = OutboxReader::new(outbox.cursor());
        let mut inflight = InFlight::default();
        let mut up = false;
        let mut failure: Option<String> = None;
        loop {
            // Hand records to the client while there is room.
            let mut caught_up = false;
            let appended = outbox.appended();
            tokio::pin!(appended);
            appended.as_mut().enable();
            while up && inflight.len() < usize::from(INFLIGHT) {
                match reader.next(&outbox) {
                    Ok(Some((record, end))) => {
                        match client.try_publish(record.topic, QoS::AtLeastOnce, false, record.payload) {
                            Ok(()) => inflight.push(end),
                            Err(e) => {
                                failure = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    Ok(None) => {
                        caught_up = true;
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, "outbox read failed; retrying");
                        break;
                    }
                }
            }
            if failure.is_some() {
                break;
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(DISCONNECT_GRACE, &mut driver).await;
                    driver.abort();
                    break 'connections;
                }
                event = events.recv() => match event {
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        up = true;
                        backoff = BACKOFF_MIN;
                        let _ = connected.send(true);
                        if ever_connected {
                            info!(broker = %addr, "reconnected to MQTT broker; resending from the ack cursor");
                        } else {
                            info!(broker = %addr, client_id = %target.client_id, "connected to MQTT broker");
                        }
                        ever_connected = true;
                    }
                    Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => inflight.sent(pkid),
                    Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                        if let Some((end, n)) = inflight.acked(ack.pkid) {
                            if let Err(e) = outbox.ack(end, n) {
                                warn!(error = %e, "outbox ack failed");
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        failure = Some(e.to_string());
                        break;
                    }
                    None => {
                        failure = Some("event loop ended".into());
                        break;
                    }
                },
                () = &mut appended, if up && caught_up => {}
                _ = ticker.tick() => {
                    if let Err(e) = outbox.tick() {
                        warn!(error = %e, "outbox sync failed");
                    }
                    let stats = outbox.stats();
                    if last_progress.elapsed() >= PROGRESS_EVERY && stats != last_stats {
                        log_stats(&stats, "outbox progress");
                        last_stats = stats;
                        last_progress = tokio::time::Instant::now();
                    }
                }
            }
        }
        driver.abort();
        let _ = connected.send(false);
        let message = failure.unwrap_or_default();
        if up {
            warn!(broker = %addr, error = %message, unacked = inflight.len(), "MQTT connection lost; reconnecting");
        } else {
            debug!(broker = %addr, error = %message, "MQTT connect failed");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if let Err(e) = outbox.tick() {
            warn!(error = %e, "outbox sync failed");
        }
    }
    let _ = connected.send(false);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inflight_advances_through_the_contiguous_prefix() {
        let p = |o| Pos {
            segment: 1,
            offset: o,
        };
        let mut f = InFlight::default();
        for o in [10, 20, 30] {
            f.push(p(o));
        }
        f.sent(1);
        f.sent(2);
        f.sent(3);
        assert_eq!(f.acked(2), None, "waits for the first one");
        assert_eq!(f.acked(1), Some((p(20), 2)));
        assert_eq!(f.acked(9), None, "unknown packet id");
        assert_eq!(f.acked(3), Some((p(30), 1)));
        assert_eq!(f.len(), 0);
        // Packet ids are reused later.
        f.push(p(40));
        f.sent(1);
        assert_eq!(f.acked(1), Some((p(40), 1)));
    }
}
