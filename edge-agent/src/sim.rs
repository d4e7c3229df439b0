//! Fleet simulator: deterministic sensor signals with injected faults, published over MQTT.
//!
//! The pure part is [`Fleet`], which turns a timestamp into one [`Message`] per device; the
//! async [`simulate`] drives it (real time or synthetic time) and publishes the results.

use std::collections::HashSet;
use std::f64::consts::TAU;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::message::{
    encode_payload, format_ts, now_millis, telemetry_topic, truncate_to_millis, validate_topic_level, Message,
};
use crate::outbox::{OutboxConfig, OutboxStats};
use crate::publisher::DRAIN_TIMEOUT;
use crate::uplink::Uplink;
use crate::{EdgeError, FaultKind, FaultSpec, MqttTarget};

/// Seed used by [`SimConfig::fleet`] and [`SimConfig::default`].
pub const DEFAULT_SEED: u64 = 0x4d50_2024;

/// One simulated sensor: `value(t) = base + daily_amplitude·sin(2π·s/86400) + N(0, noise²)`
/// where `s` is seconds since midnight UTC. Values are rounded to 3 decimals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorSpec {
    pub metric: String,
    pub unit: String,
    pub base: f64,
    pub daily_amplitude: f64,
    /// Standard deviation of the gaussian noise.
    pub noise: f64,
}

impl SensorSpec {
    /// The unit fault magnitudes are multiplied by: `max(noise, 1% of |base|)`, or 1.0 if both
    /// are zero. A magnitude of 10 is therefore ≥ 10 noise standard deviations.
    pub fn fault_scale(&self) -> f64 {
        let scale = self.noise.abs().max(0.01 * self.base.abs());
        if scale > 0.0 {
            scale
        } else {
            1.0
        }
    }

    /// The noise-free signal at `ts` (base plus daily sine).
    pub fn baseline(&self, ts: DateTime<Utc>) -> f64 {
        let secs =
            f64::from(ts.num_seconds_from_midnight()) + f64::from(ts.nanosecond() % 1_000_000_000) / 1e9;
        self.base + self.daily_amplitude * (TAU * secs / 86_400.0).sin()
    }
}

/// One simulated gateway/device and its sensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    pub name: String,
    pub sensors: Vec<SensorSpec>,
}

/// What to simulate and how to publish it.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Organization slug (topic level).
    pub org: String,
    pub devices: Vec<DeviceSpec>,
    /// Time between samples of each device.
    pub interval: Duration,
    pub faults: Vec<FaultSpec>,
    /// Samples per MQTT message: 1 = single-object payloads, >1 = array payloads.
    pub batch: usize,
    /// Stop after this many samples per device; `None` = until shutdown.
    pub max_samples: Option<u64>,
    /// `Some(origin)`: synthetic timestamps `origin + i·interval`, published as fast as
    /// possible (tests, benchmarks, backfills). `None`: wall clock, paced in real time.
    pub time_origin: Option<DateTime<Utc>>,
    /// Noise seed; the same seed, specs and timestamps give bit-identical values.
    pub seed: u64,
    /// `Some`: store every message in this on-disk outbox first and forward it from there
    /// (survives broker outages and restarts); `None` (default): publish directly.
    pub outbox: Option<OutboxConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            org: "demo".into(),
            devices: Vec::new(),
            interval: Duration::from_secs(1),
            faults: Vec::new(),
            batch: 1,
            max_samples: None,
            time_origin: None,
            seed: DEFAULT_SEED,
            outbox: None,
        }
    }
}

/// (metric, unit, base, daily amplitude, noise σ) of typical rotating-equipment sensors.
const CATALOG: &[(&str, &str, f64, f64, f64)] = &[
    ("bearing_temp", "°C", 65.0, 3.0, 0.4),
    ("vibration", "mm/s", 2.5, 0.3, 0.15),
    ("motor_current", "A", 12.0, 1.0, 0.25),
    ("pressure", "bar", 6.0, 0.2, 0.05),
    ("flow", "m3/h", 40.0, 3.0, 0.8),
    ("oil_temp", "°C", 55.0, 2.5, 0.3),
    ("rpm", "rpm", 1480.0, 5.0, 3.0),
    ("humidity", "%", 45.0, 8.0, 1.0),
    ("ambient_temp", "°C", 24.0, 4.0, 0.3),
    ("voltage", "V", 400.0, 2.0, 1.5),
    ("power", "kW", 7.5, 0.6, 0.15),
    ("coolant_temp", "°C", 38.0, 2.0, 0.3),
];

impl SimConfig {
    /// A plausible fleet: devices `gw-01`, `gw-02`, … each with the first
    /// `sensors_per_device` metrics of a fixed list (bearing_temp, vibration, motor_current,
    /// pressure, flow, oil_temp, rpm, humidity, ambient_temp, voltage, power, coolant_temp;
    /// beyond that `bearing_temp_2`, …). Bases vary by up to ±6% between devices.
    /// Wall-clock mode, batch 1, no faults, unlimited samples, [`DEFAULT_SEED`].
    pub fn fleet(org: &str, devices: usize, sensors_per_device: usize, interval: Duration) -> Self {
        let width = devices.to_string().len().max(2);
        let devices = (0..devices)
            .map(|d| DeviceSpec {
                name: format!("gw-{:0width$}", d + 1),
                sensors: (0..sensors_per_device)
                    .map(|s| {
                        let (metric, unit, base, amp, noise) = CATALOG[s % CATALOG.len()];
                        let round = s / CATALOG.len();
                        let metric = if round == 0 {
                            metric.to_string()
                        } else {
                            format!("{metric}_{}", round + 1)
                        };
                        // Deterministic per-device spread in [-6%, +6%].
                        let spread = ((d * 37 + s * 11) % 7) as f64 * 0.02 - 0.06;
                        SensorSpec {
                            metric,
                            unit: unit.to_string(),
                            base: base * (1.0 + spread),
                            daily_amplitude: amp,
                            noise,
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            org: org.to_string(),
            devices,
            interval,
            ..Self::default()
        }
    }

    /// Checks names, numbers and that every fault targets an existing device/metric.
    pub fn validate(&self) -> Result<(), EdgeError> {
        validate_topic_level("org", &self.org)?;
        if self.devices.is_empty() {
            return Err(EdgeError::Config("at least one device is required".into()));
        }
        if self.interval.is_zero() {
            return Err(EdgeError::Config("interval must be greater than zero".into()));
        }
        if self.batch == 0 {
            return Err(EdgeError::Config("batch must be at least 1".into()));
        }
        let mut names = HashSet::new();
        for device in &self.devices {
            validate_topic_level("device", &device.name)?;
            if !names.insert(device.name.as_str()) {
                return Err(EdgeError::Config(format!("duplicate device `{}`", device.name)));
            }
            if device.sensors.is_empty() {
                return Err(EdgeError::Config(format!(
                    "device `{}` has no sensors",
                    device.name
                )));
            }
            let mut metrics = HashSet::new();
            for s in &device.sensors {
                if s.metric.is_empty() || !metrics.insert(s.metric.as_str()) {
                    return Err(EdgeError::Config(format!(
                        "device `{}`: empty or duplicate metric `{}`",
                        device.name, s.metric
                    )));
                }
                if !(s.base.is_finite() && s.daily_amplitude.is_finite() && s.noise.is_finite())
                    || s.noise < 0.0
                {
                    return Err(EdgeError::Config(format!(
                        "{}/{}: base, amplitude and noise must be finite and noise ≥ 0",
                        device.name, s.metric
                    )));
                }
            }
        }
        for fault in &self.faults {
            self.locate(fault)?;
            if !fault.magnitude.is_finite() {
                return Err(EdgeError::Config(format!(
                    "fault {fault}: magnitude must be finite"
                )));
            }
        }
        Ok(())
    }

    fn locate(&self, fault: &FaultSpec) -> Result<(usize, usize), EdgeError> {
        let d = self
            .devices
            .iter()
            .position(|d| d.name == fault.device)
            .ok_or_else(|| EdgeError::Config(format!("fault {fault}: unknown device `{}`", fault.device)))?;
        let s = self.devices[d]
            .sensors
            .iter()
            .position(|s| s.metric == fault.metric)
            .ok_or_else(|| {
                EdgeError::Config(format!(
                    "fault {fault}: device `{}` has no metric `{}`",
                    fault.device, fault.metric
                ))
            })?;
        Ok((d, s))
    }
}

/// A fault as it actually appeared in the data: `started_at`/`ended_at` are the timestamps of
/// the first and last affected samples (for a spike they are equal; a drift's offset persists,
/// so its `ended_at` is the last sample generated). Faults that never fired are not reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub device: String,
    pub metric: String,
    pub kind: FaultKind,
    #[serde(
        serialize_with = "crate::message::ser_ts",
        deserialize_with = "crate::message::de_ts"
    )]
    pub started_at: DateTime<Utc>,
    #[serde(
        serialize_with = "crate::message::ser_ts",
        deserialize_with = "crate::message::de_ts"
    )]
    pub ended_at: DateTime<Utc>,
}

/// What [`simulate`] did. Without an outbox every counted message was acknowledged by the
/// broker; with one, every counted message was stored in the outbox and `outbox` says how many
/// are still waiting there for the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimReport {
    pub published_messages: u64,
    pub published_readings: u64,
    pub faults: Vec<FaultEvent>,
    /// Outbox counters at the end of the run (`None` without an outbox).
    pub outbox: Option<OutboxStats>,
}

struct SensorState {
    spec: SensorSpec,
    rng: StdRng,
    last: Option<f64>,
    faults: Vec<usize>,
}

struct DeviceState {
    name: String,
    sensors: Vec<SensorState>,
}

struct FaultState {
    spec: FaultSpec,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    offset: f64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    stuck_value: Option<f64>,
    end_logged: bool,
}

impl FaultState {
    fn in_window(&self, ts: DateTime<Utc>) -> bool {
        ts >= self.start && ts < self.end
    }

    fn hit(&mut self, ts: DateTime<Utc>) {
        if self.first.is_none() {
            info!(
                device = %self.spec.device,
                metric = %self.spec.metric,
                kind = %self.spec.kind,
                start = %format_ts(&ts),
                end = %format_ts(&self.end),
                magnitude = self.spec.magnitude,
                "fault started"
            );
            self.first = Some(ts);
        }
        self.last = Some(ts);
    }

    fn maybe_log_end(&mut self, ts: DateTime<Utc>) {
        if self.end_logged || ts < self.end {
            return;
        }
        if let (Some(first), Some(last)) = (self.first, self.last) {
            self.end_logged = true;
            let note = if self.spec.kind == FaultKind::Drift {
                "fault window ended (drift offset persists)"
            } else {
                "fault ended"
            };
            info!(
                device = %self.spec.device,
                metric = %self.spec.metric,
                kind = %self.spec.kind,
                start = %format_ts(&first),
                end = %format_ts(&last),
                "{note}"
            );
        }
    }
}

/// Pure, deterministic generator of fleet telemetry (no I/O, no clock).
pub struct Fleet {
    devices: Vec<DeviceState>,
    faults: Vec<FaultState>,
    start: DateTime<Utc>,
}

impl Fleet {
    /// A generator whose fault windows are anchored at `start` (the simulation start).
    pub fn new(config: &SimConfig, start: DateTime<Utc>) -> Result<Self, EdgeError> {
        config.validate()?;
        let mut devices: Vec<DeviceState> = config
            .devices
            .iter()
            .map(|d| DeviceState {
                name: d.name.clone(),
                sensors: d
                    .sensors
                    .iter()
                    .map(|s| SensorState {
                        spec: s.clone(),
                        rng: StdRng::seed_from_u64(sensor_seed(config.seed, &d.name, &s.metric)),
                        last: None,
                        faults: Vec::new(),
                    })
                    .collect(),
            })
            .collect();
        let delta = |d: Duration| {
            TimeDelta::from_std(d).map_err(|_| EdgeError::Config(format!("duration {d:?} too large")))
        };
        let mut faults = Vec::with_capacity(config.faults.len());
        for spec in &config.faults {
            let (d, s) = config.locate(spec)?;
            let fault_start = start + delta(spec.start_after)?;
            let window = if spec.kind == FaultKind::Spike {
                spec.duration.max(config.interval)
            } else {
                spec.duration
            };
            let sensor = &mut devices[d].sensors[s];
            sensor.faults.push(faults.len());
            faults.push(FaultState {
                spec: spec.clone(),
                start: fault_start,
                end: fault_start + delta(window)?,
                offset: spec.magnitude * sensor.spec.fault_scale(),
                first: None,
                last: None,
                stuck_value: None,
                end_logged: false,
            });
        }
        Ok(Self {
            devices,
            faults,
            start,
        })
    }

    /// The simulation start the fault windows are relative to.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Device names in configuration order.
    pub fn device_names(&self) -> impl Iterator<Item = &str> {
        self.devices.iter().map(|d| d.name.as_str())
    }

    /// One sample of every device at `ts` (call with non-decreasing timestamps). A device
    /// whose metrics all dropped out yields no message.
    pub fn sample(&mut self, ts: DateTime<Utc>) -> Vec<(String, Message)> {
        let mut indexed = Vec::with_capacity(self.devices.len());
        self.sample_each(ts, |d, msg| indexed.push((d, msg)));
        indexed
            .into_iter()
            .map(|(d, msg)| (self.devices[d].name.clone(), msg))
            .collect()
    }

    /// Like [`Fleet::sample`] but hands `(device index, message)` to a callback.
    pub fn sample_each(&mut self, ts: DateTime<Utc>, mut f: impl FnMut(usize, Message)) {
        for (di, device) in self.devices.iter_mut().enumerate() {
            let mut msg = Message::new(ts);
            for sensor in &mut device.sensors {
                let clean = sensor.spec.baseline(ts) + sensor.spec.noise * gaussian(&mut sensor.rng);
                let mut value = clean;
                for &fi in &sensor.faults {
                    let fault = &mut self.faults[fi];
                    match fault.spec.kind {
                        FaultKind::Spike => {
                            if fault.first.is_none() && fault.in_window(ts) {
                                value += fault.offset;
                                fault.hit(ts);
                            }
                        }
                        FaultKind::Drift => {
                            if ts >= fault.start {
                                let total = (fault.end - fault.start).num_nanoseconds().unwrap_or(0);
                                let done = (ts - fault.start).num_nanoseconds().unwrap_or(i64::MAX);
                                let frac = if total <= 0 {
                                    1.0
                                } else {
                                    (done as f64 / total as f64).min(1.0)
                                };
                                value += frac * fault.offset;
                                fault.hit(ts);
                            }
                        }
                        FaultKind::Step => {
                            if fault.in_window(ts) {
                                value += fault.offset;
                                fault.hit(ts);
                            }
                        }
                        FaultKind::Stuck | FaultKind::Dropout => {}
                    }
                }
                let mut value = round3(value);
                let mut dropped = false;
                for &fi in &sensor.faults {
                    let fault = &mut self.faults[fi];
                    if !fault.in_window(ts) {
                        continue;
                    }
                    match fault.spec.kind {
                        FaultKind::Stuck => {
                            let frozen = *fault.stuck_value.get_or_insert(sensor.last.unwrap_or(value));
                            value = frozen;
                            fault.hit(ts);
                        }
                        FaultKind::Dropout => {
                            dropped = true;
                            fault.hit(ts);
                        }
                        _ => {}
                    }
                }
                for &fi in &sensor.faults {
                    self.faults[fi].maybe_log_end(ts);
                }
                if !dropped {
                    sensor.last = Some(value);
                    msg.metrics.insert(sensor.spec.metric.clone(), value);
                }
            }
            if !msg.metrics.is_empty() {
                f(di, msg);
            }
        }
    }

    /// Faults that have affected at least one sample so far.
    pub fn fault_events(&self) -> Vec<FaultEvent> {
        self.faults
            .iter()
            .filter_map(|f| {
                Some(FaultEvent {
                    device: f.spec.device.clone(),
                    metric: f.spec.metric.clone(),
                    kind: f.spec.kind,
                    started_at: f.first?,
                    ended_at: f.last?,
                })
            })
            .collect()
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Standard normal deviate via Box–Muller (cosine branch; two uniforms per call).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// Stable (FNV-1a) per-sensor seed, independent of fleet size and ordering.
fn sensor_seed(seed: u64, device: &str, metric: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed
        .to_le_bytes()
        .into_iter()
        .chain(device.bytes())
        .chain([0xff])
        .chain(metric.bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn synthetic_ts(origin: DateTime<Utc>, interval: Duration, i: u64) -> Option<DateTime<Utc>> {
    let nanos = interval.as_nanos().checked_mul(u128::from(i))?;
    let delta = TimeDelta::nanoseconds(i64::try_from(nanos).ok()?);
    origin.checked_add_signed(delta).map(truncate_to_millis)
}

/// Publishes one batch; after shutdown only non-blocking sends are tried, so it never hangs.
pub(crate) async fn send_batch(
    publisher: &mut Uplink,
    topic: &str,
    messages: &[Message],
    as_array: bool,
    shutdown: &CancellationToken,
) -> Result<bool, EdgeError> {
    if messages.is_empty() {
        return Ok(true);
    }
    let payload = encode_payload(messages, as_array)?;
    let sent = publisher.send(topic, payload, shutdown).await?;
    if !sent {
        warn!(
            topic,
            messages = messages.len(),
            "shut down while the queue/outbox was full; batch dropped"
        );
    }
    Ok(sent)
}

/// Runs the simulator: samples every device each `interval` (or as fast as possible in
/// synthetic-time mode), publishes at QoS 1 to `mp/v1/{org}/{device}/telemetry`, and returns
/// once `max_samples` are done or `shutdown` fires *and* every publish has been acknowledged
/// (or the 30 s drain timeout expired, which is an error). Shutdown before the broker
/// connection is up returns an empty report.
///
/// With [`SimConfig::outbox`] the broker may be down: messages go to the outbox and a
/// forwarder publishes them when it can; at the end the run waits up to the outbox's drain
/// timeout and leaves what is unacknowledged on disk (see [`SimReport::outbox`]).
pub async fn simulate(
    target: MqttTarget,
    config: SimConfig,
    shutdown: CancellationToken,
) -> Result<SimReport, EdgeError> {
    config.validate()?;
    let mut publisher = match Uplink::open(&target, config.outbox.as_ref(), &shutdown).await {
        Ok(p) => p,
        Err(EdgeError::Cancelled) => return Ok(SimReport::default()),
        Err(e) => return Err(e),
    };
    let start = match config.time_origin {
        Some(origin) => truncate_to_millis(origin),
        None => now_millis(),
    };
    let mut fleet = Fleet::new(&config, start)?;
    let topics: Vec<String> = fleet
        .device_names()
        .map(|d| telemetry_topic(&config.org, d))
        .collect();
    let batch = config.batch;
    let as_array = batch > 1;
    let mut buffers: Vec<Vec<Message>> = vec![Vec::with_capacity(batch); topics.len()];
    let mut report = SimReport::default();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    info!(
        org = %config.org,
        devices = topics.len(),
        interval_ms = config.interval.as_millis() as u64,
        batch,
        synthetic = config.time_origin.is_some(),
        start = %format_ts(&start),
        "simulation started"
    );

    let mut i: u64 = 0;
    'run: loop {
        if config.max_samples.is_some_and(|max| i >= max) || shutdown.is_cancelled() {
            break;
        }
        let ts = if config.time_origin.is_some() {
            match synthetic_ts(start, config.interval, i) {
                Some(ts) => ts,
                None => break,
            }
        } else {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => now_millis(),
            }
        };
        fleet.sample_each(ts, |d, msg| buffers[d].push(msg));
        for (d, buffer) in buffers.iter_mut().enumerate() {
            if buffer.len() >= batch {
                let readings: usize = buffer.iter().map(|m| m.metrics.len()).sum();
                let sent = send_batch(&mut publisher, &topics[d], buffer, as_array, &shutdown).await?;
                buffer.clear();
                if sent {
                    report.published_messages += 1;
                    report.published_readings += readings as u64;
                }
                if shutdown.is_cancelled() {
                    break 'run;
                }
            }
        }
        i += 1;
        if config.time_origin.is_some() && (i & 0xff) == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Flush partial batches.
    for (d, buffer) in buffers.iter_mut().enumerate() {
        let readings: usize = buffer.iter().map(|m| m.metrics.len()).sum();
        if send_batch(&mut publisher, &topics[d], buffer, as_array, &shutdown).await? && !buffer.is_empty() {
            report.published_messages += 1;
            report.published_readings += readings as u64;
        }
        buffer.clear();
    }
    report.faults = fleet.fault_events();
    for f in &report.faults {
        info!(
            device = %f.device,
            metric = %f.metric,
            kind = %f.kind,
            start = %format_ts(&f.started_at),
            end = %format_ts(&f.ended_at),
            "fault injected"
        );
    }
    info!(
        samples_per_device = i,
        messages = report.published_messages,
        "samples generated"
    );
    report.outbox = publisher.finish(DRAIN_TIMEOUT).await?;
    info!(
        samples_per_device = i,
        messages = report.published_messages,
        readings = report.published_readings,
        faults = report.faults.len(),
        buffered = report.outbox.map(|o| o.buffered_records),
        "simulation finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn origin() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap()
    }

    fn config_with(faults: &[&str]) -> SimConfig {
        let mut c = SimConfig::fleet("acme", 2, 4, Duration::from_secs(1));
        c.time_origin = Some(origin());
        c.faults = faults.iter().map(|f| f.parse().unwrap()).collect();
        c
    }

    /// Values of `device/metric` over `n` samples (None = omitted).
    fn series(config: &SimConfig, n: u64, device: &str, metric: &str) -> Vec<Option<f64>> {
        let mut fleet = Fleet::new(config, origin()).unwrap();
        (0..n)
            .map(|i| {
                let ts = synthetic_ts(origin(), config.interval, i).unwrap();
                fleet
                    .sample(ts)
                    .into_iter()
                    .find(|(d, _)| d == device)
                    .and_then(|(_, m)| m.metrics.get(metric).copied())
            })
            .collect()
    }

    #[test]
    fn fleet_shape() {
        let c = SimConfig::fleet("demo", 3, 4, Duration::from_secs(1));
        let names: Vec<_> = c.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["gw-01", "gw-02", "gw-03"]);
        let metrics: Vec<_> = c.devices[0].sensors.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(
            metrics,
            ["bearing_temp", "vibration", "motor_current", "pressure"]
        );
        assert!(c.validate().is_ok());
        let big = SimConfig::fleet("demo", 120, 14, Duration::from_secs(1));
        assert_eq!(big.devices[0].name, "gw-001");
        assert_eq!(big.devices[0].sensors[12].metric, "bearing_temp_2");
        assert!(big.validate().is_ok());
        for d in &big.devices {
            let s = &d.sensors[0];
            assert!((s.base - 65.0).abs() <= 65.0 * 0.061, "{}", s.base);
        }
    }

    #[test]
    fn deterministic_and_plausible() {
        let c = config_with(&[]);
        let a = series(&c, 500, "gw-01", "bearing_temp");
        let b = series(&c, 500, "gw-01", "bearing_temp");
        assert_eq!(a, b);
        let values: Vec<f64> = a.iter().map(|v| v.unwrap()).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - c.devices[0].sensors[0].base).abs() < 1.0, "mean {mean}");
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(var.sqrt() > 0.2 && var.sqrt() < 0.7, "std {}", var.sqrt());
        // Different seed → different noise; different device → different noise.
        let mut other = c.clone();
        other.seed += 1;
        assert_ne!(series(&other, 50, "gw-01", "bearing_temp"), a[..50].to_vec());
        assert_ne!(series(&c, 50, "gw-02", "bearing_temp"), a[..50].to_vec());
        // Adding a device does not change the others' values.
        let mut bigger = c.clone();
        bigger.devices = SimConfig::fleet("acme", 5, 4, Duration::from_secs(1)).devices;
        assert_eq!(series(&bigger, 500, "gw-01", "bearing_temp"), a);
    }

    #[test]
    fn daily_cycle() {
        let s = SensorSpec {
            metric: "t".into(),
            unit: "°C".into(),
            base: 10.0,
            daily_amplitude: 2.0,
            noise: 0.0,
        };
        let day = origin();
        assert!((s.baseline(day) - 10.0).abs() < 1e-9);
        assert!((s.baseline(day + TimeDelta::hours(6)) - 12.0).abs() < 1e-9);
        assert!((s.baseline(day + TimeDelta::hours(18)) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn spike_hits_exactly_one_sample() {
        let clean = series(&config_with(&[]), 120, "gw-01", "bearing_temp");
        let c = config_with(&["gw-01/bearing_temp:spike@60s+5s*10"]);
        let faulty = series(&c, 120, "gw-01", "bearing_temp");
        let diffs: Vec<usize> = (0..120).filter(|&i| clean[i] != faulty[i]).collect();
        assert_eq!(diffs, [60]);
        let jump = faulty[60].unwrap() - clean[60].unwrap();
        let scale = c.devices[0].sensors[0].fault_scale(); // 1% of base (~0.61) > noise 0.4
        assert!((scale - 0.01 * c.devices[0].sensors[0].base).abs() < 1e-12);
        assert!((jump - 10.0 * scale).abs() < 2e-3, "jump {jump}");
        // Other metrics and devices are untouched.
        assert_eq!(
            series(&c, 120, "gw-01", "vibration"),
            series(&config_with(&[]), 120, "gw-01", "vibration")
        );
        assert_eq!(
            series(&c, 120, "gw-02", "bearing_temp"),
            series(&config_with(&[]), 120, "gw-02", "bearing_temp")
        );
    }

    #[test]
    fn spike_shorter_than_interval_still_fires() {
        let mut c = config_with(&["gw-01/vibration:spike@10s+1ms*10"]);
        c.interval = Duration::from_secs(5);
        let mut fleet = Fleet::new(&c, origin()).unwrap();
        for i in 0..10 {
            fleet.sample(synthetic_ts(origin(), c.interval, i).unwrap());
        }
        let events = fleet.fault_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].started_at, origin() + TimeDelta::seconds(10));
        assert_eq!(events[0].started_at, events[0].ended_at);
    }

    #[test]
    fn drift_ramps_and_persists() {
        let clean = series(&config_with(&[]), 200, "gw-01", "motor_current");
        let c = config_with(&["gw-01/motor_current:drift@50s+100s*4"]);
        let faulty = series(&c, 200, "gw-01", "motor_current");
        let scale = c.devices[0].sensors[2].fault_scale();
        let off = |i: usize| faulty[i].unwrap() - clean[i].unwrap();
        assert!(off(49).abs() < 1e-9);
        assert!((off(100) - 2.0 * scale).abs() < 2e-3, "{}", off(100));
        assert!((off(150) - 4.0 * scale).abs() < 2e-3);
        assert!((off(199) - 4.0 * scale).abs() < 2e-3);
        let mut fleet = Fleet::new(&c, origin()).unwrap();
        for i in 0..200 {
            fleet.sample(synthetic_ts(origin(), c.interval, i).unwrap());
        }
        let ev = &fleet.fault_events()[0];
        assert_eq!(ev.started_at, origin() + TimeDelta::seconds(50));
        assert_eq!(ev.ended_at, origin() + TimeDelta::seconds(199));
    }

    #[test]
    fn step_is_constant_then_returns() {
        let clean = series(&config_with(&[]), 100, "gw-02", "pressure");
        let c = config_with(&["gw-02/pressure:step@20s+30s*-6"]);
        let faulty = series(&c, 100, "gw-02", "pressure");
        let scale = c.devices[1].sensors[3].fault_scale();
        for i in 0..100 {
            let off = faulty[i].unwrap() - clean[i].unwrap();
            let expect = if (20..50).contains(&i) { -6.0 * scale } else { 0.0 };
            assert!((off - expect).abs() < 2e-3, "i={i} off={off}");
        }
    }

    #[test]
    fn stuck_repeats_last_value_exactly() {
        let clean = series(&config_with(&[]), 100, "gw-01", "vibration");
        let c = config_with(&["gw-01/vibration:stuck@30s+20s"]);
        let faulty = series(&c, 100, "gw-01", "vibration");
        let frozen = clean[29].unwrap();
        for (i, v) in faulty.iter().enumerate().take(50).skip(30) {
            assert_eq!(v.unwrap().to_bits(), frozen.to_bits(), "i={i}");
        }
        assert_eq!(faulty[..30], clean[..30]);
        assert_eq!(faulty[50..], clean[50..]);
    }

    #[test]
    fn dropout_omits_metric() {
        let c = config_with(&["gw-01/pressure:dropout@10s+5s"]);
        let faulty = series(&c, 30, "gw-01", "pressure");
        for (i, v) in faulty.iter().enumerate() {
            assert_eq!(v.is_none(), (10..15).contains(&i), "i={i}");
        }
        // Other metrics are still present in the same messages.
        assert!(series(&c, 30, "gw-01", "vibration").iter().all(Option::is_some));
        let mut fleet = Fleet::new(&c, origin()).unwrap();
        for i in 0..30 {
            fleet.sample(synthetic_ts(origin(), c.interval, i).unwrap());
        }
        let ev = &fleet.fault_events()[0];
        assert_eq!(ev.kind, FaultKind::Dropout);
        assert_eq!(ev.started_at, origin() + TimeDelta::seconds(10));
        assert_eq!(ev.ended_at, origin() + TimeDelta::seconds(14));
    }

    #[test]
    fn full_dropout_skips_message() {
        let mut c = SimConfig::fleet("acme", 1, 1, Duration::from_secs(1));
        c.faults = vec!["gw-01/bearing_temp:dropout@2s+2s".parse().unwrap()];
        let mut fleet = Fleet::new(&c, origin()).unwrap();
        let counts: Vec<usize> = (0..6)
            .map(|i| fleet.sample(origin() + TimeDelta::seconds(i)).len())
            .collect();
        assert_eq!(counts, [1, 1, 0, 0, 1, 1]);
    }

    #[test]
    fn unfired_faults_not_reported() {
        let c = config_with(&["gw-01/vibration:step@1h+1m"]);
        let mut fleet = Fleet::new(&c, origin()).unwrap();
        fleet.sample(origin());
        assert!(fleet.fault_events().is_empty());
    }

    #[test]
    fn validation() {
        assert!(config_with(&["gw-09/vibration:spike@1s"]).validate().is_err());
        assert!(config_with(&["gw-01/nope:spike@1s"]).validate().is_err());
        let mut c = config_with(&[]);
        c.batch = 0;
        assert!(c.validate().is_err());
        let mut c = config_with(&[]);
        c.interval = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config_with(&[]);
        c.org = "a/b".into();
        assert!(c.validate().is_err());
        let mut c = config_with(&[]);
        c.devices[1].name = "gw-01".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn fault_event_json() {
        let ev = FaultEvent {
            device: "gw-01".into(),
            metric: "vibration".into(),
            kind: FaultKind::Stuck,
            started_at: origin(),
            ended_at: origin() + TimeDelta::milliseconds(1500),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "device": "gw-01", "metric": "vibration", "kind": "stuck",
                "started_at": "2024-06-01T00:00:00.000Z",
                "ended_at": "2024-06-01T00:00:01.500Z"
            })
        );
        assert_eq!(serde_json::from_value::<FaultEvent>(v).unwrap(), ev);
    }

    #[tokio::test]
    async fn cancelled_before_connect_returns_empty_report() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        // Port 1 is never an MQTT broker; cancellation wins before any connect timeout.
        let target = MqttTarget::from_url("127.0.0.1:1", "test").unwrap();
        let report = simulate(target, config_with(&[]), shutdown).await.unwrap();
        assert_eq!(report, SimReport::default());
    }

    #[tokio::test]
    async fn invalid_config_fails_before_connecting() {
        let target = MqttTarget::from_url("127.0.0.1:1", "test").unwrap();
        let err = simulate(
            target,
            config_with(&["gw-01/nope:spike@1s"]),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, EdgeError::Config(_)), "{err}");
    }

    #[test]
    fn synthetic_timestamps() {
        assert_eq!(
            synthetic_ts(origin(), Duration::from_millis(250), 6).unwrap(),
            origin() + TimeDelta::milliseconds(1500)
        );
        assert!(synthetic_ts(origin(), Duration::from_secs(u64::MAX / 4), u64::MAX).is_none());
    }
}
