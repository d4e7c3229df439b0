//! Ingest counters and the publish→commit latency histogram (the sample
//! timestamp is taken as the publish time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

#[derive(Debug)]
pub struct IngestStats {
    messages: AtomicU64,
    readings: AtomicU64,
    dead_letters: AtomicU64,
    batches: AtomicU64,
    duplicates: AtomicU64,
    /// Milliseconds from sample timestamp to commit, 1 ms .. 1 h.
    latency_ms: Mutex<Histogram<u64>>,
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
        }
    }

    pub fn message_received(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn batch_committed(&self, stored: u64, offered: u64, dead: u64, latencies_ms: &[i64]) {
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
        }
    }
}
