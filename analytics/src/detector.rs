//! The per-sensor episode detector used live: the streaming detector's
//! anomaly probability ([`crate::stream`]) gated by a robust z-score against
//! a rolling median/MAD baseline (so that an alarm is both improbable *and*
//! large enough to act on), physical-limit checks and a stuck-value check,
//! folded into episodes (one alarm per episode).
//!
//! State per sensor is a fixed window of recent normal values (a few KB).
//! Anomalous points never enter the baseline, so a spike cannot teach the
//! detector that spikes are normal; a shift that persists for a whole window
//! is accepted as the new normal and the episode ends.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::stream::{robust, StreamConfig, StreamDetector};

/// Tuning of the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Baseline window (points).
    pub window: usize,
    /// Points needed before scoring starts.
    pub warmup: usize,
    /// |z| at or above this (times the sensor's threshold scale) may open
    /// an episode, if the streaming detector also finds the point improbable.
    pub threshold: f64,
    /// The streaming detector (its `threshold` is the probability needed).
    pub stream: StreamConfig,
    /// |z| below `threshold * hysteresis` counts as normal again.
    pub hysteresis: f64,
    /// Consecutive normal points that end an episode.
    pub clear_after: usize,
    /// Identical consecutive values that make a sensor "stuck".
    pub stuck_after: usize,
    /// Points of the slow reference level drift is measured against (its
    /// time constant), and of the short mean compared with it.
    pub drift_reference: usize,
    pub drift_short: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            window: 120,
            warmup: 30,
            threshold: 4.5,
            // Live, a single point must be able to carry an alarm (a spike):
            // no smoothing of the surprise before the likelihood.
            stream: StreamConfig {
                smooth: 1,
                ..StreamConfig::default()
            },
            hysteresis: 0.6,
            clear_after: 5,
            stuck_after: 60,
            drift_reference: 1800,
            drift_short: 30,
        }
    }
}

/// What kind of anomaly an episode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Far above the baseline.
    High,
    /// Far below the baseline.
    Low,
    /// Outside the sensor's configured limits.
    OutOfRange,
    /// The value has not changed for a long time: an instrumentation fault.
    Stuck,
    /// The level crept away from where it was (a slow drift the rolling
    /// window would follow).
    Drift,
    /// No data for much longer than the sensor's usual interval while the
    /// rest of the organization reports: a sensor or link fault.
    NoData,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::High => "high",
            AnomalyKind::Low => "low",
            AnomalyKind::OutOfRange => "out_of_range",
            AnomalyKind::Stuck => "stuck",
            AnomalyKind::Drift => "drift",
            AnomalyKind::NoData => "no_data",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::High,
            Self::Low,
            Self::OutOfRange,
            Self::Stuck,
            Self::Drift,
            Self::NoData,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Instrumentation faults are a different problem from process
    /// anomalies, with their own work order.
    pub fn is_sensor_health(self) -> bool {
        matches!(self, AnomalyKind::Stuck | AnomalyKind::NoData)
    }
}

/// What scoring one point produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// An episode starts at this point.
    Opened {
        kind: AnomalyKind,
        ts: DateTime<Utc>,
        value: f64,
        score: f64,
        /// The streaming detector's anomaly probability at that point.
        probability: f64,
        baseline: Option<f64>,
        scale: Option<f64>,
    },
    /// The episode is over; it had `points` anomalous points.
    Closed {
        ts: DateTime<Utc>,
        points: u32,
        peak_value: f64,
        max_score: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Episode {
    kind: AnomalyKind,
    points: u32,
    normal_run: usize,
    peak_value: f64,
    max_score: f64,
    /// Anomalous values, to adopt as the baseline if the shift persists.
    recent: Vec<f64>,
}

/// Per-sensor detector state.
#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    limits: (Option<f64>, Option<f64>),
    window: VecDeque<f64>,
    last_value: Option<f64>,
    same_run: usize,
    episode: Option<Episode>,
    scratch: Vec<f64>,
    stream: StreamDetector,
    /// Slow reference level (normal points only) and how many points fed it.
    reference: (f64, usize),
    short: VecDeque<f64>,
    /// Raised by technicians' false-alarm verdicts (1 = as configured).
    threshold_scale: f64,
}

impl Detector {
    pub fn new(config: DetectorConfig, min: Option<f64>, max: Option<f64>) -> Self {
        Self {
            config,
            limits: (min, max),
            window: VecDeque::with_capacity(config.window),
            last_value: None,
            same_run: 0,
            episode: None,
            scratch: Vec::with_capacity(config.window),
            stream: StreamDetector::new(config.stream),
            reference: (0.0, 0),
            short: VecDeque::with_capacity(config.drift_short),
            threshold_scale: 1.0,
        }
    }

    /// Scales this sensor's thresholds (both the z floor and the
    /// probability; the probability threshold never exceeds 0.99).
    pub fn set_threshold_scale(&mut self, scale: f64) {
        self.threshold_scale = if scale.is_finite() { scale.max(0.1) } else { 1.0 };
    }

    /// The |z| an episode needs to open, after tuning.
    pub fn z_threshold(&self) -> f64 {
        self.config.threshold * self.threshold_scale
    }

    /// The scale set by [`Detector::set_threshold_scale`].
    pub fn threshold_scale(&self) -> f64 {
        self.threshold_scale
    }

    /// The last value observed.
    pub fn last_value(&self) -> Option<f64> {
        self.last_value
    }

    /// The anomaly probability an episode needs to open, after tuning.
    pub fn probability_threshold(&self) -> f64 {
        (self.config.stream.threshold * self.threshold_scale).min(0.99)
    }

    /// Bytes of state (both detectors).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() - std::mem::size_of::<StreamDetector>()
            + self.stream.memory_bytes()
            + 8 * (self.window.capacity() + self.scratch.capacity() + self.short.capacity())
    }

    /// Feeds history without raising anything (warm-up after a restart).
    /// Runs the same logic as [`Detector::observe`], so anomalous history
    /// (a spike, a frozen run) stays out of the baseline exactly as it did
    /// live. Follow with [`Detector::resume_episode`] or
    /// [`Detector::clear_episode`] to match what the database says.
    pub fn prime(&mut self, ts: DateTime<Utc>, value: f64) {
        let _ = self.observe(ts, value);
    }

    /// Forgets an episode left open by priming (the database says it ended).
    pub fn clear_episode(&mut self) {
        self.episode = None;
    }

    /// Marks an episode as already open (restored after a restart).
    pub fn resume_episode(&mut self, kind: AnomalyKind, points: u32, peak_value: f64, score: f64) {
        self.episode = Some(Episode {
            kind,
            points,
            normal_run: 0,
            peak_value,
            max_score: score,
            recent: Vec::new(),
        });
    }

    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// The rolling median and robust scale (1.4826·MAD, floored), once warm.
    pub fn baseline(&mut self) -> Option<(f64, f64)> {
        if self.window.len() < self.config.warmup {
            return None;
        }
        let (med, mad) = robust(&self.window, &mut self.scratch);
        // Floor: quantized or very quiet signals must not turn every
        // last-digit change into an alarm.
        let scale = (1.4826 * mad).max(1e-3 * med.abs()).max(1e-6);
        Some((med, scale))
    }

    /// Scores one point and returns what changed.
    pub fn observe(&mut self, ts: DateTime<Utc>, value: f64) -> Option<Signal> {
        let stuck = self.track_stuck(value);
        let probability = self.stream.update(ts, value);
        let base = self.baseline();
        let (z_min, p_min) = (self.z_threshold(), self.probability_threshold());
        let improbable = probability >= p_min;
        let z = base.map(|(med, scale)| (value - med) / scale);
        if self.short.len() == self.config.drift_short {
            self.short.pop_front();
        }
        self.short.push_back(value);
        let drift_z = match base {
            Some((_, scale))
                if self.reference.1 >= self.config.drift_reference / 2
                    && self.short.len() == self.config.drift_short =>
            {
                let mean = self.short.iter().sum::<f64>() / self.short.len() as f64;
                Some((mean - self.reference.0) / scale)
            }
            _ => None,
        };
        let drifted = drift_z.is_some_and(|d| d.abs() >= z_min);
        let out_of_range =
            self.limits.0.is_some_and(|lo| value < lo) || self.limits.1.is_some_and(|hi| value > hi);
        let anomalous_kind = if out_of_range {
            Some(AnomalyKind::OutOfRange)
        } else if stuck {
            Some(AnomalyKind::Stuck)
        } else {
            match z {
                Some(z) if z >= z_min && improbable => Some(AnomalyKind::High),
                Some(z) if z <= -z_min && improbable => Some(AnomalyKind::Low),
                _ if drifted => Some(AnomalyKind::Drift),
                _ => None,
            }
        };
        let score = if stuck && !out_of_range {
            self.same_run as f64
        } else if anomalous_kind == Some(AnomalyKind::Drift) {
            drift_z.map(f64::abs).unwrap_or(0.0)
        } else {
            z.map(f64::abs).unwrap_or(0.0)
        };

        let Some(mut ep) = self.episode.take() else {
            let Some(kind) = anomalous_kind else {
                self.push_baseline(value);
                return None;
            };
            self.episode = Some(Episode {
                kind,
                points: 1,
                normal_run: 0,
                peak_value: value,
                max_score: score,
                recent: vec![value],
            });
            if kind == AnomalyKind::Stuck {
                // The frozen run is not the process's behaviour: forget it.
                while self.window.back() == Some(&value) {
                    self.window.pop_back();
                }
            }
            return Some(Signal::Opened {
                kind,
                ts,
                value,
                score,
                probability,
                baseline: base.map(|b| b.0),
                scale: base.map(|b| b.1),
            });
        };
        let calm = match ep.kind {
            AnomalyKind::Stuck => !stuck,
            AnomalyKind::OutOfRange => !out_of_range,
            AnomalyKind::Drift => drift_z.is_none_or(|d| d.abs() < z_min * self.config.hysteresis),
            _ => z.is_none_or(|z| z.abs() < z_min * self.config.hysteresis),
        };
        // A stuck episode ends as soon as the value moves; the others need
        // the point itself to be unremarkable too.
        if calm && (ep.kind == AnomalyKind::Stuck || anomalous_kind.is_none()) {
            ep.normal_run += 1;
            self.push_baseline(value);
        } else {
            ep.normal_run = 0;
            ep.points += 1;
            if score > ep.max_score {
                ep.max_score = score;
                ep.peak_value = value;
            }
            if ep.kind != AnomalyKind::Stuck {
                ep.recent.push(value);
            }
        }
        let persisted = ep.recent.len() >= self.config.window;
        if ep.normal_run < self.config.clear_after && !persisted {
            self.episode = Some(ep);
            return None;
        }
        if persisted {
            // A lasting shift: it is the new normal.
            self.window.clear();
            self.reference = (0.0, 0);
            for v in std::mem::take(&mut ep.recent) {
                self.push_baseline(v);
            }
            if let Some((med, _)) = self.baseline() {
                self.reference = (med, self.config.drift_reference);
            }
        }
        Some(Signal::Closed {
            ts,
            points: ep.points,
            peak_value: ep.peak_value,
            max_score: ep.max_score,
        })
    }

    fn push_baseline(&mut self, value: f64) {
        let (mean, n) = self.reference;
        let a = 1.0 / (n + 1).min(self.config.drift_reference) as f64;
        self.reference = (mean + a * (value - mean), n + 1);
        if self.window.len() == self.config.window {
            self.window.pop_front();
        }
        self.window.push_back(value);
    }

    /// True while the value has repeated exactly `stuck_after` times or more
    /// (and the sensor was seen moving before, so constant signals by design
    /// do not count).
    fn track_stuck(&mut self, value: f64) -> bool {
        if self.last_value == Some(value) {
            self.same_run += 1;
        } else {
            self.same_run = 1;
        }
        self.last_value = Some(value);
        let moved_before = self.window.iter().any(|v| *v != value);
        self.same_run >= self.config.stuck_after && moved_before
    }
}

/// Severity from an anomaly's kind and score.
pub fn severity(kind: AnomalyKind, score: f64) -> &'static str {
    match kind {
        AnomalyKind::OutOfRange => "high",
        AnomalyKind::Stuck | AnomalyKind::NoData => "medium",
        _ if score >= 20.0 => "critical",
        _ if score >= 10.0 => "high",
        _ => "medium",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(i: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + i, 0).unwrap()
    }

    /// Deterministic pseudo-noise in [-1, 1].
    fn noise(i: i64) -> f64 {
        let x = (i as f64 * 12.9898).sin() * 43758.5453;
        (x - x.floor()) * 2.0 - 1.0
    }

    fn run(values: impl Iterator<Item = f64>) -> Vec<(usize, Signal)> {
        let mut d = Detector::new(DetectorConfig::default(), None, None);
        values
            .enumerate()
            .filter_map(|(i, v)| d.observe(t(i as i64), v).map(|s| (i, s)))
            .collect()
    }

    #[test]
    fn quiet_signal_raises_nothing() {
        assert!(run((0..5000).map(|i| 50.0 + noise(i))).is_empty());
    }

    #[test]
    fn spike_is_one_episode() {
        let sig = run((0..400).map(|i| 50.0 + noise(i) + if i == 200 { 15.0 } else { 0.0 }));
        assert_eq!(sig.len(), 2, "{sig:?}");
        assert!(matches!(
            sig[0],
            (
                200,
                Signal::Opened {
                    kind: AnomalyKind::High,
                    ..
                }
            )
        ));
        assert!(matches!(sig[1].1, Signal::Closed { points: 1, .. }));
    }

    #[test]
    fn step_is_one_episode_then_the_new_normal() {
        let sig = run((0..1000).map(|i| 50.0 + noise(i) + if i >= 300 { 20.0 } else { 0.0 }));
        let opened = sig
            .iter()
            .filter(|(_, s)| matches!(s, Signal::Opened { .. }))
            .count();
        assert_eq!(opened, 1, "{sig:?}");
        assert!(matches!(sig.last(), Some((_, Signal::Closed { .. }))));
    }

    #[test]
    fn stuck_sensor_is_detected_once() {
        // A stuck sensor freezes at its last good value.
        let frozen = 50.0 + noise(199);
        let sig = run((0..600).map(|i| {
            if (200..400).contains(&i) {
                frozen
            } else {
                50.0 + noise(i)
            }
        }));
        let kinds: Vec<_> = sig
            .iter()
            .filter_map(|(_, s)| match s {
                Signal::Opened { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        assert!(kinds.contains(&AnomalyKind::Stuck), "{sig:?}");
        assert_eq!(kinds, vec![AnomalyKind::Stuck], "only the stuck episode: {sig:?}");
        assert!(
            matches!(sig.last(), Some((_, Signal::Closed { .. }))),
            "it ends when values move again"
        );
    }

    /// After a restart during a stuck episode, the detector is primed from
    /// history and told the episode is open: normal data then closes it
    /// and raises nothing new.
    #[test]
    fn restart_during_stuck_episode_raises_nothing_new() {
        let frozen = 50.0 + noise(199);
        let history: Vec<f64> = (0..290)
            .map(|i| if i >= 200 { frozen } else { 50.0 + noise(i) })
            .collect();
        let mut d = Detector::new(DetectorConfig::default(), None, None);
        for (i, v) in history.iter().enumerate().skip(290 - 120) {
            d.prime(t(i as i64), *v);
        }
        d.resume_episode(AnomalyKind::Stuck, 30, frozen, 90.0);
        let signals: Vec<Signal> = (290..600)
            .filter_map(|i| d.observe(t(i), 50.0 + noise(i)))
            .collect();
        assert!(
            matches!(signals.as_slice(), [Signal::Closed { .. }]),
            "{signals:?}"
        );
    }

    #[test]
    fn limits_raise_out_of_range() {
        let mut d = Detector::new(DetectorConfig::default(), Some(0.0), Some(100.0));
        assert!(matches!(
            d.observe(t(0), 120.0),
            Some(Signal::Opened {
                kind: AnomalyKind::OutOfRange,
                ..
            })
        ));
    }

    #[test]
    fn median_works() {
        use crate::stream::median;
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn severity_grows_with_score() {
        assert_eq!(severity(AnomalyKind::High, 7.0), "medium");
        assert_eq!(severity(AnomalyKind::High, 25.0), "critical");
    }
}
