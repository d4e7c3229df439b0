//! The batching writer: resolves devices and sensors, COPYs readings into a
//! staging table and inserts them (duplicates ignored), stores dead letters,
//! and only then acknowledges the MQTT messages.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use maintainpro_models::dead_letters::{self, NewDeadLetter};
use maintainpro_models::devices::{self, ResolvedDevice};
use maintainpro_models::{db::set_org, Db, ModelError};
use rumqttc::{AsyncClient, Publish};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::codec::{self, Rejection};
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
    let mut batch = Batch::default();
    let skew = chrono::Duration::from_std(config.max_future_skew).unwrap_or(chrono::Duration::minutes(5));
    let mut last_message = Instant::now();
    loop {
        let deadline = match batch.started {
            Some(first) => (first + config.flush_interval).min(last_message + config.idle_flush),
            None => Instant::now() + Duration::from_secs(3600),
        };
        let next = tokio::select! {
            p = rx.recv() => p,
            _ = tokio::time::sleep_until(deadline.into()) => {
                flush(&db, &client, &stats, &mut batch, &shutdown).await;
                continue;
            }
        };
        let Some(publish) = next else { break };
        last_message = Instant::now();
        if batch.started.is_none() {
            batch.started = Some(last_message);
        }
        accept(&mut registry, &publish, skew, &mut batch).await;
        batch.publishes.push(publish);
        if batch.rows.len() >= config.batch_max || batch.publishes.len() >= config.batch_max_messages {
            flush(&db, &client, &stats, &mut batch, &shutdown).await;
        }
    }
    flush(&db, &client, &stats, &mut batch, &shutdown).await;
    Ok(())
}

/// Decodes one message into rows and dead letters of the batch.
async fn accept(registry: &mut Registry, publish: &Publish, skew: chrono::Duration, batch: &mut Batch) {
    let dead = |org: Option<Uuid>, r: Rejection| NewDeadLetter {
        organization_id: org,
        topic: publish.topic.clone(),
        payload: publish.payload.to_vec(),
        reason: r.reason.to_string(),
        detail: r.detail,
    };
    let topic = match codec::parse_topic(&publish.topic) {
        Ok(t) => t,
        Err(r) => return batch.dead.push(dead(None, r)),
    };
    let device = loop {
        match registry.get(topic.org, topic.device, false).await {
            Ok(d) => break d,
            Err(e) => {
                // The registry lookup needs the database; wait for it rather
                // than dead-lettering good data.
                tracing::warn!(error = %e, "device lookup failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let Some(mut device) = device else {
        let org = maintainpro_models::organizations::id_by_slug(&registry.db, topic.org)
            .await
            .ok()
            .flatten();
        let detail = format!("no device '{}' in organization '{}'", topic.device, topic.org);
        return batch
            .dead
            .push(dead(org, Rejection::new(codec::UNKNOWN_DEVICE, detail)));
    };
    let org = Some(device.organization_id);
    if !device.active {
        let detail = format!("device '{}' is deactivated", topic.device);
        return batch
            .dead
            .push(dead(org, Rejection::new(codec::INACTIVE_DEVICE, detail)));
    }
    let samples = match codec::decode(&publish.payload, Utc::now(), skew) {
        Ok(s) => s,
        Err(r) => return batch.dead.push(dead(org, r)),
    };
    let mut invalid = Vec::new();
    let mut unknown = Vec::new();
    for sample in samples {
        for (metric, value) in sample.metrics {
            let sensor = match device.sensors.get(&metric) {
                Some(s) => Some(*s),
                None => {
                    // A sensor registered after we cached the device?
                    if let Ok(Some(fresh)) = registry.get(topic.org, topic.device, true).await {
                        device = fresh;
                    }
                    device.sensors.get(&metric).copied()
                }
            };
            match (sensor, value) {
                (Some(sensor_id), Ok(value)) => batch.rows.push(Row {
                    organization_id: device.organization_id,
                    sensor_id,
                    ts: sample.ts,
                    value,
                }),
                (None, _) => unknown.push(metric),
                (_, Err(why)) => invalid.push(why),
            }
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
            "device '{}' has no sensor for metric(s): {}",
            topic.device,
            unknown.join(", ")
        );
        batch
            .dead
            .push(dead(org, Rejection::new(codec::UNKNOWN_SENSOR, detail)));
    }
}

/// Commits the batch (retrying while the database is unavailable), then
/// acknowledges its messages.
async fn flush(
    db: &Db,
    client: &AsyncClient,
    stats: &IngestStats,
    batch: &mut Batch,
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
        for (reason, n) in count_reasons(&batch.dead) {
            tracing::warn!(reason, count = n, "dead-lettered telemetry");
        }
        for p in &batch.publishes {
            if let Err(e) = client.ack(p).await {
                tracing::warn!(error = %e, "could not send ack");
            }
        }
    }
    *batch = Batch::default();
}

fn count_reasons(dead: &[NewDeadLetter]) -> Vec<(&str, usize)> {
    let mut m: HashMap<&str, usize> = HashMap::new();
    for d in dead {
        *m.entry(d.reason.as_str()).or_default() += 1;
    }
    m.into_iter().collect()
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
        let mut buf = String::with_capacity(rows.len() * 96);
        let mut orgs: Vec<Uuid> = Vec::new();
        for r in rows {
            // writeln! on a String cannot fail.
            let _ = writeln!(
                buf,
                "{}\t{}\t{}\t{}",
                r.organization_id,
                r.sensor_id,
                r.ts.format("%Y-%m-%dT%H:%M:%S%.6f+00"),
                r.value
            );
            if !orgs.contains(&r.organization_id) {
                orgs.push(r.organization_id);
            }
        }
        let mut copy = tx
            .copy_in_raw("COPY readings_stage FROM STDIN (FORMAT text)")
            .await?;
        copy.send(buf.into_bytes()).await?;
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
