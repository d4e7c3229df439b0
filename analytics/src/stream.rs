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
//! Two likelihood channels then ask, per feature, how unusual the current
//! surprise is *for this sensor*, each with a Gaussian tail over a long,
//! slowly forgetting history, as in Numenta's anomaly likelihood:
//! - **magnitude**: the briefly averaged `ln(1 + z)` (z capped). Its tail
//!   is also bounded by the *empirical* share of past points with at least
//!   as much surprise (a decayed histogram), so a sensor whose spikes are
//!   routine (bursty disk or network counters) stops alarming on each one;
//!   it is further discounted for surprise no larger than the sensor's
//!   recent record and for values seen often before;
//! - **density**: a saturating raw score `1 − exp(−z/s)` averaged over a
//!   longer run of points (HTM's averaged raw anomaly score). One spike
//!   barely moves it; a burst of spikes, a denser spike train or a sustained
//!   change of shape does — what tames spiky-but-normal series and catches
//!   gradual changes the magnitude channel misses.
//!
//! The output is a weighted mean of the two channels' probabilities, each
//! `1 − tail` on a log scale (0.5 ≈ 1 in 10⁵, 1 ≈ 1 in 10¹⁰).
//!
//! A third, rule-like signal covers what no z-score sees: a **flat run**
//! (identical consecutive values) longer than any the sensor has completed
//! before is anomalous outright (probability 1) — a sensor gone quiet or
//! stuck for longer than it ever has. Only sensors whose record run is at
//! least `flat_record_min` points qualify, so a sensor that has never varied
//! (or only briefly paused) never raises it.
//!
//! One alarm per episode: after a point at or above the threshold, the next
//! `refractory` points are damped, and the period is held open while the
//! undamped output stays above `hold × threshold`, so a long episode cannot
//! flood either.
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
    /// Cap on a feature's z before the magnitude channel's `ln(1 + z)`:
    /// beyond it every spike is equally surprising, so routine spikes of
    /// varying height share one histogram bin and count as seen before.
    pub surprise_cap: f64,
    /// Weight of the empirical bound on the magnitude channel: its
    /// probability is at most this times the log-scale share of past points
    /// with at least as much surprise.
    pub seen_weight: f64,
    /// Forgetting of that histogram (weight of a new point).
    pub seen_decay: f64,
    /// Scale `s` of the density channel's raw score `1 − exp(−z/s)`.
    pub density_scale: f64,
    /// Points of raw score the density channel averages.
    pub density_points: usize,
    /// Forgetting of the density channel's history (weight of a new point;
    /// plain averages until the history is `1/density_alpha` points long).
    pub density_alpha: f64,
    /// Weight of the magnitude channel in the output (the density channel
    /// has the rest).
    pub magnitude_weight: f64,
    /// Shortest record flat run (identical consecutive values) after which a
    /// longer run is anomalous; 0 = no flat-run check.
    pub flat_record_min: usize,
    /// Share of the threshold above which the undamped output holds the
    /// refractory period open (0 = a fixed period).
    pub hold: f64,
}

/// The threshold chosen on nab-dev for NAB's low-false-positive profile:
/// work orders are costly, so it is the default.
pub const THRESHOLD_LOW_FP: f64 = 0.21;
/// The threshold chosen on nab-dev for NAB's standard profile.
pub const THRESHOLD_STANDARD: f64 = 0.21;
/// The threshold chosen on nab-dev for NAB's low-false-negative profile.
pub const THRESHOLD_LOW_FN: f64 = 0.21;

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
            gamma: 1.757,
            record_decay: 1.0 / 3000.0,
            bin_sd: 0.5,
            delta: 1.672,
            surprise_cap: 58.0,
            seen_weight: 1.5,
            seen_decay: 1.0 / 3000.0,
            density_scale: 19.8,
            density_points: 14,
            density_alpha: 1.0 / 10_000.0,
            magnitude_weight: 0.632,
            flat_record_min: 12,
            hold: 0.5,
        }
    }
}

/// Most value bins remembered; beyond it, counts are halved and empty bins
/// forgotten (bounded memory on drifting sensors).
const MAX_BINS: usize = 512;

/// Bins of the magnitude channel's surprise histogram (width
/// [`SEEN_BIN`] in `ln(1 + z)`; the last bin takes everything above).
const SEEN_BINS: usize = 32;
const SEEN_BIN: f64 = 0.25;

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

/// A decayed histogram of one feature's smoothed surprise: how often has
/// this sensor been at least this surprised?
#[derive(Debug, Clone, Copy)]
struct Seen {
    counts: [f64; SEEN_BINS],
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            counts: [0.0; SEEN_BINS],
        }
    }
}

impl Seen {
    fn bin(x: f64) -> usize {
        ((x.max(0.0) / SEEN_BIN) as usize).min(SEEN_BINS - 1)
    }

    /// Share of past points at least as surprised as `x` (with half a point
    /// of prior, so a never-seen level is rare but not impossible).
    fn share_at_least(&self, x: f64) -> f64 {
        let total: f64 = self.counts.iter().sum();
        let above: f64 = self.counts[Self::bin(x)..].iter().sum();
        (above + 0.5) / (total + 1.0)
    }

    fn push(&mut self, x: f64, decay: f64) {
        for c in &mut self.counts {
            *c *= 1.0 - decay;
        }
        self.counts[Self::bin(x)] += 1.0;
    }
}

/// A tail probability on the output's log scale: 1 in 10¹⁰ (or rarer) → 1.
fn log_scale(tail: f64) -> f64 {
    (tail.max(1e-300).ln() / (1e-10f64).ln()).clamp(0.0, 1.0)
}

fn mean(q: &VecDeque<f64>) -> f64 {
    q.iter().sum::<f64>() / q.len().max(1) as f64
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
    /// Magnitude channel, per feature: recent `ln(1 + z)`, their history,
    /// record and histogram.
    raw: [VecDeque<f64>; 3],
    history: [Ew; 3],
    record: [f64; 3],
    surprised: [Seen; 3],
    /// Density channel, per feature: recent saturated scores and history.
    dense: [VecDeque<f64>; 3],
    dense_history: [Ew; 3],
    /// Counts of past values per bin (bin width fixed after warm-up).
    bins: std::collections::HashMap<i64, u32>,
    bin_width: f64,
    /// Smallest step seen between distinct values (quantization floor).
    quantum: f64,
    last_value: Option<f64>,
    /// Length of the current flat run and the longest completed one.
    flat_run: usize,
    flat_record: usize,
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
            surprised: [Seen::default(); 3],
            dense: Default::default(),
            dense_history: [Ew::default(); 3],
            bins: std::collections::HashMap::new(),
            bin_width: 0.0,
            quantum: f64::INFINITY,
            last_value: None,
            flat_run: 0,
            flat_record: 0,
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
        // Flat run: longer than every run this sensor has completed?
        let mut flat = 0.0;
        if let Some(last) = self.last_value {
            if value == last {
                self.flat_run += 1;
                if c.flat_record_min > 0
                    && self.flat_record >= c.flat_record_min
                    && self.seen as usize >= c.warmup
                    && self.flat_run == self.flat_record + 1
                {
                    flat = 1.0;
                }
            } else {
                self.flat_record = self.flat_record.max(self.flat_run);
                self.flat_run = 0;
            }
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
        // Both channels' likelihoods, per feature; each channel keeps its
        // most improbable feature.
        let (mut magnitude, mut density) = (0.0f64, 0.0f64);
        for (i, z) in feats.iter().enumerate() {
            let Some(z) = *z else { continue };
            // Magnitude: how unusual is the smoothed ln(1 + z) — by the
            // Gaussian tail, but never rarer than the share of past points
            // this surprised; discounted when the sensor has shown as much
            // surprise lately, or this value often.
            let f = z.min(c.surprise_cap).ln_1p();
            push_bounded(&mut self.raw[i], f, c.smooth);
            let avg = mean(&self.raw[i]);
            if self.history[i].n as usize >= c.warmup {
                let gaussian = log_scale(self.history[i].tail(avg));
                let seen = log_scale(self.surprised[i].share_at_least(avg)) * c.seen_weight;
                let novelty = (avg / self.record[i].max(1e-9)).min(1.0).powf(c.gamma);
                magnitude = magnitude.max(gaussian.min(seen) * novelty * rarity);
            }
            self.history[i].push(avg, c.history_alpha);
            self.record[i] = (self.record[i] * (1.0 - c.record_decay)).max(avg);
            self.surprised[i].push(avg, c.seen_decay);
            // Density: the saturated score averaged over a longer run, so
            // only a run of surprise (not one spike) stands out.
            let s = 1.0 - (-z / c.density_scale).exp();
            push_bounded(&mut self.dense[i], s, c.density_points);
            let avg = mean(&self.dense[i]);
            if self.dense_history[i].n as usize >= c.warmup {
                density = density.max(log_scale(self.dense_history[i].tail(avg)));
            }
            self.dense_history[i].push(avg, c.density_alpha);
        }
        let mut p = (c.magnitude_weight * magnitude + (1.0 - c.magnitude_weight) * density).max(flat);
        if self.cooldown > 0 {
            self.cooldown -= 1;
            // Still in the episode: keep the period open.
            if c.hold > 0.0 && p >= c.hold * c.threshold {
                self.cooldown = self.cooldown.max(1);
            }
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
                + self.dense.iter().map(VecDeque::capacity).sum::<usize>()
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
