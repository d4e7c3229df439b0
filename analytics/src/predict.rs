//! Failure prediction by trend regression: when will a sensor's value reach
//! one of its limits if its recent trend goes on? Also the windowed
//! features (mean, std, min, max, slope per fixed window) that back a
//! prediction as evidence and let it be replayed. Pure: no database.
//!
//! # Method ([`predict_crossing`])
//! 1. The series goes into a polars `DataFrame` and is smoothed with a
//!    *centred* rolling mean of `smoothing` points (a centred mean of a
//!    straight line is the same line, so smoothing adds no lag).
//! 2. Ordinary least squares of the smoothed value on time (hours), in closed
//!    form around the centroid `(t̄, ȳ)`.
//! 3. The slope's standard error comes from the residuals, corrected for
//!    their autocorrelation: smoothing over `w` points makes neighbouring
//!    residuals share noise, so `n` smoothed points carry only about `n / τ`
//!    independent ones. `τ` is the larger of `smoothing` and the integrated
//!    autocorrelation time of the residuals (`1 + 2 Σ ρₖ`, summed while
//!    `ρₖ > 0`), so slow wander in the process itself is discounted too. The
//!    standard error is inflated by `√τ`; noise smoothed into a smooth curve
//!    therefore does not look significant. A slope closer to 0 than
//!    `min_t_stat` standard errors gives no prediction.
//! 4. The line is extrapolated to the nearer limit in the direction of the
//!    trend (`max` when rising, `min` when falling). The band is Fieller's
//!    interval for that crossing time: the times at which the line's
//!    `confidence_z` band (slope and level uncertainty, both corrected as
//!    above) touches the limit. `earliest` is never before the last point;
//!    `latest` is `None` when the slope is within `confidence_z` standard
//!    errors of 0, so the slow edge of the band never crosses. On simulated
//!    drifts with z = 2 the band holds the true crossing about 95 % of the
//!    time (see the tests).
//!
//! No prediction (`Ok(None)`) when: fewer than `min_points` points; no limit
//! on the side the trend points to; the smoothed value is already at or
//! beyond a limit (that is the live detector's job); the fitted line is
//! already past the limit at the last point (the series has turned away
//! from its own trend line); the slope is not significant; the crossing is
//! further than `horizon` from `now`; or the crossing is beyond the reach
//! rule below. Bad input — unsorted timestamps, non-finite values or limits,
//! `min > max`, a nonsensical config — is a typed [`PredictError`].
//!
//! # Reach rule: a daily cycle is not a trend
//! A straight line fitted to a window of length `S` cannot tell a trend from
//! a slow cycle: two to four hours of a 24 h cycle have a steep, perfectly
//! significant local slope, and extrapolating it predicts a crossing a few
//! hours ahead of a limit the cycle never reaches. Significance tests cannot
//! catch this (the slope *is* real, locally), so the central crossing must
//! lie no further past the last point than [`EXTRAPOLATION_RATIO`] × `S`
//! (`S` = span from the first to the last point; the ratio is ½). To predict
//! a crossing `d` ahead the caller must supply `2d` of history — for a
//! crossing days ahead, days of history, which averages a daily cycle out of
//! the slope. With the ratio at ½ a 2–4 h window of a 24 h cycle cannot
//! reach limits at 1.5× its amplitude (tested at every 20 minutes of the
//! day; at 1.0 it already did). Limits just outside a cycle's range, and
//! windows between half and one cycle long, can still be fooled: for
//! processes with a known cycle, pass at least one full cycle of history.
//!
//! # Windowed features ([`window_features`])
//! Tumbling windows of length `every`, aligned to multiples of `every` since
//! the Unix epoch (polars `group_by_dynamic`, `start_by = WindowBound`,
//! closed on the left). Empty windows are omitted. Per window: count, mean,
//! sample standard deviation (ddof 1), min, max and the OLS slope per hour
//! (`None` with fewer than two distinct timestamps).

use chrono::{DateTime, Utc};
use polars::prelude::{
    ChunkAgg, ChunkVar, Column, DataFrame, DataType, GroupsIndicator, NamedFrom, PolarsError,
    RollingOptionsFixedWindow, Series, TimeUnit,
};
use polars_time::prelude::{
    ClosedWindow, DynamicGroupOptions, Label, PolarsTemporalGroupby, SeriesOpsTime, StartBy,
};
use serde::Serialize;

/// The central crossing may lie at most this many times the series' span
/// past its last point (see "Reach rule" in the module docs): predicting `d`
/// ahead needs `d / EXTRAPOLATION_RATIO` of history.
pub const EXTRAPOLATION_RATIO: f64 = 0.5;

const MICROS_PER_HOUR: f64 = 3_600_000_000.0;

/// Tuning of [`predict_crossing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictConfig {
    /// Centred rolling-mean window in points (e.g. 15).
    pub smoothing: usize,
    /// Points needed before predicting (e.g. 60).
    pub min_points: usize,
    /// Only crossings at most this far after `now` are reported (e.g. 7 days).
    pub horizon: chrono::Duration,
    /// Half-width of the band in standard errors of the slope (e.g. 2.0).
    pub confidence_z: f64,
    /// The slope must be this many (autocorrelation-corrected) standard
    /// errors from 0 (e.g. 4): no predictions from noise.
    pub min_t_stat: f64,
}

impl Default for PredictConfig {
    fn default() -> Self {
        Self {
            smoothing: 15,
            min_points: 60,
            horizon: chrono::Duration::days(7),
            confidence_z: 2.0,
            min_t_stat: 4.0,
        }
    }
}

/// Which limit the trend heads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    High,
    Low,
}

/// A predicted limit crossing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    pub side: Side,
    /// The limit that will be crossed.
    pub limit: f64,
    pub slope_per_hour: f64,
    /// The last value of the smoothed series.
    pub smoothed_last: f64,
    /// Central estimate of the crossing.
    pub predicted_at: DateTime<Utc>,
    /// Crossing of the steeper bound of the slope's confidence interval.
    pub earliest: DateTime<Utc>,
    /// Crossing of the shallower bound; `None` if it never crosses.
    pub latest: Option<DateTime<Utc>>,
    /// Fit quality of the line on the smoothed series.
    pub r_squared: f64,
    /// Smoothed points the line was fitted on.
    pub points: usize,
}

/// Features of one tumbling window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowFeatures {
    /// Inclusive start of the window.
    pub start: DateTime<Utc>,
    /// Exclusive end of the window.
    pub end: DateTime<Utc>,
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation; `None` for a single point.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// OLS slope per hour; `None` with fewer than two distinct timestamps.
    pub slope_per_hour: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("timestamps must not decrease (point {index} is earlier than its predecessor)")]
    Unsorted { index: usize },
    #[error("value of point {index} is not finite")]
    NonFinite { index: usize },
    #[error("invalid limits: {0}")]
    InvalidLimits(&'static str),
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("dataframe computation failed: {0}")]
    Frame(#[from] PolarsError),
}

/// Predicts when the trend of `series` reaches `min` or `max`; see the
/// module docs for the method and every reason for `Ok(None)`.
pub fn predict_crossing(
    series: &[(DateTime<Utc>, f64)],
    min: Option<f64>,
    max: Option<f64>,
    now: DateTime<Utc>,
    config: &PredictConfig,
) -> Result<Option<Prediction>, PredictError> {
    check_config(config)?;
    check_limits(min, max)?;
    check_series(series)?;
    if series.len() < config.min_points.max(3) || (min.is_none() && max.is_none()) {
        return Ok(None);
    }
    let (Some(&(first, _)), Some(&(last, _))) = (series.first(), series.last()) else {
        return Ok(None);
    };
    let span_h = hours_between(first, last);

    if config.smoothing > series.len() {
        return Ok(None);
    }
    let smoothed = smooth(series, config.smoothing)?;
    let Some(&(_, smoothed_last)) = smoothed.last() else {
        return Ok(None);
    };
    if min.is_some_and(|m| smoothed_last <= m) || max.is_some_and(|m| smoothed_last >= m) {
        return Ok(None);
    }
    let x: Vec<f64> = smoothed.iter().map(|&(t, _)| t).collect();
    let y: Vec<f64> = smoothed.iter().map(|&(_, v)| v).collect();
    let Some(fit) = fit_line(&x, &y, config.smoothing) else {
        return Ok(None);
    };
    let t_stat = fit.t_stat();
    if t_stat.is_nan() || t_stat < config.min_t_stat {
        return Ok(None);
    }
    let (side, limit) = match (fit.slope > 0.0, min, max) {
        (true, _, Some(max)) => (Side::High, max),
        (false, Some(min), _) => (Side::Low, min),
        _ => return Ok(None),
    };

    // Where the fitted line reaches the limit, in hours since the first point.
    let central_h = fit.x_mean + (limit - fit.y_mean) / fit.slope;
    // Not finite, or the fitted line is already past the limit at the last
    // point (the series has turned away from its own trend line).
    if !central_h.is_finite() || central_h <= span_h {
        return Ok(None);
    }
    // The reach rule (module docs).
    if central_h - span_h > EXTRAPOLATION_RATIO * span_h {
        return Ok(None);
    }
    let Some(predicted_at) = at_hours(first, central_h) else {
        return Ok(None);
    };
    if predicted_at - now > config.horizon {
        return Ok(None);
    }
    let band = fit.crossing_band(limit, config.confidence_z);
    let earliest = band
        .map(|(early, _)| early.max(span_h))
        .and_then(|h| at_hours(first, h))
        .unwrap_or(predicted_at)
        .min(predicted_at);
    let latest = band
        .and_then(|(_, late)| late)
        .and_then(|h| at_hours(first, h))
        .map(|late| late.max(predicted_at));
    Ok(Some(Prediction {
        side,
        limit,
        slope_per_hour: fit.slope,
        smoothed_last,
        predicted_at,
        earliest,
        latest,
        r_squared: fit.r_squared,
        points: fit.n,
    }))
}

/// Features of `series` per tumbling window of length `every` (see the
/// module docs), computed with polars `group_by_dynamic`.
pub fn window_features(
    series: &[(DateTime<Utc>, f64)],
    every: chrono::Duration,
) -> Result<Vec<WindowFeatures>, PredictError> {
    let every_us = every
        .num_microseconds()
        .filter(|&us| us > 0)
        .ok_or(PredictError::InvalidConfig(
            "window length must be positive and below 292k years",
        ))?;
    check_series(series)?;
    if series.is_empty() {
        return Ok(Vec::new());
    }
    let df = frame(series)?;
    let every_pl = polars_time::Duration::try_parse(&format!("{every_us}us"))?;
    let options = DynamicGroupOptions {
        index_column: "t".into(),
        every: every_pl,
        period: every_pl,
        offset: polars_time::Duration::try_parse("0us")?,
        label: Label::Left,
        include_boundaries: false,
        closed_window: ClosedWindow::Left,
        start_by: StartBy::WindowBound,
    };
    let (starts, _keys, groups) = df.group_by_dynamic(None, &options)?;
    let starts = starts.cast(&DataType::Int64)?;
    let starts = starts.i64()?;

    let mut out = Vec::with_capacity(groups.len());
    for (group, start_us) in groups.iter().zip(starts.iter()) {
        let (offset, len) = match group {
            GroupsIndicator::Slice([offset, len]) => (offset as usize, len as usize),
            GroupsIndicator::Idx((first, idx)) => (first as usize, idx.len()),
        };
        if len == 0 {
            continue;
        }
        let window = df.slice(offset as i64, len);
        let values = window.column("v")?.f64()?;
        let (Some(mean), Some(min), Some(max), Some(start_us)) =
            (values.mean(), values.min(), values.max(), start_us)
        else {
            continue;
        };
        let start = DateTime::<Utc>::from_timestamp_micros(start_us)
            .ok_or(PredictError::InvalidConfig("window start out of range"))?;
        let end = start
            .checked_add_signed(every)
            .ok_or(PredictError::InvalidConfig("window end out of range"))?;
        let std = if len > 1 { values.std(1) } else { None };
        let slice = &series[offset..offset + len];
        let x: Vec<f64> = slice.iter().map(|&(t, _)| hours_between(start, t)).collect();
        let y: Vec<f64> = slice.iter().map(|&(_, v)| v).collect();
        let slope_per_hour = ols(&x, &y).map(|(slope, _, _)| slope);
        out.push(WindowFeatures {
            start,
            end,
            count: len,
            mean,
            std,
            min,
            max,
            slope_per_hour,
        });
    }
    Ok(out)
}

fn check_config(config: &PredictConfig) -> Result<(), PredictError> {
    if config.smoothing == 0 {
        return Err(PredictError::InvalidConfig("smoothing must be at least 1 point"));
    }
    if config.horizon <= chrono::Duration::zero() {
        return Err(PredictError::InvalidConfig("horizon must be positive"));
    }
    if !(config.confidence_z.is_finite() && config.confidence_z >= 0.0) {
        return Err(PredictError::InvalidConfig(
            "confidence_z must be finite and non-negative",
        ));
    }
    if !(config.min_t_stat.is_finite() && config.min_t_stat >= 0.0) {
        return Err(PredictError::InvalidConfig(
            "min_t_stat must be finite and non-negative",
        ));
    }
    Ok(())
}

fn check_limits(min: Option<f64>, max: Option<f64>) -> Result<(), PredictError> {
    if min.is_some_and(|m| !m.is_finite()) || max.is_some_and(|m| !m.is_finite()) {
        return Err(PredictError::InvalidLimits("limits must be finite"));
    }
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo >= hi {
            return Err(PredictError::InvalidLimits("min must be below max"));
        }
    }
    Ok(())
}

fn check_series(series: &[(DateTime<Utc>, f64)]) -> Result<(), PredictError> {
    for (index, &(_, v)) in series.iter().enumerate() {
        if !v.is_finite() {
            return Err(PredictError::NonFinite { index });
        }
    }
    for (index, pair) in series.windows(2).enumerate() {
        if pair[1].0 < pair[0].0 {
            return Err(PredictError::Unsorted { index: index + 1 });
        }
    }
    Ok(())
}

/// The series as a polars frame: `t` (Datetime µs, UTC-naive) and `v` (f64).
fn frame(series: &[(DateTime<Utc>, f64)]) -> Result<DataFrame, PredictError> {
    let t: Vec<i64> = series.iter().map(|(t, _)| t.timestamp_micros()).collect();
    let v: Vec<f64> = series.iter().map(|&(_, v)| v).collect();
    let t = Series::new("t".into(), t).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
    let v = Series::new("v".into(), v);
    Ok(DataFrame::new_infer_height(vec![
        Column::from(t),
        Column::from(v),
    ])?)
}

/// Centred rolling mean of `window` points (polars), as (hours since the
/// first point, smoothed value) for every point whose window is full.
fn smooth(series: &[(DateTime<Utc>, f64)], window: usize) -> Result<Vec<(f64, f64)>, PredictError> {
    let Some(&(first, _)) = series.first() else {
        return Ok(Vec::new());
    };
    let df = frame(series)?;
    let options = RollingOptionsFixedWindow {
        window_size: window,
        min_periods: window,
        weights: None,
        center: true,
        fn_params: None,
    };
    let smoothed = df.column("v")?.as_materialized_series().rolling_mean(options)?;
    let smoothed = smoothed.f64()?;
    Ok(series
        .iter()
        .zip(smoothed.iter())
        .filter_map(|(&(t, _), s)| s.map(|s| (hours_between(first, t), s)))
        .collect())
}

fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (i128::from(to.timestamp_micros()) - i128::from(from.timestamp_micros())) as f64 / MICROS_PER_HOUR
}

/// `origin + hours`, or None when out of chrono's range.
fn at_hours(origin: DateTime<Utc>, hours: f64) -> Option<DateTime<Utc>> {
    let us = hours * MICROS_PER_HOUR;
    if !us.is_finite() || us.abs() >= i64::MAX as f64 {
        return None;
    }
    origin.checked_add_signed(chrono::Duration::microseconds(us.round() as i64))
}

/// Closed-form OLS: (slope, intercept at x̄ = ȳ, x̄) or None without spread in x.
fn ols(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let x_mean = x.iter().sum::<f64>() / n as f64;
    let y_mean = y.iter().sum::<f64>() / n as f64;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (xi, yi) in x.iter().zip(y) {
        sxx += (xi - x_mean) * (xi - x_mean);
        sxy += (xi - x_mean) * (yi - y_mean);
    }
    (sxx > 0.0).then(|| (sxy / sxx, y_mean, x_mean))
}

/// A line fitted to a smoothed series.
#[derive(Debug, Clone, Copy)]
struct LineFit {
    slope: f64,
    /// Autocorrelation-corrected standard error of the slope.
    se_slope: f64,
    /// Autocorrelation-corrected variance of the level at the centroid.
    var_level: f64,
    x_mean: f64,
    y_mean: f64,
    r_squared: f64,
    n: usize,
}

impl LineFit {
    /// Confidence band of the time (hours) at which the line reaches
    /// `limit` (Fieller's interval): the times at which the line's
    /// `z`-band — level and slope uncertainty together — touches the limit.
    /// `(earliest, latest)`; `latest` is None when the slope is within `z`
    /// standard errors of 0, so the slow edge of the band never gets there.
    fn crossing_band(&self, limit: f64, z: f64) -> Option<(f64, Option<f64>)> {
        let (b, d) = (self.slope, limit - self.y_mean);
        let (vb, v0) = (self.se_slope * self.se_slope, self.var_level);
        let a = b * b - z * z * vb;
        let q = (v0 * a + vb * d * d).max(0.0).sqrt() * z;
        if a > 0.0 {
            let early = (d * b - q) / a;
            let late = (d * b + q) / a;
            (early.is_finite() && late.is_finite()).then_some((self.x_mean + early, Some(self.x_mean + late)))
        } else {
            // The slow edge never crosses; the fast edge reaches the limit
            // at the root on the trend's side of the centroid.
            let early = if a < 0.0 {
                (d * b - q) / a
            } else {
                (d * d - z * z * v0) / (2.0 * d * b)
            };
            early.is_finite().then_some((self.x_mean + early.max(0.0), None))
        }
    }

    fn t_stat(&self) -> f64 {
        if self.se_slope > 0.0 {
            (self.slope / self.se_slope).abs()
        } else if self.slope != 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }
}

/// OLS with the slope's standard error inflated by the residuals'
/// integrated autocorrelation time (at least `smoothing`). None when the
/// data cannot support a fit (fewer than three effective points).
fn fit_line(x: &[f64], y: &[f64], smoothing: usize) -> Option<LineFit> {
    let (slope, y_mean, x_mean) = ols(x, y)?;
    let n = x.len().min(y.len());
    let residuals: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| yi - (y_mean + slope * (xi - x_mean)))
        .collect();
    let ssr: f64 = residuals.iter().map(|e| e * e).sum();
    let sst: f64 = y.iter().map(|yi| (yi - y_mean) * (yi - y_mean)).sum();
    let sxx: f64 = x.iter().map(|xi| (xi - x_mean) * (xi - x_mean)).sum();
    let tau = autocorrelation_time(&residuals).max(smoothing as f64);
    let n_eff = n as f64 / tau;
    if n_eff < 3.0 {
        return None;
    }
    // Residual variance per point, with the degrees of freedom of n_eff.
    let var = ssr / n as f64 * n_eff / (n_eff - 2.0);
    let se_slope = (var * tau / sxx).sqrt();
    let var_level = var * tau / n as f64;
    let r_squared = if sst > 0.0 { 1.0 - ssr / sst } else { 1.0 };
    Some(LineFit {
        slope,
        se_slope,
        var_level,
        x_mean,
        y_mean,
        r_squared,
        n,
    })
}

/// `1 + 2 Σ ρₖ` over lags while the autocorrelation stays positive
/// (at most a quarter of the series).
fn autocorrelation_time(residuals: &[f64]) -> f64 {
    let n = residuals.len();
    let c0: f64 = residuals.iter().map(|e| e * e).sum();
    if n < 4 || c0 <= 0.0 {
        return 1.0;
    }
    let mut tau = 1.0;
    for lag in 1..=n / 4 {
        let ck: f64 = residuals.iter().zip(&residuals[lag..]).map(|(a, b)| a * b).sum();
        let rho = ck / c0;
        if rho <= 0.0 {
            break;
        }
        tau += 2.0 * rho;
    }
    tau
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone};

    use super::*;

    /// Deterministic standard-normal noise (64-bit LCG + Box–Muller).
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    /// `n` points `step` apart from `start`, valued `f(hours since start)`.
    fn sample(
        start: DateTime<Utc>,
        step: Duration,
        n: usize,
        mut f: impl FnMut(f64) -> f64,
    ) -> Vec<(DateTime<Utc>, f64)> {
        (0..n)
            .map(|i| {
                let t = start + step * i as i32;
                (t, f(hours_between(start, t)))
            })
            .collect()
    }

    fn config() -> PredictConfig {
        PredictConfig::default()
    }

    #[test]
    fn linear_drift_predicts_the_true_crossing_inside_the_band() {
        // 8 h of minute data rising 0.5/h from 50 with noise sd 0.5; max 55.5
        // is reached at 11 h, 3 h after the last point (the reach is 4 h).
        let true_crossing = t0() + Duration::hours(11);
        let mut covered = 0;
        for seed in 1..=200 {
            let mut noise = Noise(seed);
            let series = sample(t0(), Duration::minutes(1), 481, |h| {
                50.0 + 0.5 * h + 0.5 * noise.normal()
            });
            let now = series.last().unwrap().0;
            let p = predict_crossing(&series, Some(0.0), Some(55.5), now, &config())
                .unwrap()
                .unwrap();
            assert_eq!(p.side, Side::High);
            assert_eq!(p.limit, 55.5);
            assert!(
                (p.slope_per_hour - 0.5).abs() < 0.05,
                "slope {}",
                p.slope_per_hour
            );
            let error = (p.predicted_at - true_crossing).num_minutes().abs();
            assert!(
                error <= 30,
                "seed {seed}: predicted {} ({error} min off)",
                p.predicted_at
            );
            assert!(p.earliest <= p.predicted_at && Some(p.predicted_at) <= p.latest);
            assert!(p.r_squared > 0.9);
            assert_eq!(p.points, 481 - 14);
            if p.earliest <= true_crossing && Some(true_crossing) <= p.latest {
                covered += 1;
            }
        }
        // A z = 2 band should hold the truth about 95 % of the time.
        assert!(
            (180..=198).contains(&covered),
            "true crossing inside the band for {covered}/200 seeds"
        );
    }

    #[test]
    fn falling_drift_predicts_the_low_limit() {
        let mut noise = Noise(7);
        let series = sample(t0(), Duration::minutes(1), 240, |h| {
            20.0 - 2.0 * h + 0.3 * noise.normal()
        });
        let now = series.last().unwrap().0;
        let p = predict_crossing(&series, Some(10.0), Some(100.0), now, &config())
            .unwrap()
            .unwrap();
        assert_eq!(p.side, Side::Low);
        assert_eq!(p.limit, 10.0);
        // 20 - 2h = 10 at h = 5.
        let error = (p.predicted_at - (t0() + Duration::hours(5))).num_minutes().abs();
        assert!(error <= 15, "{error} min off");
    }

    #[test]
    fn flat_noise_predicts_nothing() {
        for seed in 1..=50 {
            let mut noise = Noise(seed);
            let series = sample(t0(), Duration::minutes(1), 360, |_| 50.0 + noise.normal());
            let now = series.last().unwrap().0;
            let p = predict_crossing(&series, Some(46.0), Some(54.0), now, &config()).unwrap();
            assert!(p.is_none(), "seed {seed}: {p:?}");
        }
    }

    #[test]
    fn smoothing_does_not_make_noise_significant() {
        // The t statistic of pure noise must stay roughly standard normal
        // after smoothing: without the autocorrelation correction it would
        // be about √15 ≈ 3.9 times too large.
        let mut large = 0;
        let mut max_t: f64 = 0.0;
        for seed in 1..=200 {
            let mut noise = Noise(seed);
            let series = sample(t0(), Duration::minutes(1), 360, |_| noise.normal());
            let smoothed = smooth(&series, 15).unwrap();
            let x: Vec<f64> = smoothed.iter().map(|p| p.0).collect();
            let y: Vec<f64> = smoothed.iter().map(|p| p.1).collect();
            let t = fit_line(&x, &y, 15).unwrap().t_stat();
            max_t = max_t.max(t);
            if t > 2.0 {
                large += 1;
            }
        }
        assert!(large <= 20, "{large}/200 noise series had |t| > 2");
        assert!(max_t < 4.0, "max |t| of noise {max_t}");
    }

    #[test]
    fn drift_away_from_the_limit_predicts_nothing() {
        let mut noise = Noise(3);
        let series = sample(t0(), Duration::minutes(1), 360, |h| {
            55.0 - h + 0.5 * noise.normal()
        });
        let now = series.last().unwrap().0;
        assert!(predict_crossing(&series, None, Some(60.0), now, &config())
            .unwrap()
            .is_none());
    }

    #[test]
    fn crossing_beyond_the_horizon_predicts_nothing() {
        // 4 days of 10-minute data rising 4/day from 0; max 22 is reached at
        // day 5.5, 1.5 days after the last point: within the reach (2 days).
        let mut noise = Noise(11);
        let series = sample(t0(), Duration::minutes(10), 577, |h| {
            h / 6.0 + 0.5 * noise.normal()
        });
        let now = series.last().unwrap().0;
        let one_day = PredictConfig {
            horizon: Duration::days(1),
            ..config()
        };
        assert!(predict_crossing(&series, None, Some(22.0), now, &one_day)
            .unwrap()
            .is_none());
        // The same series with the default 7-day horizon does predict it.
        let p = predict_crossing(&series, None, Some(22.0), now, &config())
            .unwrap()
            .unwrap();
        let error = (p.predicted_at - (t0() + Duration::hours(132)))
            .num_minutes()
            .abs();
        assert!(error <= 120, "{error} min off");
    }

    #[test]
    fn daily_cycle_is_not_extrapolated_into_a_crossing() {
        // A 24 h sine of amplitude 10 with noise sd 1, limits ±15 that the
        // cycle never reaches, seen through windows of 2, 3 and 4 hours
        // ending at every hour of the day.
        let amplitude = 10.0;
        let omega = 2.0 * std::f64::consts::PI / 24.0;
        let mut would_have_alarmed = 0;
        for window_hours in [2i64, 3, 4] {
            for end in 0..72i64 {
                // Windows ending every 20 minutes around the clock.
                let mut noise = Noise((window_hours * 1000 + end) as u64);
                let start = t0() + Duration::minutes(20 * end - 60 * window_hours);
                let phase0 = hours_between(t0(), start);
                let series = sample(
                    start,
                    Duration::minutes(1),
                    (window_hours * 60) as usize + 1,
                    |h| amplitude * (omega * (phase0 + h)).sin() + noise.normal(),
                );
                let now = series.last().unwrap().0;
                let p = predict_crossing(&series, Some(-15.0), Some(15.0), now, &config()).unwrap();
                assert!(
                    p.is_none(),
                    "{window_hours} h window ending {end}×20 min into the day predicted {p:?}"
                );

                // Show that the rule, not the significance test, is what
                // holds: the local slope is significant and its line would
                // cross a limit well within the 7-day horizon.
                let smoothed = smooth(&series, 15).unwrap();
                let x: Vec<f64> = smoothed.iter().map(|p| p.0).collect();
                let y: Vec<f64> = smoothed.iter().map(|p| p.1).collect();
                let fit = fit_line(&x, &y, 15).unwrap();
                let limit = if fit.slope > 0.0 { 15.0 } else { -15.0 };
                let crossing_h = fit.x_mean + (limit - fit.y_mean) / fit.slope;
                if fit.t_stat() >= config().min_t_stat && crossing_h < 7.0 * 24.0 {
                    would_have_alarmed += 1;
                }
            }
        }
        assert!(
            would_have_alarmed >= 60,
            "only {would_have_alarmed} windows had a significant slope"
        );
        println!("{would_have_alarmed} of 216 windows had a significant slope crossing within 7 days");
    }

    #[test]
    fn already_beyond_the_limit_predicts_nothing() {
        let mut noise = Noise(5);
        let series = sample(t0(), Duration::minutes(1), 360, |h| {
            55.0 + h + 0.5 * noise.normal()
        });
        let now = series.last().unwrap().0;
        assert!(predict_crossing(&series, None, Some(60.0), now, &config())
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_input_is_a_typed_error_or_none() {
        let series = sample(t0(), Duration::minutes(1), 100, |h| h);
        let now = t0();
        let mut unsorted = series.clone();
        unsorted.swap(10, 11);
        assert!(matches!(
            predict_crossing(&unsorted, None, Some(60.0), now, &config()),
            Err(PredictError::Unsorted { index: 11 })
        ));
        let mut nan = series.clone();
        nan[42].1 = f64::NAN;
        assert!(matches!(
            predict_crossing(&nan, None, Some(60.0), now, &config()),
            Err(PredictError::NonFinite { index: 42 })
        ));
        assert!(matches!(
            window_features(&nan, Duration::hours(1)),
            Err(PredictError::NonFinite { .. })
        ));
        assert!(matches!(
            predict_crossing(&series, Some(5.0), Some(5.0), now, &config()),
            Err(PredictError::InvalidLimits(_))
        ));
        assert!(matches!(
            predict_crossing(&series, Some(f64::NAN), None, now, &config()),
            Err(PredictError::InvalidLimits(_))
        ));
        let no_smoothing = PredictConfig {
            smoothing: 0,
            ..config()
        };
        assert!(matches!(
            predict_crossing(&series, None, Some(60.0), now, &no_smoothing),
            Err(PredictError::InvalidConfig(_))
        ));
        assert!(predict_crossing(&series[..59], None, Some(200.0), now, &config())
            .unwrap()
            .is_none());
        assert!(predict_crossing(&[], None, Some(200.0), now, &config())
            .unwrap()
            .is_none());
        assert!(predict_crossing(&series, None, None, now, &config())
            .unwrap()
            .is_none());
        // All points at one instant: no spread in time, no fit.
        let same: Vec<_> = (0..100).map(|i| (t0(), f64::from(i))).collect();
        assert!(predict_crossing(&same, None, Some(200.0), now, &config())
            .unwrap()
            .is_none());
        assert!(matches!(
            window_features(&series, Duration::zero()),
            Err(PredictError::InvalidConfig(_))
        ));
        assert!(window_features(&[], Duration::hours(1)).unwrap().is_empty());
    }

    #[test]
    fn window_features_of_a_known_series() {
        let at = |h: i64, m: i64| t0() + Duration::hours(h) + Duration::minutes(m);
        let series = vec![
            (at(0, 0), 1.0),
            (at(0, 20), 2.0),
            (at(0, 40), 3.0),
            // On the boundary: belongs to the second window.
            (at(1, 0), 7.0),
            (at(1, 10), 10.0),
            (at(1, 50), 4.0),
            // 02:00–03:00 is empty and omitted.
            (at(3, 30), 5.0),
        ];
        let features = window_features(&series, Duration::hours(1)).unwrap();
        assert_eq!(features.len(), 3, "{features:?}");

        let w = &features[0];
        assert_eq!((w.start, w.end, w.count), (at(0, 0), at(1, 0), 3));
        assert!((w.mean - 2.0).abs() < 1e-12);
        assert!((w.std.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!((w.min, w.max), (1.0, 3.0));
        assert!((w.slope_per_hour.unwrap() - 3.0).abs() < 1e-9);

        let w = &features[1];
        assert_eq!((w.start, w.end, w.count), (at(1, 0), at(2, 0), 3));
        assert!((w.mean - 7.0).abs() < 1e-12);
        assert!((w.std.unwrap() - 3.0).abs() < 1e-12);
        assert_eq!((w.min, w.max), (4.0, 10.0));
        // x = 0, 1/6, 5/6 h; Sxy = -2, Sxx = 14/36.
        assert!((w.slope_per_hour.unwrap() + 36.0 / 7.0).abs() < 1e-9);

        let w = &features[2];
        assert_eq!((w.start, w.end, w.count), (at(3, 0), at(4, 0), 1));
        assert_eq!((w.mean, w.min, w.max), (5.0, 5.0, 5.0));
        assert_eq!((w.std, w.slope_per_hour), (None, None));
    }

    #[test]
    fn window_features_align_to_the_epoch() {
        // 15-minute windows start at :00/:15/:30/:45 whatever the first point.
        let series = sample(t0() + Duration::minutes(7), Duration::minutes(1), 30, |h| h);
        let features = window_features(&series, Duration::minutes(15)).unwrap();
        let starts: Vec<_> = features.iter().map(|w| w.start).collect();
        assert_eq!(
            starts,
            vec![t0(), t0() + Duration::minutes(15), t0() + Duration::minutes(30)]
        );
        let counts: Vec<_> = features.iter().map(|w| w.count).collect();
        assert_eq!(counts, vec![8, 15, 7]);
        assert!((features[1].slope_per_hour.unwrap() - 1.0).abs() < 1e-9);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(
            steps in proptest::collection::vec(0i64..100_000_000, 0..200),
            values in proptest::collection::vec(-1e300f64..1e300, 0..200),
            min in proptest::option::of(-1e300f64..0.0),
            max in proptest::option::of(0.0f64..1e300),
            smoothing in 1usize..40,
        ) {
            let mut t = t0();
            let series: Vec<_> = steps.iter().zip(&values).map(|(s, v)| {
                t += Duration::milliseconds(*s);
                (t, *v)
            }).collect();
            let cfg = PredictConfig { smoothing, min_points: 3, ..PredictConfig::default() };
            let _ = predict_crossing(&series, min, max, t, &cfg);
            let _ = window_features(&series, Duration::minutes(10));
        }
    }
}
