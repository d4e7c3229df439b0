//! Ingest counters and the publish→commit latency histogram (the sample
//! timestamp is taken as the publish time), plus what `/metrics` exposes:
//! dead letters by reason, fixed-bucket histograms (batch size, commit
//! latency, sample→commit latency), the newest committed sample and the
//! broker connection state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use uuid::Uuid;

use crate::codec;

/// Upper bounds of the batch-size buckets (readings per committed batch).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Upper bounds (seconds) of the commit-latency buckets (batch start → commit).
pub const COMMIT_SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds (seconds) of the sample→commit latency buckets.
pub const SAMPLE_SECONDS_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

/// The dead-letter reasons ingest knows up front (reported as 0 until seen;
/// other reasons appear once they occur).
const KNOWN_REASONS: &[&str] = &[
    codec::BAD_TOPIC,
    codec::MALFORMED_PAYLOAD,
    codec::BAD_TIMESTAMP,
    codec::FUTURE_TIMESTAMP,
    codec::INVALID_VALUE,
    codec::UNKNOWN_DEVICE,
    codec::INACTIVE_DEVICE,
    codec::UNKNOWN_SENSOR,
];

/// A fixed-bucket histogram (Prometheus style): cheap to record, and its
/// counts only grow.
#[derive(Debug)]
pub struct Buckets {
    bounds: &'static [f64],
    state: Mutex<BucketState>,
}

#[derive(Debug, Default)]
struct BucketState {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A copy of a [`Buckets`], with cumulative counts per upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketsSnapshot {
    /// `(upper bound, observations <= bound)`; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Buckets {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            state: Mutex::new(BucketState {
                counts: vec![0; bounds.len() + 1],
                ..BucketState::default()
            }),
        }
    }

    pub fn observe(&self, value: f64) {
        self.observe_many(std::iter::once(value));
    }

    /// Records several values under one lock.
    pub fn observe_many(&self, values: impl IntoIterator<Item = f64>) {
        if let Ok(mut s) = self.state.lock() {
            for v in values {
                let i = self
                    .bounds
                    .iter()
                    .position(|b| v <= *b)
                    .unwrap_or(self.bounds.len());
                if let Some(c) = s.counts.get_mut(i) {
                    *c += 1;
                }
                s.sum += v;
                s.count += 1;
            }
        }
    }

    pub fn snapshot(&self) -> BucketsSnapshot {
        let Ok(s) = self.state.lock() else {
            return BucketsSnapshot::default();
        };
        let mut acc = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&s.counts)
            .map(|(b, c)| {
                acc += c;
                (*b, acc)
            })
            .collect();
        BucketsSnapshot {
            buckets,
            sum: s.sum,
            count: s.count,
        }
    }
}

#[derive(Debug)]
pub struct IngestStats {
    messages: AtomicU64,
    readings: AtomicU64,
    dead_letters: AtomicU64,
    batches: AtomicU64,
    duplicates: AtomicU64,
    /// Milliseconds from sample timestamp to commit, 1 ms .. 1 h.
    latency_ms: Mutex<Histogram<u64>>,
    /// Dead letters per reason (a handful of stable strings).
    dead_by_reason: Mutex<BTreeMap<String, u64>>,
    /// Readings per committed batch.
    batch_sizes: Buckets,
    /// Seconds from a batch's first message to its commit.
    commit_seconds: Buckets,
    /// Seconds from a sample's timestamp to its commit.
    sample_seconds: Buckets,
    /// Newest committed sample timestamp (ms since the epoch), `i64::MIN`: none yet.
    newest_ms: AtomicI64,
    /// Whether the MQTT connection is up (set on CONNACK, cleared on errors).
    connected: AtomicBool,
    sparkplug: SparkplugCounters,
    /// Sparkplug devices whose node or device died (NDEATH/DDEATH) and did
    /// not come back (birth) yet: (organization, device name) → since when.
    /// In memory only: a restarted ingest knows of no stale device.
    stale: Mutex<BTreeMap<(Uuid, String), DateTime<Utc>>>,
}

#[derive(Debug, Default)]
struct SparkplugCounters {
    messages: AtomicU64,
    seq_gaps: AtomicU64,
    skipped_metrics: AtomicU64,
    rebirth_requests: AtomicU64,
}

/// A Sparkplug device that is offline (see [`IngestStats::stale_devices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDevice {
    pub organization_id: Uuid,
    /// The registered device name (`{edge_node}` or `{edge_node}.{device}`).
    pub device: String,
    pub since: DateTime<Utc>,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsSnapshot {
    pub messages: u64,
    pub readings: u64,
    pub dead_letters: u64,
    pub batches: u64,
    pub duplicates: u64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    /// Sparkplug B messages decoded (any type).
    pub sparkplug_messages: u64,
    /// Sparkplug sequence-number gaps seen (messages lost or reordered).
    pub sparkplug_seq_gaps: u64,
    /// Sparkplug metrics skipped: null, or a type that is not a reading.
    pub sparkplug_skipped_metrics: u64,
    /// Rebirth commands (NCMD) sent for unknown aliases.
    pub sparkplug_rebirth_requests: u64,
    /// Sparkplug devices currently stale (dead, not reborn).
    pub sparkplug_stale_devices: u64,
}

impl Default for IngestStats {
    fn default() -> Self {
        Self::new()
    }
}

impl IngestStats {
    pub fn new() -> Self {
        // Constant, valid bounds: this cannot fail.
        let hist = Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid histogram bounds");
        Self {
            messages: AtomicU64::new(0),
            readings: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            latency_ms: Mutex::new(hist),
            dead_by_reason: Mutex::new(KNOWN_REASONS.iter().map(|r| (r.to_string(), 0)).collect()),
            batch_sizes: Buckets::new(BATCH_SIZE_BUCKETS),
            commit_seconds: Buckets::new(COMMIT_SECONDS_BUCKETS),
            sample_seconds: Buckets::new(SAMPLE_SECONDS_BUCKETS),
            newest_ms: AtomicI64::new(i64::MIN),
            connected: AtomicBool::new(false),
            sparkplug: SparkplugCounters::default(),
            stale: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn message_received(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a committed batch: readings stored (new), offered (stored +
    /// duplicates), dead letters, and each reading's sample→commit latency.
    pub fn batch_committed(&self, stored: u64, offered: u64, dead: u64, latencies_ms: &[i64]) {
        self.readings.fetch_add(stored, Ordering::Relaxed);
        self.duplicates
            .fetch_add(offered.saturating_sub(stored), Ordering::Relaxed);
        self.dead_letters.fetch_add(dead, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.latency_ms.lock() {
            for &ms in latencies_ms {
                h.saturating_record(ms.clamp(1, 3_600_000) as u64);
            }
        }
        self.sample_seconds
            .observe_many(latencies_ms.iter().map(|&ms| ms.max(0) as f64 / 1000.0));
    }

    /// The rest of a committed batch: its readings, how long it took from
    /// its first message to the commit, and its newest sample timestamp.
    pub fn batch_timing(
        &self,
        readings: usize,
        since_start: Option<Duration>,
        newest: Option<DateTime<Utc>>,
    ) {
        self.batch_sizes.observe(readings as f64);
        if let Some(d) = since_start {
            self.commit_seconds.observe(d.as_secs_f64());
        }
        if let Some(ts) = newest {
            self.newest_ms.fetch_max(ts.timestamp_millis(), Ordering::Relaxed);
        }
    }

    /// Counts `n` committed dead letters with this reason.
    pub fn dead_lettered(&self, reason: &str, n: u64) {
        if let Ok(mut m) = self.dead_by_reason.lock() {
            match m.get_mut(reason) {
                Some(c) => *c += n,
                None => {
                    m.insert(reason.to_string(), n);
                }
            }
        }
    }

    /// Records whether ingest is connected to the broker.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Dead letters per reason so far (known reasons included at 0).
    pub fn dead_letters_by_reason(&self) -> Vec<(String, u64)> {
        self.dead_by_reason
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Readings per committed batch.
    pub fn batch_sizes(&self) -> BucketsSnapshot {
        self.batch_sizes.snapshot()
    }

    /// Seconds from a batch's first message to its commit.
    pub fn commit_seconds(&self) -> BucketsSnapshot {
        self.commit_seconds.snapshot()
    }

    /// Seconds from sample timestamp to commit, per reading.
    pub fn sample_to_commit_seconds(&self) -> BucketsSnapshot {
        self.sample_seconds.snapshot()
    }

    /// The newest committed sample timestamp, if any.
    pub fn newest_committed(&self) -> Option<DateTime<Utc>> {
        match self.newest_ms.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    pub(crate) fn sparkplug_message(&self, seq_gap: bool, skipped: u64) {
        let c = &self.sparkplug;
        c.messages.fetch_add(1, Ordering::Relaxed);
        c.seq_gaps.fetch_add(u64::from(seq_gap), Ordering::Relaxed);
        c.skipped_metrics.fetch_add(skipped, Ordering::Relaxed);
    }

    pub(crate) fn sparkplug_rebirth_requested(&self) {
        self.sparkplug.rebirth_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks Sparkplug devices stale (a death).
    pub(crate) fn mark_stale(&self, organization_id: Uuid, devices: &[String], at: DateTime<Utc>) {
        if let Ok(mut m) = self.stale.lock() {
            for d in devices {
                m.entry((organization_id, d.clone())).or_insert(at);
            }
        }
    }

    /// Clears a Sparkplug device's stale mark (a birth).
    pub(crate) fn clear_stale(&self, organization_id: Uuid, device: &str) {
        if let Ok(mut m) = self.stale.lock() {
            m.remove(&(organization_id, device.to_string()));
        }
    }

    /// Sparkplug devices that died and were not reborn since, by
    /// organization and name.
    pub fn stale_devices(&self) -> Vec<StaleDevice> {
        self.stale
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((org, device), since)| StaleDevice {
                        organization_id: *org,
                        device: device.clone(),
                        since: *since,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets the latency samples (benchmarks reset between phases).
    pub fn reset_latency(&self) {
        if let Ok(mut h) = self.latency_ms.lock() {
            h.reset();
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let (p50, p99, max) = self
            .latency_ms
            .lock()
            .map(|h| (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
            .unwrap_or_default();
        StatsSnapshot {
            messages: self.messages.load(Ordering::Relaxed),
            readings: self.readings.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            latency_max_ms: max,
            sparkplug_messages: self.sparkplug.messages.load(Ordering::Relaxed),
            sparkplug_seq_gaps: self.sparkplug.seq_gaps.load(Ordering::Relaxed),
            sparkplug_skipped_metrics: self.sparkplug.skipped_metrics.load(Ordering::Relaxed),
            sparkplug_rebirth_requests: self.sparkplug.rebirth_requests.load(Ordering::Relaxed),
            sparkplug_stale_devices: self.stale.lock().map(|m| m.len() as u64).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let b = Buckets::new(&[1.0, 10.0]);
        b.observe_many([0.5, 1.0, 5.0, 50.0]);
        let s = b.snapshot();
        assert_eq!(s.buckets, vec![(1.0, 2), (10.0, 3)]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 56.5).abs() < 1e-9);
    }

    #[test]
    fn dead_letters_are_counted_by_reason() {
        let s = IngestStats::new();
        s.dead_lettered(codec::UNKNOWN_SENSOR, 2);
        s.dead_lettered("something_new", 1);
        let m: BTreeMap<_, _> = s.dead_letters_by_reason().into_iter().collect();
        assert_eq!(m[codec::UNKNOWN_SENSOR], 2);
        assert_eq!(m[codec::BAD_TOPIC], 0);
        assert_eq!(m["something_new"], 1);
    }

    #[test]
    fn batch_timing_keeps_the_newest_sample() {
        let s = IngestStats::new();
        assert_eq!(s.newest_committed(), None);
        let t1 = DateTime::from_timestamp_millis(2_000).expect("ts");
        let t0 = DateTime::from_timestamp_millis(1_000).expect("ts");
        s.batch_timing(3, Some(Duration::from_millis(20)), Some(t1));
        s.batch_timing(1, None, Some(t0));
        assert_eq!(s.newest_committed(), Some(t1));
        assert_eq!(s.batch_sizes().count, 2);
        assert_eq!(s.commit_seconds().count, 1);
    }
}
