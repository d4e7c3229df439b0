//! The batching writer: resolves devices and sensors, COPYs readings into a
//! staging table and inserts them (duplicates ignored), stores dead letters,
//! and only then acknowledges the MQTT messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use maintainpro_models::dead_letters::{self, NewDeadLetter};
use maintainpro_models::devices::{self, ResolvedDevice};
use maintainpro_models::{db::set_org, Db, ModelError};
use rumqttc::{AsyncClient, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::codec::{self, Rejection};
use crate::sparkplug::{self, Sessions};
use crate::{IngestConfig, IngestError, IngestStats};

/// A reading ready to store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub organization_id: Uuid,
    pub sensor_id: Uuid,
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// What one batch holds until it is committed.
#[derive(Default)]
struct Batch {
    rows: Vec<Row>,
    dead: Vec<NewDeadLetter>,
    publishes: Vec<Publish>,
    started: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.publishes.is_empty()
    }
}

/// A cached lookup (None: no such device) and when it was made.
type CacheEntry = (Option<Arc<ResolvedDevice>>, Instant);

/// Resolves devices by topic, caching hits for a while and misses briefly.
struct Registry {
    db: Db,
    cache: HashMap<(String, String), CacheEntry>,
}

const HIT_TTL: Duration = Duration::from_secs(30);
const MISS_TTL: Duration = Duration::from_secs(3);

impl Registry {
    async fn get(
        &mut self,
        org: &str,
        device: &str,
        refresh: bool,
    ) -> Result<Option<Arc<ResolvedDevice>>, ModelError> {
        let key = (org.to_string(), device.to_string());
        if let Some((entry, at)) = self.cache.get(&key) {
            let ttl = if entry.is_some() { HIT_TTL } else { MISS_TTL };
            // A refresh (unknown metric) is honoured at most once per MISS_TTL.
            if at.elapsed() < ttl && !(refresh && at.elapsed() >= MISS_TTL) {
                return Ok(entry.clone());
            }
        }
        let found = devices::resolve(&self.db, org, device).await?.map(Arc::new);
        self.cache.insert(key, (found.clone(), Instant::now()));
        Ok(found)
    }
}

pub(crate) async fn run(
    db: Db,
    client: AsyncClient,
    config: IngestConfig,
    stats: Arc<IngestStats>,
    mut rx: mpsc::Receiver<Publish>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let mut registry = Registry {
        db: db.clone(),
        cache: HashMap::new(),
    };
    let mut sessions = Sessions::new();
    let mut batch = Batch::default();
    let skew = chrono::Duration::from_std(config.max_future_skew).unwrap_or(chrono::Duration::minutes(5));
    let mut last_message = Instant::now();
    let mut acks = AckQueue::default();
    loop {
        let deadline = match batch.started {
            Some(first) => (first + config.flush_interval).min(last_message + config.idle_flush),
            None => Instant::now() + Duration::from_secs(3600),
        };
        // Acks that did not fit are retried soon, whatever else happens.
        let ack_retry = if acks.is_empty() {
            deadline
        } else {
            Instant::now() + Duration::from_millis(1)
        };
        let next = tokio::select! {
            p = rx.recv() => p,
            _ = tokio::time::sleep_until(deadline.into()) => {
                flush(&db, &client, &stats, &mut batch, &mut acks, &shutdown).await;
                continue;
            }
            _ = tokio::time::sleep_until(ack_retry.into()), if !acks.is_empty() => {
                acks.drain(&client);
                continue;
            }
        };
        let Some(publish) = next else { break };
        last_message = Instant::now();
        if batch.started.is_none() {
            batch.started = Some(last_message);
        }
        if sparkplug::is_sparkplug(&publish.topic) {
            let ctx = SparkplugCtx {
                sessions: &mut sessions,
                client: &client,
                stats: &stats,
            };
            accept_sparkplug(&mut registry, ctx, &publish, skew, &mut batch).await;
        } else {
            accept(&mut registry, &publish, skew, &mut batch).await;
        }
        batch.publishes.push(publish);
        if batch.rows.len() >= config.batch_max || batch.publishes.len() >= config.batch_max_messages {
            flush(&db, &client, &stats, &mut batch, &mut acks, &shutdown).await;
        }
    }
    flush(&db, &client, &stats, &mut batch, &mut acks, &shutdown).await;
    Ok(())
}

/// Decodes one message into rows and dead letters of the batch.
async fn accept(registry: &mut Registry, publish: &Publish, skew: chrono::Duration, batch: &mut Batch) {
    let dead = |org: Option<Uuid>, r: Rejection| dead_letter(publish, org, r);
    let topic = match codec::parse_topic(&publish.topic) {
        Ok(t) => t,
        Err(r) => return batch.dead.push(dead(None, r)),
    };
    let Some(device) = resolve_device(registry, topic.org, topic.device, batch, &dead).await else {
        return;
    };
    let samples = match codec::decode(&publish.payload, Utc::now(), skew) {
        Ok(s) => s,
        Err(r) => return batch.dead.push(dead(Some(device.organization_id), r)),
    };
    let readings = samples.into_iter().flat_map(|s| {
        s.metrics
            .into_iter()
            .map(move |(metric, value)| (metric, s.ts, value))
    });
    let at = (topic.org, topic.device);
    place_readings(registry, at, device, readings, Vec::new(), batch, &dead).await;
}

/// A dead letter of `publish`.
fn dead_letter(publish: &Publish, org: Option<Uuid>, r: Rejection) -> NewDeadLetter {
    NewDeadLetter {
        organization_id: org,
        topic: publish.topic.clone(),
        payload: publish.payload.to_vec(),
        reason: r.reason.to_string(),
        detail: r.detail,
    }
}

async fn org_by_slug(db: &Db, slug: &str) -> Option<Uuid> {
    maintainpro_models::organizations::id_by_slug(db, slug)
        .await
        .ok()
        .flatten()
}

/// The active device `{org_slug}/{name}`, or `None` after dead-lettering the
/// message as `unknown_device` / `inactive_device`. Waits for the database
/// rather than dead-lettering good data while it is away.
async fn resolve_device(
    registry: &mut Registry,
    org_slug: &str,
    name: &str,
    batch: &mut Batch,
    dead: &(dyn Fn(Option<Uuid>, Rejection) -> NewDeadLetter + Sync),
) -> Option<Arc<ResolvedDevice>> {
    let device = loop {
        match registry.get(org_slug, name, false).await {
            Ok(d) => break d,
            Err(e) => {
                tracing::warn!(error = %e, "device lookup failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let Some(device) = device else {
        let org = org_by_slug(&registry.db, org_slug).await;
        let detail = format!("no device '{name}' in organization '{org_slug}'");
        batch
            .dead
            .push(dead(org, Rejection::new(codec::UNKNOWN_DEVICE, detail)));
        return None;
    };
    if !device.active {
        let detail = format!("device '{name}' is deactivated");
        let org = Some(device.organization_id);
        batch
            .dead
            .push(dead(org, Rejection::new(codec::INACTIVE_DEVICE, detail)));
        return None;
    }
    Some(device)
}

/// Adds decoded (metric, ts, value) readings of one message to the batch:
/// each metric resolves to the device's sensor (the cached device is
/// refreshed for a metric it does not know: a sensor registered since), and
/// invalid values (with `invalid` from the decoder) and unknown metrics are
/// dead-lettered, one letter each listing them.
async fn place_readings(
    registry: &mut Registry,
    (org_slug, name): (&str, &str),
    mut device: Arc<ResolvedDevice>,
    readings: impl IntoIterator<Item = (String, DateTime<Utc>, Result<f64, String>)>,
    mut invalid: Vec<String>,
    batch: &mut Batch,
    dead: &(dyn Fn(Option<Uuid>, Rejection) -> NewDeadLetter + Sync),
) {
    let org = Some(device.organization_id);
    let mut unknown = Vec::new();
    for (metric, ts, value) in readings {
        let sensor = match device.sensors.get(&metric) {
            Some(s) => Some(*s),
            None => {
                if let Ok(Some(fresh)) = registry.get(org_slug, name, true).await {
                    device = fresh;
                }
                device.sensors.get(&metric).copied()
            }
        };
        match (sensor, value) {
            (Some(sensor_id), Ok(value)) => batch.rows.push(Row {
                organization_id: device.organization_id,
                sensor_id,
                ts,
                value,
            }),
            (None, _) => unknown.push(metric),
            (_, Err(why)) => invalid.push(why),
        }
    }
    if !invalid.is_empty() {
        batch.dead.push(dead(
            org,
            Rejection::new(codec::INVALID_VALUE, invalid.join("; ")),
        ));
    }
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        let detail = format!(
            "device '{name}' has no sensor for metric(s): {}",
            unknown.join(", ")
        );
        batch
            .dead
            .push(dead(org, Rejection::new(codec::UNKNOWN_SENSOR, detail)));
    }
}

/// What the Sparkplug path needs besides the registry and the batch.
struct SparkplugCtx<'a> {
    sessions: &'a mut Sessions,
    client: &'a AsyncClient,
    stats: &'a IngestStats,
}

/// Decodes one Sparkplug B message into rows and dead letters of the batch,
/// keeping the session state (aliases, sequence numbers) and the stale
/// devices up to date. Same reasons as the JSON path, plus
/// `unknown_alias` and `no_usable_metrics`.
async fn accept_sparkplug(
    registry: &mut Registry,
    ctx: SparkplugCtx<'_>,
    publish: &Publish,
    skew: chrono::Duration,
    batch: &mut Batch,
) {
    let dead = |org: Option<Uuid>, r: Rejection| dead_letter(publish, org, r);
    let topic = match sparkplug::parse_topic(&publish.topic) {
        Ok(t) => t,
        Err(r) => return batch.dead.push(dead(None, r)),
    };
    let payload = match sparkplug::decode_payload(&publish.payload) {
        Ok(p) => p,
        Err(r) => {
            let org = org_by_slug(&registry.db, topic.group).await;
            return batch.dead.push(dead(org, r));
        }
    };
    let now = Utc::now();
    let gap = ctx.sessions.track_seq(&topic, payload.seq);
    if let Some((expected, got)) = gap {
        tracing::warn!(
            group = topic.group,
            edge_node = topic.edge_node,
            expected,
            got,
            "sparkplug sequence gap (messages lost or reordered)"
        );
    }
    let decoded = ctx.sessions.apply_message(&topic, &payload, now, skew);
    let skipped = decoded.as_ref().map(|d| d.unsupported + d.nulls).unwrap_or(0);
    ctx.stats.sparkplug_message(gap.is_some(), skipped);
    let name = topic.device_name();
    let decoded = match decoded {
        Ok(d) => d,
        Err(r) => {
            let org = org_by_slug(&registry.db, topic.group).await;
            return batch.dead.push(dead(org, r));
        }
    };
    if decoded.stale_death {
        tracing::info!(
            group = topic.group,
            edge_node = topic.edge_node,
            "ignoring NDEATH of an earlier session (bdSeq mismatch)"
        );
        return;
    }
    if topic.kind.is_birth() || topic.kind.is_death() {
        let org = org_by_slug(&registry.db, topic.group).await;
        match org {
            Some(org) if topic.kind.is_death() => {
                tracing::info!(group = topic.group, devices = ?decoded.died, "sparkplug death: devices marked stale");
                ctx.stats.mark_stale(org, &decoded.died, now);
            }
            Some(org) => ctx.stats.clear_stale(org, &name),
            None => {
                let detail = format!("no organization '{}' (the Sparkplug group id)", topic.group);
                return batch
                    .dead
                    .push(dead(None, Rejection::new(codec::UNKNOWN_DEVICE, detail)));
            }
        }
        if topic.kind.is_death() {
            return;
        }
    }
    if decoded.readings.is_empty() && decoded.unknown_aliases.is_empty() && decoded.invalid.is_empty() {
        // A birth of control metrics only.
        return;
    }
    let Some(device) = resolve_device(registry, topic.group, &name, batch, &dead).await else {
        return;
    };
    let org = Some(device.organization_id);
    let readings = decoded
        .readings
        .into_iter()
        .map(|r| (sparkplug::sensor_metric(&r.metric), r.ts, r.value));
    place_readings(
        registry,
        (topic.group, &name),
        device,
        readings,
        decoded.invalid,
        batch,
        &dead,
    )
    .await;
    if !decoded.unknown_aliases.is_empty() {
        let mut aliases = decoded.unknown_aliases;
        aliases.sort_unstable();
        aliases.dedup();
        let aliases: Vec<String> = aliases.iter().map(u64::to_string).collect();
        let requested = ctx
            .sessions
            .should_request_rebirth(topic.group, topic.edge_node, Instant::now());
        if requested {
            let (cmd_topic, cmd) = sparkplug::rebirth_command(topic.group, topic.edge_node, now);
            match ctx.client.try_publish(cmd_topic, QoS::AtMostOnce, false, cmd) {
                Ok(()) => ctx.stats.sparkplug_rebirth_requested(),
                Err(e) => tracing::warn!(error = %e, "could not request a sparkplug rebirth"),
            }
        }
        let detail = format!(
            "device '{name}': no birth (NBIRTH/DBIRTH) since ingest started or since the node's death \
             defined alias(es) {}; a rebirth was requested from edge node '{}'",
            aliases.join(", "),
            topic.edge_node
        );
        batch
            .dead
            .push(dead(org, Rejection::new(sparkplug::UNKNOWN_ALIAS, detail)));
    }
}

/// Commits the batch (retrying while the database is unavailable), then
/// acknowledges its messages.
async fn flush(
    db: &Db,
    client: &AsyncClient,
    stats: &IngestStats,
    batch: &mut Batch,
    acks: &mut AckQueue,
    shutdown: &CancellationToken,
) {
    if batch.is_empty() {
        batch.started = None;
        return;
    }
    let mut backoff = Duration::from_millis(100);
    let stored = loop {
        match commit(db, &batch.rows, &batch.dead).await {
            Ok(n) => break Some(n),
            Err(e) if shutdown.is_cancelled() => {
                // Not acked: the broker redelivers to the next session.
                tracing::warn!(error = %e, "shutting down with an uncommitted batch; it will be redelivered");
                break None;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, rows = batch.rows.len(), "batch commit failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    if let Some(stored) = stored {
        let now = Utc::now();
        let lat: Vec<i64> = batch
            .rows
            .iter()
            .map(|r| (now - r.ts).num_milliseconds())
            .collect();
        stats.batch_committed(stored, batch.rows.len() as u64, batch.dead.len() as u64, &lat);
        let newest = batch.rows.iter().map(|r| r.ts).max();
        stats.batch_timing(batch.rows.len(), batch.started.map(|s| s.elapsed()), newest);
        for (reason, n) in count_reasons(&batch.dead) {
            stats.dead_lettered(reason, n as u64);
            tracing::warn!(reason, count = n, "dead-lettered telemetry");
        }
        acks.extend(batch.publishes.iter().map(AckQueue::ack_of));
        acks.drain(client);
    }
    *batch = Batch::default();
}

/// Acknowledgements waiting for room in the MQTT client's request queue.
///
/// The writer must never *wait* for that room: the queue is drained only
/// while the poller polls the event loop, and the poller may itself be
/// waiting for the writer to take a message (a broker that sends beyond its
/// in-flight window fills both queues: a deadlock). So acks are handed over
/// with `try_ack`, and what does not fit is kept here (a few bytes each) and
/// retried on the writer's next turn.
#[derive(Default)]
pub(crate) struct AckQueue {
    pending: std::collections::VecDeque<Publish>,
}

impl AckQueue {
    /// What an ack needs of a message: its packet id and QoS, not its payload.
    fn ack_of(p: &Publish) -> Publish {
        let mut ack = Publish::new("", p.qos, Vec::new());
        ack.pkid = p.pkid;
        ack
    }

    fn extend(&mut self, acks: impl IntoIterator<Item = Publish>) {
        self.pending.extend(acks);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Hands over as many acks as the client queue takes, oldest first.
    pub(crate) fn drain(&mut self, client: &AsyncClient) {
        while let Some(p) = self.pending.front() {
            match client.try_ack(p) {
                Ok(()) => {
                    self.pending.pop_front();
                }
                // Full (or the event loop is gone: then the messages come
                // again with the next session and these acks do not matter).
                Err(_) => break,
            }
        }
    }
}

fn count_reasons(dead: &[NewDeadLetter]) -> Vec<(&str, usize)> {
    let mut m: HashMap<&str, usize> = HashMap::new();
    for d in dead {
        *m.entry(d.reason.as_str()).or_default() += 1;
    }
    m.into_iter().collect()
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// The rows in PostgreSQL's binary COPY format (organization_id uuid,
/// sensor_id uuid, ts timestamptz, value float8): no text to format here
/// nor to parse on the server, which is most of a text COPY's cost.
fn copy_binary(rows: &[Row]) -> Vec<u8> {
    // 4 fields: 2 (count) + 4 × 4 (lengths) + 16 + 16 + 8 + 8 bytes.
    let mut buf = Vec::with_capacity(19 + rows.len() * 66 + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        buf.extend_from_slice(&4i16.to_be_bytes());
        buf.extend_from_slice(&16i32.to_be_bytes());
        buf.extend_from_slice(r.organization_id.as_bytes());
        buf.extend_from_slice(&16i32.to_be_bytes());
        buf.extend_from_slice(r.sensor_id.as_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&(r.ts.timestamp_micros() - PG_EPOCH_OFFSET_MICROS).to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&r.value.to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// Writes readings and dead letters in one transaction; returns how many
/// readings were new (duplicates of stored ones are skipped).
pub async fn commit(db: &Db, rows: &[Row], dead: &[NewDeadLetter]) -> Result<u64, ModelError> {
    let mut stored = 0;
    if !rows.is_empty() {
        let mut tx = db.system().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('pg_temp.readings_stage')::text")
            .fetch_one(&mut *tx)
            .await?;
        if exists.is_none() {
            sqlx::query(
                "CREATE TEMP TABLE readings_stage (organization_id uuid, sensor_id uuid, ts timestamptz, value float8)
                 ON COMMIT DELETE ROWS",
            )
            .execute(&mut *tx)
            .await?;
        }
        let mut orgs: Vec<Uuid> = Vec::new();
        for r in rows {
            if !orgs.contains(&r.organization_id) {
                orgs.push(r.organization_id);
            }
        }
        let buf = copy_binary(rows);
        let mut copy = tx
            .copy_in_raw("COPY readings_stage FROM STDIN (FORMAT binary)")
            .await?;
        copy.send(buf).await?;
        copy.finish().await?;
        for org in orgs {
            set_org(&mut tx, org).await?;
            let r = sqlx::query(
                "INSERT INTO readings (organization_id, sensor_id, ts, value)
                 SELECT organization_id, sensor_id, ts, value FROM readings_stage WHERE organization_id = $1
                 ON CONFLICT (sensor_id, ts) DO NOTHING",
            )
            .bind(org)
            .execute(&mut *tx)
            .await?;
            stored += r.rows_affected();
        }
        tx.commit().await?;
    }
    dead_letters::insert_many(db, dead).await?;
    Ok(stored)
}
