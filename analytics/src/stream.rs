//! The per-sensor streaming detector: seasonality-aware robust residuals and
//! a likelihood layer that turns raw scores into anomaly probabilities.
//!
//! Each point is turned into a few raw surprise features, each a robust
//! z-score:
//! - **point**: the value against the median/MAD of the recent window;
//! - **seasonal**: the value against the same time of day on earlier days
//!   (a daily profile of phase buckets), scaled by the recent seasonal
//!   residuals — so a missing daily peak is as surprising as a spike;
//! - **shift**: the mean of the last few points against the recent window,
//!   for level shifts too small to stand out point by point.
//!
//! The likelihood layer then asks, per feature, how unusual the current
//! (briefly averaged) surprise is *for this sensor*: a Gaussian tail over a
//! long, slowly forgetting history of that feature, as in Numenta's anomaly
//! likelihood. Heavy-tailed sensors thus calibrate themselves, and the
//! probability means the same on every sensor. The output is
//! `1 − tail` on a log scale (0.5 ≈ 1 in 10⁵, 1 ≈ 1 in 10¹⁰).
//!
//! One alarm per episode: after a point at or above the threshold, the next
//! `refractory` points are damped, so an episode cannot flood.
//!
//! No look-ahead: the detector knows nothing of a series' length or range.

use std::collections::VecDeque;

use chrono::{DateTime, Timelike, Utc};

/// Tuning of the streaming detector. The defaults were chosen on the NAB
/// development corpus (`maintainpro eval nab analytics/testdata/nab-dev`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamConfig {
    /// Probability at or above which a point is anomalous.
    pub threshold: f64,
    /// Recent-window length (points) of the point and shift features.
    pub window: usize,
    /// Points averaged by the shift feature.
    pub shift_points: usize,
    /// Points of raw surprise averaged before the likelihood.
    pub smooth: usize,
    /// Forgetting of the likelihood's history (weight of a new point).
    pub history_alpha: f64,
    /// Points of a feature's history before it may raise anything.
    pub warmup: usize,
    /// Points damped after an alarm (one alarm per episode).
    pub refractory: usize,
    /// Factor applied to the output during the refractory period.
    pub damp: f64,
    /// Phase buckets of the daily profile.
    pub day_buckets: usize,
    /// Days remembered per bucket (the profile is their median).
    pub days: usize,
    /// Exponent of the discount for surprise no larger than the sensor's
    /// (slowly decaying) record: 0 = none.
    pub gamma: f64,
    /// Decay of that record per point.
    pub record_decay: f64,
    /// Width of the value-rarity bins, in robust standard deviations.
    pub bin_sd: f64,
    /// Exponent of the discount for values seen often before: 0 = none.
    pub delta: f64,
}

/// The threshold chosen on nab-dev for NAB's low-false-positive profile:
/// work orders are costly, so it is the default.
pub const THRESHOLD_LOW_FP: f64 = 0.33;
/// The threshold chosen on nab-dev for NAB's standard profile.
pub const THRESHOLD_STANDARD: f64 = 0.33;
/// The threshold chosen on nab-dev for NAB's low-false-negative profile.
pub const THRESHOLD_LOW_FN: f64 = 0.33;

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            threshold: THRESHOLD_LOW_FP,
            window: 288,
            shift_points: 12,
            smooth: 2,
            history_alpha: 1.0 / 3000.0,
            warmup: 150,
            refractory: 100,
            damp: 0.1,
            day_buckets: 288,
            days: 2,
            gamma: 2.0,
            record_decay: 1.0 / 3000.0,
            bin_sd: 0.5,
            delta: 0.5,
        }
    }
}

/// Most value bins remembered; beyond it, counts are halved and empty bins
/// forgotten (bounded memory on drifting sensors).
const MAX_BINS: usize = 512;

/// Exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, Default)]
struct Ew {
    n: u64,
    mean: f64,
    var: f64,
}

impl Ew {
    fn push(&mut self, x: f64, alpha: f64) {
        self.n += 1;
        // Plain averages until the history is long enough to forget.
        let a = alpha.max(1.0 / self.n as f64);
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }

    /// Upper Gaussian tail of `x`.
    fn tail(&self, x: f64) -> f64 {
        let sd = self.var.sqrt().max(1e-3);
        q_function((x - self.mean) / sd)
    }
}

/// Median and MAD (median absolute deviation) of a window; `scratch` is reused.
pub(crate) fn robust(window: &VecDeque<f64>, scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend(window.iter().copied());
    let med = median(scratch);
    for v in scratch.iter_mut() {
        *v = (*v - med).abs();
    }
    let mad = median(scratch);
    (med, mad)
}

/// One sensor's streaming detector state.
#[derive(Debug, Clone)]
pub struct StreamDetector {
    config: StreamConfig,
    seen: u64,
    window: VecDeque<f64>,
    residuals: VecDeque<f64>,
    /// `days` remembered values per phase bucket (NaN = none yet).
    profile: Vec<f64>,
    last_bucket_day: Vec<i64>,
    recent: VecDeque<f64>,
    raw: [VecDeque<f64>; 3],
    history: [Ew; 3],
    record: [f64; 3],
    /// Counts of past values per bin (bin width fixed after warm-up).
    bins: std::collections::HashMap<i64, u32>,
    bin_width: f64,
    /// Smallest step seen between distinct values (quantization floor).
    quantum: f64,
    last_value: Option<f64>,
    cooldown: usize,
    scratch: Vec<f64>,
}

impl StreamDetector {
    pub fn new(config: StreamConfig) -> Self {
        Self {
            config,
            seen: 0,
            window: VecDeque::with_capacity(config.window),
            residuals: VecDeque::with_capacity(config.window),
            profile: Vec::new(),
            last_bucket_day: Vec::new(),
            recent: VecDeque::with_capacity(config.shift_points),
            raw: Default::default(),
            history: [Ew::default(); 3],
            record: [0.0; 3],
            bins: std::collections::HashMap::new(),
            bin_width: 0.0,
            quantum: f64::INFINITY,
            last_value: None,
            cooldown: 0,
            scratch: Vec::with_capacity(config.window),
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Scores one point (timestamps ascending): the anomaly probability in [0, 1].
    pub fn update(&mut self, ts: DateTime<Utc>, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let c = self.config;
        self.seen += 1;
        if let Some(last) = self.last_value {
            let step = (value - last).abs();
            if step > 0.0 {
                self.quantum = self.quantum.min(step);
            }
        }
        self.last_value = Some(value);
        let floor = |mad: f64, level: f64, quantum: f64| {
            let q = if quantum.is_finite() { quantum } else { 0.0 };
            (1.4826 * mad).max(0.5 * q).max(1e-3 * level.abs()).max(1e-9)
        };

        // Point and shift features against the recent window.
        let mut feats = [None::<f64>; 3];
        if self.window.len() >= c.window.min(30) {
            let (med, mad) = robust(&self.window, &mut self.scratch);
            let scale = floor(mad, med, self.quantum);
            feats[0] = Some(((value - med) / scale).abs());
            if self.recent.len() + 1 >= c.shift_points {
                let n = self.recent.len() + 1;
                let mean = (self.recent.iter().sum::<f64>() + value) / n as f64;
                feats[2] = Some(((mean - med) / scale).abs() * (n as f64).sqrt() / 2.0);
            }
        }
        // Seasonal feature against the daily profile.
        let (bucket, day) = self.bucket(ts);
        if let Some(expected) = self.expected(bucket) {
            let resid = value - expected;
            if self.residuals.len() >= c.window.min(30) {
                let (rmed, rmad) = robust(&self.residuals, &mut self.scratch);
                let scale = floor(rmad, expected, self.quantum);
                feats[1] = Some(((resid - rmed) / scale).abs());
            }
            push_bounded(&mut self.residuals, resid, c.window);
        }
        self.remember(bucket, day, value);
        push_bounded(&mut self.window, value, c.window);
        push_bounded(&mut self.recent, value, c.shift_points.saturating_sub(1).max(1));

        // How rare is this value in the sensor's whole history?
        let mut rarity = 1.0;
        if self.bin_width == 0.0
            && self.window.len() >= c.window.min(self.seen as usize).max(30)
            && self.seen as usize >= c.warmup
        {
            let (_, mad) = robust(&self.window, &mut self.scratch);
            self.bin_width = floor(mad, value, self.quantum) * c.bin_sd;
        }
        if self.bin_width > 0.0 {
            let b = (value / self.bin_width).floor() as i64;
            let n: u32 = (b - 1..=b + 1).filter_map(|k| self.bins.get(&k)).sum();
            rarity = 1.0 / (1.0 + f64::from(n)).powf(c.delta);
            *self.bins.entry(b).or_insert(0) += 1;
            if self.bins.len() > MAX_BINS {
                self.bins.retain(|_, n| {
                    *n /= 2;
                    *n > 0
                });
            }
        }
        // Likelihood of each feature's smoothed surprise, discounted when
        // this sensor has shown as much surprise before.
        let mut p = 0.0f64;
        for (i, f) in feats.iter().enumerate() {
            let Some(f) = f else { continue };
            let f = f.min(1e6).ln_1p();
            push_bounded(&mut self.raw[i], f, c.smooth);
            let avg = self.raw[i].iter().sum::<f64>() / self.raw[i].len() as f64;
            if self.history[i].n as usize >= c.warmup {
                let tail = self.history[i].tail(avg);
                let pi = (tail.max(1e-300).ln() / (1e-10f64).ln()).clamp(0.0, 1.0);
                let novelty = (avg / self.record[i].max(1e-9)).min(1.0).powf(c.gamma);
                p = p.max(pi * novelty * rarity);
            }
            self.history[i].push(avg, c.history_alpha);
            self.record[i] = (self.record[i] * (1.0 - c.record_decay)).max(avg);
        }
        if self.cooldown > 0 {
            self.cooldown -= 1;
            p *= c.damp;
        } else if p >= c.threshold {
            self.cooldown = c.refractory;
        }
        p
    }

    fn bucket(&self, ts: DateTime<Utc>) -> (usize, i64) {
        let secs = i64::from(ts.num_seconds_from_midnight());
        let b = (secs as usize * self.config.day_buckets) / 86_400;
        (
            b.min(self.config.day_buckets.saturating_sub(1)),
            ts.timestamp().div_euclid(86_400),
        )
    }

    /// The median of the bucket's remembered days, once it has two.
    fn expected(&self, bucket: usize) -> Option<f64> {
        let d = self.config.days;
        let slot = self.profile.get(bucket * d..(bucket + 1) * d)?;
        let mut vals = [0.0f64; 8];
        let mut n = 0;
        for v in slot.iter().filter(|v| v.is_finite()).take(8) {
            vals[n] = *v;
            n += 1;
        }
        if n < 2 {
            return None;
        }
        Some(median(&mut vals[..n]))
    }

    fn remember(&mut self, bucket: usize, day: i64, value: f64) {
        let (d, b) = (self.config.days, self.config.day_buckets);
        if self.profile.is_empty() {
            self.profile = vec![f64::NAN; b * d];
            self.last_bucket_day = vec![i64::MIN; b];
        }
        // One value per bucket and day (the first), in a ring of `days`.
        if self.last_bucket_day[bucket] == day {
            return;
        }
        self.last_bucket_day[bucket] = day;
        let slot = bucket * d + day.rem_euclid(d as i64) as usize;
        self.profile[slot] = value;
    }

    /// Bytes of state this detector holds (heap included).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 8 * (self.window.capacity()
                + self.residuals.capacity()
                + self.profile.capacity()
                + self.last_bucket_day.capacity()
                + self.recent.capacity()
                + self.raw.iter().map(VecDeque::capacity).sum::<usize>()
                + self.scratch.capacity())
            + self.bins.capacity() * (std::mem::size_of::<(i64, u32)>() + 1)
    }
}

fn push_bounded(q: &mut VecDeque<f64>, v: f64, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// Median by selection (reorders `v`); NaN-free input.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let mid = n / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + m) / 2.0
    }
}

/// Upper tail of the standard normal, accurate far into the tail
/// (complementary error function, Numerical Recipes' erfcc).
fn q_function(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}
