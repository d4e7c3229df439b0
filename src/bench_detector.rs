//! `maintainpro bench detector`: detector throughput and footprint, on one
//! core, without a database. Drives `--sensors` streaming detectors
//! (`maintainpro_analytics::stream`) with a realistic signal (daily cycle,
//! noise, rare spikes; one point per sensor per round, `--interval-secs`
//! apart) for `--points` points in all, and reports points/s, bytes of state
//! per sensor (`memory_bytes`) and the peak RSS increase; then fits the
//! multivariate PCA detector (`maintainpro_analytics::multivariate`) on one
//! week of minutes of `--mv-sensors` correlated sensors and reports fit
//! time, model bytes and scored rows/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use maintainpro_analytics::detector::{Detector, DetectorConfig};
use maintainpro_analytics::multivariate::{PcaConfig, PcaModel};
use maintainpro_analytics::stream::{StreamConfig, StreamDetector};

#[derive(Debug, Clone)]
pub struct DetectorBenchOptions {
    /// Streaming detectors (one per sensor).
    pub sensors: usize,
    /// Streaming points in all (sensors × rounds).
    pub points: u64,
    /// Seconds between two points of a sensor.
    pub interval_secs: i64,
    /// Each of the two phases stops early after this much time.
    pub max_seconds: f64,
    /// Sensors per row of the multivariate detector.
    pub mv_sensors: usize,
    /// Training rows of the multivariate detector (10 080 = one week of minutes).
    pub train_rows: usize,
    /// Rows scored by the multivariate detector.
    pub mv_points: u64,
}

impl Default for DetectorBenchOptions {
    fn default() -> Self {
        Self {
            sensors: 10_000,
            points: 5_000_000,
            interval_secs: 300,
            max_seconds: 20.0,
            mv_sensors: 8,
            train_rows: 10_080,
            mv_points: 2_000_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DetectorBenchReport {
    pub sensors: usize,
    pub stream_points: u64,
    pub stream_rounds: u64,
    pub stream_seconds: f64,
    pub stream_points_per_sec: f64,
    /// Points per second of this thread's CPU time (not skewed by other
    /// processes on a busy machine), where /proc tells it.
    pub stream_points_per_cpu_sec: Option<f64>,
    /// Mean of `memory_bytes()` over the detectors, after the run.
    pub state_bytes_per_sensor: f64,
    /// Peak RSS (VmHWM) after the run minus RSS before the detectors existed.
    pub rss_increase_bytes: Option<u64>,
    /// Share of streaming points scored at or above the default threshold.
    pub stream_flagged_share: f64,
    /// The live episode detector (stream detector + z gate, limits, stuck
    /// and drift checks), as the analytics worker runs it per reading.
    pub live_points: u64,
    pub live_points_per_sec: f64,
    pub live_bytes_per_sensor: f64,
    pub mv_sensors: usize,
    pub train_rows: usize,
    pub fit_ms: f64,
    pub components: usize,
    pub model_bytes: usize,
    pub model_json_bytes: usize,
    pub mv_rows: u64,
    pub mv_seconds: f64,
    pub mv_rows_per_sec: f64,
    /// Share of healthy scored rows flagged anomalous.
    pub mv_flagged_share: f64,
}

/// Deterministic pseudo-random numbers (splitmix64, Box–Muller).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const DAY_S: f64 = 86_400.0;

/// One sensor's synthetic signal: level + daily cycle + noise + rare spikes.
struct Signal {
    base: f64,
    amp: f64,
    phase: f64,
    noise: f64,
}

impl Signal {
    fn random(rng: &mut Rng) -> Self {
        Self {
            base: 20.0 + 80.0 * rng.uniform(),
            amp: 2.0 + 10.0 * rng.uniform(),
            phase: std::f64::consts::TAU * rng.uniform(),
            noise: 0.2 + rng.uniform(),
        }
    }
    fn at(&self, secs: f64, rng: &mut Rng) -> f64 {
        let cycle = (std::f64::consts::TAU * secs / DAY_S + self.phase).sin();
        let spike = if rng.next_u64() % 10_000 == 0 {
            8.0 * self.amp
        } else {
            0.0
        };
        self.base + self.amp * cycle + self.noise * rng.gauss() + spike
    }
}

/// CPU time this thread has run, in ns (Linux `schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// A kB figure of /proc/self/status, in bytes.
fn proc_status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn detector(opts: DetectorBenchOptions) -> anyhow::Result<DetectorBenchReport> {
    anyhow::ensure!(
        opts.sensors > 0 && opts.points > 0 && opts.interval_secs > 0,
        "sensors, points and interval must be positive"
    );
    anyhow::ensure!(
        opts.mv_sensors >= 2 && opts.mv_points > 0,
        "the multivariate detector needs at least 2 sensors and 1 point"
    );
    anyhow::ensure!(opts.train_rows >= opts.mv_sensors + 2, "too few training rows");
    let budget = Duration::from_secs_f64(opts.max_seconds.max(0.1));
    let start: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad start time"))?;

    // --- Streaming detectors ---
    let mut rng = Rng(42);
    let signals: Vec<Signal> = (0..opts.sensors).map(|_| Signal::random(&mut rng)).collect();
    let mut values = vec![0.0; opts.sensors];
    let rss_before = proc_status_bytes("VmRSS:");
    let mut detectors: Vec<StreamDetector> = (0..opts.sensors)
        .map(|_| StreamDetector::new(StreamConfig::default()))
        .collect();
    let threshold = StreamConfig::default().threshold;
    let rounds_wanted = opts.points.div_ceil(opts.sensors as u64);
    let (mut rounds, mut flagged, mut busy) = (0u64, 0u64, Duration::ZERO);
    let mut cpu_ns = Some(0u64);
    let wall = Instant::now();
    while rounds < rounds_wanted && wall.elapsed() < budget {
        let secs = rounds as i64 * opts.interval_secs;
        let ts = start + chrono::Duration::seconds(secs);
        for (v, s) in values.iter_mut().zip(&signals) {
            *v = s.at(secs as f64, &mut rng);
        }
        let cpu0 = thread_cpu_ns();
        let t0 = Instant::now();
        for (d, &v) in detectors.iter_mut().zip(&values) {
            if d.update(ts, black_box(v)) >= threshold {
                flagged += 1;
            }
        }
        busy += t0.elapsed();
        cpu_ns = match (cpu_ns, cpu0, thread_cpu_ns()) {
            (Some(sum), Some(a), Some(b)) => Some(sum + b.saturating_sub(a)),
            _ => None,
        };
        rounds += 1;
    }
    let hwm_after = proc_status_bytes("VmHWM:");
    let stream_points = rounds * opts.sensors as u64;
    let state_total: usize = detectors.iter().map(StreamDetector::memory_bytes).sum();
    drop(black_box(detectors));

    // --- Live episode detectors (what the worker runs per reading) ---
    let mut live: Vec<Detector> = (0..opts.sensors)
        .map(|_| Detector::new(DetectorConfig::default(), None, None))
        .collect();
    let (mut live_rounds, mut live_busy) = (0u64, Duration::ZERO);
    let wall = Instant::now();
    while live_rounds < rounds_wanted && wall.elapsed() < budget {
        let secs = live_rounds as i64 * opts.interval_secs;
        let ts = start + chrono::Duration::seconds(secs);
        for (v, s) in values.iter_mut().zip(&signals) {
            *v = s.at(secs as f64, &mut rng);
        }
        let t0 = Instant::now();
        for (d, &v) in live.iter_mut().zip(&values) {
            black_box(d.observe(ts, black_box(v)));
        }
        live_busy += t0.elapsed();
        live_rounds += 1;
    }
    let live_points = live_rounds * opts.sensors as u64;
    let live_total: usize = live.iter().map(Detector::memory_bytes).sum();
    drop(black_box(live));

    // --- Multivariate detector ---
    let mut rng = Rng(7);
    let p = opts.mv_sensors;
    let load: Vec<(f64, f64, f64, f64)> = (0..p)
        .map(|_| {
            (
                10.0 + 90.0 * rng.uniform(), // offset
                1.0 + 9.0 * rng.uniform(),   // weight of the daily cycle
                4.0 * rng.uniform() - 2.0,   // weight of the load
                0.05 + 0.25 * rng.uniform(), // noise
            )
        })
        .collect();
    let mut level = 0.0f64;
    let mut row_at = |minute: usize, rng: &mut Rng| -> Vec<f64> {
        let cycle = (std::f64::consts::TAU * minute as f64 * 60.0 / DAY_S).sin();
        level = 0.99 * level + 0.14 * rng.gauss();
        load.iter()
            .map(|&(o, a, b, sd)| o + a * cycle + b * level + sd * rng.gauss())
            .collect()
    };
    let train: Vec<Vec<f64>> = (0..opts.train_rows).map(|m| row_at(m, &mut rng)).collect();
    let test: Vec<Vec<f64>> = (0..10_080)
        .map(|m| row_at(opts.train_rows + m, &mut rng))
        .collect();
    let config = PcaConfig {
        min_samples: opts.mv_sensors + 2,
        ..PcaConfig::default()
    };
    let mut fits = Vec::new();
    let mut model = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let m = PcaModel::fit(black_box(&train), &config)?;
        fits.push(t0.elapsed().as_secs_f64());
        model = Some(m);
    }
    let model = model.ok_or_else(|| anyhow::anyhow!("no model"))?;
    fits.sort_by(f64::total_cmp);
    let fit_ms = fits[fits.len() / 2] * 1e3;
    let model_json_bytes = serde_json::to_string(&model)?.len();

    let (mut mv_rows, mut mv_flagged) = (0u64, 0u64);
    let t0 = Instant::now();
    'outer: loop {
        for row in &test {
            let s = model.score(black_box(row))?;
            mv_flagged += u64::from(s.anomalous);
            black_box(&s);
            mv_rows += 1;
            if mv_rows >= opts.mv_points {
                break 'outer;
            }
        }
        if t0.elapsed() >= budget {
            break;
        }
    }
    let mv_seconds = t0.elapsed().as_secs_f64();

    let stream_seconds = busy.as_secs_f64();
    Ok(DetectorBenchReport {
        sensors: opts.sensors,
        stream_points,
        stream_rounds: rounds,
        stream_seconds,
        stream_points_per_sec: stream_points as f64 / stream_seconds.max(1e-9),
        stream_points_per_cpu_sec: cpu_ns
            .filter(|&ns| ns > 0)
            .map(|ns| stream_points as f64 / (ns as f64 / 1e9)),
        state_bytes_per_sensor: state_total as f64 / opts.sensors as f64,
        rss_increase_bytes: match (rss_before, hwm_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b)),
            _ => None,
        },
        stream_flagged_share: flagged as f64 / stream_points.max(1) as f64,
        live_points,
        live_points_per_sec: live_points as f64 / live_busy.as_secs_f64().max(1e-9),
        live_bytes_per_sensor: live_total as f64 / opts.sensors as f64,
        mv_sensors: p,
        train_rows: opts.train_rows,
        fit_ms,
        components: model.components(),
        model_bytes: model.memory_bytes(),
        model_json_bytes,
        mv_rows,
        mv_seconds,
        mv_rows_per_sec: mv_rows as f64 / mv_seconds.max(1e-9),
        mv_flagged_share: mv_flagged as f64 / mv_rows.max(1) as f64,
    })
}
