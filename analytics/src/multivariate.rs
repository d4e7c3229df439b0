//! The per-asset multivariate detector: a PCA model of an asset's sensors
//! (fitted with `linfa_reduction::Pca`) that scores each time point with
//! Hotelling's T² (how far along the usual patterns) and the Q / SPE
//! statistic (how far off them), and names the sensors that contribute.
//!
//! # Model
//! Rows are time points, columns the asset's sensors. Each column is
//! standardized (mean, sample standard deviation), so the PCA works on the
//! correlation matrix and sensors in different units weigh the same. The
//! kept components are the fewest whose eigenvalues explain
//! [`PcaConfig::variance_kept`] of the total variance, capped at one less
//! than the number of varying sensors so a residual space (and Q) always
//! exists.
//!
//! A column that is constant in the training data (standard deviation below
//! `max(1e-12, 1e-9·|mean|)`) stays out of the decomposition; its standard
//! deviation is floored at that value and its loadings are zero, so any later
//! change of that sensor lands entirely in Q — a sensor that never moved and
//! now moves is anomalous and is named as the contributor. Standardized
//! deviations are clamped to ±1e50 so the statistics stay finite for any
//! finite input. If every column is constant there is nothing to model and
//! `fit` returns [`MultivariateError::NoVariance`].
//!
//! # Limits, and why parametric ones
//! - T² uses the F-distribution limit for a new observation,
//!   `k(n−1)(n+1) / (n(n−k)) · F(k, n−k)`, which accounts for the mean and
//!   covariance being estimated from `n` samples.
//! - Q uses Jackson–Mudholkar from the residual eigenvalue power sums θ₁,
//!   θ₂, θ₃. Its h₀ = 1 − 2θ₁θ₃/3θ₂² is at most 1/3 and turns small or
//!   negative when a few residual eigenvalues dominate many tiny ones (many
//!   sensors with very different noise levels); below h₀ = 0.1 the limit
//!   comes from Pearson's three-moment fit `a + b·χ²(ν)` instead (on such
//!   data Box's two-moment fallback let 2–4× the configured rate through).
//!
//! Both come from the training eigenvalues alone, so they are stable for
//! small training sets and high confidence levels, where an empirical
//! 99.9 % quantile would rest on a handful of tail points (and in-sample
//! Q is biased low because the components were fitted to those very
//! points). The price is the Gaussian assumption: on strongly non-Gaussian
//! data the real false-alarm rate differs from the configured one.
//!
//! `confidence` is the probability that a healthy point is flagged by
//! *neither* statistic: each limit is set at `√confidence` (Šidák; T² and Q
//! live on orthogonal subspaces and are independent for Gaussian data), so
//! the overall false-alarm rate is about `1 − confidence`.
//!
//! # Contributions
//! Shares of the combined index `φ = T²/T²lim + Q/Qlim` (Yue & Qin) split by
//! complete decomposition (Alcala & Qin): `c_j = (u_j/√T²lim + e_j/√Qlim)²`
//! with `u = PΛ^(-1/2)Pᵀz` and `e` the residual. The two parts lie in
//! orthogonal subspaces, so the `c_j` are non-negative and sum to φ; the
//! shares are `c_j / φ`.
//!
//! # Cost
//! `score` is O(variables × components) with one allocation (the
//! contributions vector); the projection is the stored loadings.

use std::panic::{catch_unwind, AssertUnwindSafe};

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_reduction::Pca;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Below `max(STD_ABS_FLOOR, STD_REL_FLOOR·|mean|)` a column is constant.
const STD_ABS_FLOOR: f64 = 1e-12;
const STD_REL_FLOOR: f64 = 1e-9;
/// Standardized deviations are clamped to this magnitude (finite statistics).
const Z_CLAMP: f64 = 1e50;
/// Smallest Q limit (standardized units²), for models without a residual space.
const Q_FLOOR: f64 = 1e-9;
/// Smallest eigenvalue kept for a component (avoids dividing by ~0).
const EIG_FLOOR: f64 = 1e-12;
/// Below this h₀ Jackson–Mudholkar is unreliable (h₀ ≤ 1/3 always; it turns
/// negative when a few residual eigenvalues dominate many small ones).
const JM_MIN_H0: f64 = 0.1;
/// Components scored with a stack buffer; more use a heap buffer.
const STACK_COMPONENTS: usize = 32;

/// Tuning of the multivariate detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PcaConfig {
    /// Share of the total (standardized) variance the kept components explain, in (0, 1].
    pub variance_kept: f64,
    /// Probability that a healthy point is not flagged, in (0, 1).
    pub confidence: f64,
    /// Fewest training rows accepted (at least variables + 2 is always required).
    pub min_samples: usize,
}

impl Default for PcaConfig {
    fn default() -> Self {
        Self {
            variance_kept: 0.95,
            confidence: 0.999,
            min_samples: 500,
        }
    }
}

impl PcaConfig {
    fn validate(&self) -> Result<(), MultivariateError> {
        if !(self.variance_kept > 0.0 && self.variance_kept <= 1.0) {
            return Err(MultivariateError::InvalidConfig(
                "variance_kept must be in (0, 1]",
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(MultivariateError::InvalidConfig("confidence must be in (0, 1)"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MultivariateError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("not enough samples: {got}, at least {need} needed")]
    NotEnoughSamples { got: usize, need: usize },
    #[error("the samples have no variables (empty rows)")]
    NoVariables,
    #[error("row {row} has {got} values, expected {expected}")]
    RaggedRow { row: usize, got: usize, expected: usize },
    #[error("non-finite value at row {row}, column {column}")]
    NonFiniteSample { row: usize, column: usize },
    #[error("values of column {column} are too large to standardize")]
    OutOfRange { column: usize },
    #[error("every variable is constant in the training data")]
    NoVariance,
    #[error("PCA decomposition failed: {0}")]
    Decomposition(String),
    #[error("expected {expected} values, got {got}")]
    WrongLength { got: usize, expected: usize },
    #[error("non-finite value in column {column}")]
    NonFiniteValue { column: usize },
    #[error("inconsistent stored model: {0}")]
    InvalidModel(&'static str),
}

/// A fitted per-asset PCA model. Serializes to JSON (camelCase) for storage;
/// deserializing validates the shapes, so a damaged record is an error, not
/// a panic in [`PcaModel::score`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "PcaModelData")]
pub struct PcaModel {
    variables: usize,
    components: usize,
    /// Training rows.
    samples: usize,
    confidence: f64,
    mean: Vec<f64>,
    /// Standard deviations, floored for constant columns.
    std: Vec<f64>,
    /// Loadings, `variables × components`, row-major (zero rows for constant columns).
    loadings: Vec<f64>,
    /// Variances of the kept components (standardized units).
    eigenvalues: Vec<f64>,
    t2_limit: f64,
    q_limit: f64,
}

/// The stored form, checked before it becomes a [`PcaModel`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PcaModelData {
    variables: usize,
    components: usize,
    samples: usize,
    confidence: f64,
    mean: Vec<f64>,
    std: Vec<f64>,
    loadings: Vec<f64>,
    eigenvalues: Vec<f64>,
    t2_limit: f64,
    q_limit: f64,
}

impl TryFrom<PcaModelData> for PcaModel {
    type Error = MultivariateError;

    fn try_from(d: PcaModelData) -> Result<Self, Self::Error> {
        let bad = MultivariateError::InvalidModel;
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if d.variables == 0 || d.components > d.variables {
            return Err(bad("variables / components"));
        }
        if d.mean.len() != d.variables || d.std.len() != d.variables {
            return Err(bad("mean / std length"));
        }
        if d.components.checked_mul(d.variables) != Some(d.loadings.len()) {
            return Err(bad("loadings length"));
        }
        if d.eigenvalues.len() != d.components {
            return Err(bad("eigenvalues length"));
        }
        if !d.mean.iter().all(|v| v.is_finite())
            || !d.std.iter().all(|&v| positive(v))
            || !d.loadings.iter().all(|v| v.is_finite())
            || !d.eigenvalues.iter().all(|&v| positive(v))
        {
            return Err(bad("non-finite or non-positive values"));
        }
        if !positive(d.t2_limit) || !positive(d.q_limit) {
            return Err(bad("limits"));
        }
        Ok(Self {
            variables: d.variables,
            components: d.components,
            samples: d.samples,
            confidence: d.confidence,
            mean: d.mean,
            std: d.std,
            loadings: d.loadings,
            eigenvalues: d.eigenvalues,
            t2_limit: d.t2_limit,
            q_limit: d.q_limit,
        })
    }
}

/// The score of one time point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MvScore {
    /// Hotelling's T² in the kept components.
    pub t2: f64,
    /// Q (squared prediction error) in the residual space.
    pub q: f64,
    pub t2_limit: f64,
    pub q_limit: f64,
    /// T² or Q above its limit.
    pub anomalous: bool,
    /// Per-variable contribution shares (sum 1), to name the contributing sensors.
    pub contributions: Vec<f64>,
}

impl MvScore {
    /// The `n` largest contributions as (variable index, share), largest first.
    pub fn top_contributors(&self, n: usize) -> Vec<(usize, f64)> {
        let mut all: Vec<(usize, f64)> = self.contributions.iter().copied().enumerate().collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

impl PcaModel {
    /// Fits the model: `samples` are rows (time points) of the asset's
    /// sensors, all the same length, all finite.
    pub fn fit(samples: &[Vec<f64>], config: &PcaConfig) -> Result<Self, MultivariateError> {
        config.validate()?;
        let n = samples.len();
        let p = samples.first().map_or(0, Vec::len);
        if n > 0 && p == 0 {
            return Err(MultivariateError::NoVariables);
        }
        for (row, values) in samples.iter().enumerate() {
            if values.len() != p {
                return Err(MultivariateError::RaggedRow {
                    row,
                    got: values.len(),
                    expected: p,
                });
            }
            if let Some(column) = values.iter().position(|v| !v.is_finite()) {
                return Err(MultivariateError::NonFiniteSample { row, column });
            }
        }
        let need = config.min_samples.max(p + 2).max(3);
        if n < need {
            return Err(MultivariateError::NotEnoughSamples { got: n, need });
        }
        let nf = n as f64;

        // Standardization (two passes: mean, then squared deviations).
        let mut mean = vec![0.0; p];
        for values in samples {
            for (m, v) in mean.iter_mut().zip(values) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= nf);
        let mut var = vec![0.0; p];
        for values in samples {
            for ((s, v), m) in var.iter_mut().zip(values).zip(&mean) {
                let d = v - m;
                *s += d * d;
            }
        }
        let mut std = vec![0.0; p];
        let mut active = Vec::with_capacity(p);
        for j in 0..p {
            let sd = (var[j] / (nf - 1.0)).sqrt();
            if !mean[j].is_finite() || !sd.is_finite() {
                return Err(MultivariateError::OutOfRange { column: j });
            }
            let floor = STD_ABS_FLOOR.max(STD_REL_FLOOR * mean[j].abs());
            if sd > floor {
                std[j] = sd;
                active.push(j);
            } else {
                std[j] = floor;
            }
        }
        let pa = active.len();
        if pa == 0 {
            return Err(MultivariateError::NoVariance);
        }
        let z = Array2::from_shape_fn((n, pa), |(i, c)| {
            let j = active[c];
            (samples[i][j] - mean[j]) / std[j]
        });

        // Traces of the correlation matrix and its powers (for Q's θ's).
        let corr = z.t().dot(&z) / (nf - 1.0);
        let corr2 = corr.dot(&corr);
        let tr1: f64 = corr.diag().sum();
        let tr2: f64 = corr.iter().map(|c| c * c).sum();
        let tr3: f64 = corr2.iter().zip(corr.t().iter()).map(|(a, b)| a * b).sum();

        let dataset = DatasetBase::from(z);
        let pca = catch_unwind(AssertUnwindSafe(|| Pca::params(pa).fit(&dataset)))
            .map_err(|_| MultivariateError::Decomposition("the decomposition panicked".into()))?
            .map_err(|e| MultivariateError::Decomposition(e.to_string()))?;
        // Eigenvalues σ²/(n−1) computed here: linfa's `explained_variance`
        // divides by the number of components instead of n − 1.
        let lambdas: Vec<f64> = pca.singular_values().iter().map(|s| s * s / (nf - 1.0)).collect();
        let axes = pca.components();
        let got = lambdas.len().min(axes.nrows());
        if got == 0 || axes.ncols() != pa || lambdas.iter().any(|l| !l.is_finite()) {
            return Err(MultivariateError::Decomposition("no usable components".into()));
        }

        // Fewest components explaining `variance_kept`, leaving a residual space.
        let max_k = if pa >= 2 { pa - 1 } else { 1 }.min(got);
        let target = config.variance_kept * tr1;
        let mut k = 0;
        let mut explained = 0.0;
        while k < max_k {
            explained += lambdas[k];
            k += 1;
            if explained >= target * (1.0 - 1e-12) {
                break;
            }
        }

        let mut loadings = vec![0.0; p * k];
        for (c, &j) in active.iter().enumerate() {
            for a in 0..k {
                loadings[j * k + a] = axes[[a, c]];
            }
        }
        let eigenvalues: Vec<f64> = lambdas[..k].iter().map(|l| l.max(EIG_FLOOR)).collect();

        // Residual eigenvalue power sums: from the spectrum when linfa returned
        // all of it, else from the traces.
        let theta = |power: i32, trace: f64| -> f64 {
            let t = if got == pa {
                lambdas[k..].iter().map(|l| l.max(0.0).powi(power)).sum::<f64>()
            } else {
                trace - lambdas[..k].iter().map(|l| l.powi(power)).sum::<f64>()
            };
            t.max(0.0)
        };
        let (theta1, theta2, theta3) = (theta(1, tr1), theta(2, tr2), theta(3, tr3));

        let per_stat = config.confidence.sqrt();
        let kf = k as f64;
        let t2_limit = kf * (nf - 1.0) * (nf + 1.0) / (nf * (nf - kf)) * f_quantile(per_stat, kf, nf - kf);
        let q_limit = q_limit(per_stat, theta1, theta2, theta3, tr1);
        if !(t2_limit.is_finite() && t2_limit > 0.0) {
            return Err(MultivariateError::Decomposition("T² limit is not finite".into()));
        }

        Ok(Self {
            variables: p,
            components: k,
            samples: n,
            confidence: config.confidence,
            mean,
            std,
            loadings,
            eigenvalues,
            t2_limit,
            q_limit,
        })
    }

    /// Scores one time point (one value per variable, in training order).
    pub fn score(&self, x: &[f64]) -> Result<MvScore, MultivariateError> {
        let (p, k) = (self.variables, self.components);
        if x.len() != p {
            return Err(MultivariateError::WrongLength {
                got: x.len(),
                expected: p,
            });
        }
        if let Some(column) = x.iter().position(|v| !v.is_finite()) {
            return Err(MultivariateError::NonFiniteValue { column });
        }
        let mut stack = [0.0f64; STACK_COMPONENTS];
        let mut heap = Vec::new();
        let w: &mut [f64] = if k <= STACK_COMPONENTS {
            &mut stack[..k]
        } else {
            heap.resize(k, 0.0);
            &mut heap
        };

        // Scores t = Pᵀz, then whitened w = Λ^(-1/2) t, T² = |w|².
        for (j, &v) in x.iter().enumerate() {
            let z = self.z(j, v);
            let row = &self.loadings[j * k..(j + 1) * k];
            for (wa, l) in w.iter_mut().zip(row) {
                *wa += l * z;
            }
        }
        let mut t2 = 0.0;
        for (wa, lambda) in w.iter_mut().zip(&self.eigenvalues) {
            *wa /= lambda.sqrt();
            t2 += *wa * *wa;
        }

        // Residual e = z − P t and the T² part u = P w, per variable.
        let inv_tau = 1.0 / self.t2_limit.sqrt();
        let inv_delta = 1.0 / self.q_limit.sqrt();
        let mut q = 0.0;
        let mut total = 0.0;
        let mut contributions = Vec::with_capacity(p);
        for (j, &v) in x.iter().enumerate() {
            let z = self.z(j, v);
            let row = &self.loadings[j * k..(j + 1) * k];
            let mut u = 0.0;
            let mut recon = 0.0;
            for ((l, wa), lambda) in row.iter().zip(w.iter()).zip(&self.eigenvalues) {
                u += l * wa;
                recon += l * wa * lambda.sqrt();
            }
            let e = z - recon;
            q += e * e;
            let c = u * inv_tau + e * inv_delta;
            let c = c * c;
            total += c;
            contributions.push(c);
        }
        if total > 0.0 && total.is_finite() {
            contributions.iter_mut().for_each(|c| *c /= total);
        } else {
            contributions.iter_mut().for_each(|c| *c = 1.0 / p as f64);
        }
        Ok(MvScore {
            t2,
            q,
            t2_limit: self.t2_limit,
            q_limit: self.q_limit,
            anomalous: t2 > self.t2_limit || q > self.q_limit,
            contributions,
        })
    }

    #[inline]
    fn z(&self, j: usize, v: f64) -> f64 {
        ((v - self.mean[j]) / self.std[j]).clamp(-Z_CLAMP, Z_CLAMP)
    }

    /// Kept principal components.
    pub fn components(&self) -> usize {
        self.components
    }

    /// Variables (sensors) per row.
    pub fn variables(&self) -> usize {
        self.variables
    }

    /// Training rows the model was fitted on.
    pub fn samples(&self) -> usize {
        self.samples
    }

    pub fn t2_limit(&self) -> f64 {
        self.t2_limit
    }

    pub fn q_limit(&self) -> f64 {
        self.q_limit
    }

    /// Bytes this model holds (heap included).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<f64>()
                * (self.mean.capacity()
                    + self.std.capacity()
                    + self.loadings.capacity()
                    + self.eigenvalues.capacity())
    }
}

/// Jackson–Mudholkar Q limit at `confidence` where it is well defined
/// (h₀ ≥ [`JM_MIN_H0`]), else Pearson's three-moment approximation
/// `a + b·χ²(ν)`; floored at [`Q_FLOOR`].
fn q_limit(confidence: f64, theta1: f64, theta2: f64, theta3: f64, total: f64) -> f64 {
    if theta1 <= 1e-12 * total.max(1.0) || theta2 <= 0.0 {
        return Q_FLOOR;
    }
    let h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2 * theta2);
    let mut limit = f64::NAN;
    if h0 >= JM_MIN_H0 {
        let z = normal_quantile(confidence);
        let base =
            z * (2.0 * theta2 * h0 * h0).sqrt() / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / (theta1 * theta1);
        if base > 0.0 {
            limit = theta1 * base.powf(1.0 / h0);
        }
    }
    if !(limit.is_finite() && limit > 0.0) {
        if theta3 > 0.0 {
            // Pearson: Q ≈ a + b·χ²(ν), matching the cumulants κ₁ = θ₁,
            // κ₂ = 2θ₂, κ₃ = 8θ₃ of Q = Σ λᵢχ²(1).
            let b = theta3 / theta2;
            let nu = theta2.powi(3) / (theta3 * theta3);
            limit = theta1 - theta2 * theta2 / theta3 + b * chi2_quantile(confidence, nu);
        } else {
            // Box: Q ≈ g·χ²(h), matching two moments.
            limit = theta2 / theta1 * chi2_quantile(confidence, theta1 * theta1 / theta2);
        }
    }
    if limit.is_finite() {
        limit.max(Q_FLOOR)
    } else {
        Q_FLOOR
    }
}

/// Quantile of the χ²(ν) distribution, by bisection on the regularized
/// lower incomplete gamma function.
fn chi2_quantile(p: f64, nu: f64) -> f64 {
    if !(nu > 0.0 && nu.is_finite()) {
        return f64::NAN;
    }
    let a = nu / 2.0;
    let mut hi = 2.0 * nu.max(1.0);
    let mut guard = 0;
    while reg_lower_gamma(a, hi / 2.0) < p && guard < 200 {
        hi *= 2.0;
        guard += 1;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if reg_lower_gamma(a, mid / 2.0) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-14 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Regularized lower incomplete gamma function P(a, x).
fn reg_lower_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series.
        let (mut ap, mut del) = (a, 1.0 / a);
        let mut sum = del;
        for _ in 0..100_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (sum * ln_front.exp()).min(1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        const TINY: f64 = 1e-300;
        let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / guard(b);
        let mut h = d;
        for i in 1..100_000 {
            let i = f64::from(i);
            let an = -i * (i - a);
            b += 2.0;
            d = 1.0 / guard(an * d + b);
            c = guard(b + an / c);
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (1.0 - ln_front.exp() * h).max(0.0)
    }
}

/// Standard normal quantile (Acklam's rational approximation, |rel. err.| < 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let p = p.clamp(1e-300, 1.0 - f64::EPSILON);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// Quantile of the F(d1, d2) distribution, by bisection on the regularized
/// incomplete beta function.
fn f_quantile(p: f64, d1: f64, d2: f64) -> f64 {
    let (a, b) = (d1 / 2.0, d2 / 2.0);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if reg_inc_beta(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-17 {
            break;
        }
    }
    let y = 0.5 * (lo + hi);
    d2 * y / (d1 * (1.0 - y))
}

/// Regularized incomplete beta function I_x(a, b).
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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

    /// Five sensors driven by two latent factors plus noise.
    const OFFSET: [f64; 5] = [50.0, 3.0, 100.0, 1.5, 7.0];
    const LOADING: [[f64; 2]; 5] = [[10.0, 0.0], [0.8, 0.3], [20.0, -5.0], [0.0, 0.5], [2.0, 2.0]];
    const NOISE: [f64; 5] = [0.5, 0.05, 1.0, 0.03, 0.15];

    fn point(f1: f64, f2: f64, rng: Option<&mut Rng>) -> Vec<f64> {
        let mut rng = rng;
        (0..5)
            .map(|j| {
                let noise = rng.as_deref_mut().map_or(0.0, |r| NOISE[j] * r.gauss());
                OFFSET[j] + LOADING[j][0] * f1 + LOADING[j][1] * f2 + noise
            })
            .collect()
    }

    fn healthy(rng: &mut Rng, n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                let (f1, f2) = (rng.gauss(), rng.gauss());
                point(f1, f2, Some(rng))
            })
            .collect()
    }

    fn config(confidence: f64) -> PcaConfig {
        PcaConfig {
            variance_kept: 0.95,
            confidence,
            min_samples: 200,
        }
    }

    #[test]
    fn distribution_helpers_match_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.999) - 3.090_232_306).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
        assert!((f_quantile(0.95, 2.0, 10.0) - 4.102_821).abs() < 1e-5);
        // F(1, d) is Student's t² : t(0.975, 10) = 2.228139.
        assert!((f_quantile(0.95, 1.0, 10.0) - 2.228_139f64.powi(2)).abs() < 1e-4);
        assert!((f_quantile(0.99, 1.0, 10.0) - 10.044_3).abs() < 1e-3);
        assert!((f_quantile(0.95, 5.0, 20.0) - 2.710_9).abs() < 1e-3);
        // Large denominator: k·F(k, ∞) → χ²(k); χ²(2, 0.999) = 13.8155.
        assert!((2.0 * f_quantile(0.999, 2.0, 1e6) - 13.815_5).abs() < 2e-2);
        assert!((chi2_quantile(0.95, 1.0) - 3.841_459).abs() < 1e-5);
        assert!((chi2_quantile(0.999, 2.0) - 13.815_511).abs() < 1e-5);
        assert!((chi2_quantile(0.99, 10.0) - 23.209_251).abs() < 1e-5);
        assert!((chi2_quantile(0.5, 100.0) - 99.334_129).abs() < 1e-4);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn healthy_points_flagged_at_about_the_configured_rate() {
        let mut rng = Rng(1);
        let model = PcaModel::fit(&healthy(&mut rng, 5000), &config(0.99)).unwrap();
        assert_eq!(model.variables(), 5);
        assert_eq!(model.components(), 2, "two latent factors");
        let n = 20_000;
        let (mut flagged, mut t2_over, mut q_over) = (0, 0, 0);
        for x in healthy(&mut rng, n) {
            let s = model.score(&x).unwrap();
            assert!((s.contributions.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            flagged += usize::from(s.anomalous);
            t2_over += usize::from(s.t2 > s.t2_limit);
            q_over += usize::from(s.q > s.q_limit);
        }
        let rate = flagged as f64 / n as f64;
        // Configured: 1 % overall, about 0.5 % per statistic.
        assert!((0.006..0.016).contains(&rate), "false-alarm rate {rate}");
        assert!((30..200).contains(&t2_over), "T² over limit {t2_over}");
        assert!((30..200).contains(&q_over), "Q over limit {q_over}");

        let strict = PcaModel::fit(&healthy(&mut Rng(2), 5000), &config(0.999)).unwrap();
        let flagged = healthy(&mut rng, n)
            .iter()
            .filter(|x| strict.score(x).unwrap().anomalous)
            .count();
        assert!(flagged < 60, "{flagged} of {n} flagged at 99.9 %");
    }

    #[test]
    fn q_limit_holds_with_very_uneven_residuals() {
        // 30 sensors on one factor: one noisy, 29 a little noisy, so one
        // residual eigenvalue about equals the sum of many small ones
        // (Jackson–Mudholkar's h₀ < 0; Box's two-moment fit would let about
        // twice the rate through).
        let mut rng = Rng(9);
        let mut rows = |n: usize| -> Vec<Vec<f64>> {
            (0..n)
                .map(|_| {
                    let f = rng.gauss();
                    (0..30)
                        .map(|j| 10.0 + f + if j == 0 { 1.0 } else { 0.13 } * rng.gauss())
                        .collect()
                })
                .collect()
        };
        let train = rows(4000);
        let test = rows(60_000);
        let model = PcaModel::fit(&train, &config(0.99)).unwrap();
        assert_eq!(model.components(), 1);
        let over = test
            .iter()
            .filter(|x| {
                let s = model.score(x).unwrap();
                s.q > s.q_limit
            })
            .count();
        // Per statistic 1 − √0.99 ≈ 0.5 %, i.e. about 300 of 60 000.
        assert!((200..420).contains(&over), "{over} of 60000 over the Q limit");
    }

    #[test]
    fn broken_correlation_is_caught_by_q_and_names_the_sensor() {
        let train = healthy(&mut Rng(3), 5000);
        let model = PcaModel::fit(&train, &config(0.999)).unwrap();
        // Every sensor at the value of factor 1 = +1 … except sensor 0, which
        // reads as if factor 1 were −1: each value is ordinary on its own.
        let mut x = point(1.0, 0.0, None);
        x[0] = point(-1.0, 0.0, None)[0];
        for (j, v) in x.iter().enumerate() {
            let (lo, hi) = train
                .iter()
                .map(|r| r[j])
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
            assert!((lo..=hi).contains(v), "sensor {j} within its training range");
        }
        let s = model.score(&x).unwrap();
        assert!(s.anomalous);
        assert!(s.q > s.q_limit, "q {} limit {}", s.q, s.q_limit);
        assert_eq!(s.top_contributors(1)[0].0, 0, "{:?}", s.contributions);
        assert!(s.top_contributors(5).windows(2).all(|w| w[0].1 >= w[1].1));

        // The same point without the break is fine.
        let ok = model.score(&point(1.0, 0.0, None)).unwrap();
        assert!(!ok.anomalous, "{ok:?}");
    }

    #[test]
    fn far_along_the_factor_is_caught_by_t2() {
        let model = PcaModel::fit(&healthy(&mut Rng(4), 5000), &config(0.999)).unwrap();
        let s = model.score(&point(8.0, 0.0, None)).unwrap();
        assert!(s.anomalous);
        assert!(s.t2 > s.t2_limit, "t2 {} limit {}", s.t2, s.t2_limit);
        assert!(
            s.q < s.q_limit,
            "moves along the model: q {} limit {}",
            s.q,
            s.q_limit
        );
    }

    #[test]
    fn constant_columns_do_not_blow_up_and_are_watched() {
        let mut rng = Rng(5);
        let with_constant = |rows: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            rows.into_iter()
                .map(|mut r| {
                    r.push(230.0);
                    r
                })
                .collect()
        };
        let model = PcaModel::fit(&with_constant(healthy(&mut rng, 3000)), &config(0.999)).unwrap();
        assert_eq!(model.variables(), 6);
        assert_eq!(model.components(), 2);
        let fresh = with_constant(healthy(&mut rng, 2000));
        let flagged = fresh.iter().filter(|x| model.score(x).unwrap().anomalous).count();
        assert!(flagged < 15, "{flagged} flagged");
        let mut moved = point(0.5, -0.5, None);
        moved.push(231.0);
        let s = model.score(&moved).unwrap();
        assert!(s.anomalous && s.q.is_finite() && s.t2.is_finite());
        assert_eq!(s.top_contributors(1)[0].0, 5);

        // Huge but finite inputs stay finite.
        let s = model.score(&[1e300, -1e300, 1e300, 0.0, 5.0, -1e308]).unwrap();
        assert!(s.anomalous && s.q.is_finite() && s.t2.is_finite());
        assert!((s.contributions.iter().sum::<f64>() - 1.0).abs() < 1e-9);

        let all_constant = vec![vec![1.0, 2.0]; 500];
        assert_eq!(
            PcaModel::fit(&all_constant, &config(0.999)).unwrap_err(),
            MultivariateError::NoVariance
        );
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let rows = healthy(&mut Rng(6), 300);
        assert_eq!(
            PcaModel::fit(&rows[..50], &config(0.99)).unwrap_err(),
            MultivariateError::NotEnoughSamples { got: 50, need: 200 }
        );
        // Never fewer than variables + 2, whatever min_samples says.
        let loose = PcaConfig {
            min_samples: 0,
            ..config(0.99)
        };
        assert_eq!(
            PcaModel::fit(&rows[..6], &loose).unwrap_err(),
            MultivariateError::NotEnoughSamples { got: 6, need: 7 }
        );
        assert!(matches!(
            PcaModel::fit(&[], &config(0.99)),
            Err(MultivariateError::NotEnoughSamples { got: 0, .. })
        ));
        assert_eq!(
            PcaModel::fit(&vec![vec![]; 300], &config(0.99)).unwrap_err(),
            MultivariateError::NoVariables
        );
        let mut ragged = rows.clone();
        ragged[7].pop();
        assert_eq!(
            PcaModel::fit(&ragged, &config(0.99)).unwrap_err(),
            MultivariateError::RaggedRow {
                row: 7,
                got: 4,
                expected: 5
            }
        );
        let mut nan = rows.clone();
        nan[9][3] = f64::NAN;
        assert_eq!(
            PcaModel::fit(&nan, &config(0.99)).unwrap_err(),
            MultivariateError::NonFiniteSample { row: 9, column: 3 }
        );
        let mut huge = rows.clone();
        huge[0][1] = 1e300;
        huge[1][1] = -1e300;
        assert_eq!(
            PcaModel::fit(&huge, &config(0.99)).unwrap_err(),
            MultivariateError::OutOfRange { column: 1 }
        );
        for bad in [
            PcaConfig {
                variance_kept: 0.0,
                ..config(0.99)
            },
            PcaConfig {
                variance_kept: f64::NAN,
                ..config(0.99)
            },
            config(1.0),
            config(0.0),
        ] {
            assert!(matches!(
                PcaModel::fit(&rows, &bad),
                Err(MultivariateError::InvalidConfig(_))
            ));
        }

        let model = PcaModel::fit(&rows, &config(0.99)).unwrap();
        assert_eq!(
            model.score(&[1.0; 4]).unwrap_err(),
            MultivariateError::WrongLength { got: 4, expected: 5 }
        );
        assert_eq!(
            model.score(&[]).unwrap_err(),
            MultivariateError::WrongLength { got: 0, expected: 5 }
        );
        assert_eq!(
            model.score(&[1.0, 2.0, f64::INFINITY, 4.0, 5.0]).unwrap_err(),
            MultivariateError::NonFiniteValue { column: 2 }
        );
        assert_eq!(
            model.score(&[f64::NAN, 2.0, 3.0, 4.0, 5.0]).unwrap_err(),
            MultivariateError::NonFiniteValue { column: 0 }
        );
    }

    #[test]
    fn variance_kept_controls_the_components() {
        let rows = healthy(&mut Rng(7), 2000);
        let one = PcaModel::fit(
            &rows,
            &PcaConfig {
                variance_kept: 0.5,
                ..config(0.99)
            },
        )
        .unwrap();
        assert_eq!(one.components(), 1);
        let all = PcaModel::fit(
            &rows,
            &PcaConfig {
                variance_kept: 1.0,
                ..config(0.99)
            },
        )
        .unwrap();
        assert_eq!(all.components(), 4, "capped one below the variables");
        let s = all.score(&rows[0]).unwrap();
        assert!(s.t2.is_finite() && s.q.is_finite());
    }

    #[test]
    fn json_round_trip_scores_identically() {
        let mut rng = Rng(8);
        let model = PcaModel::fit(&healthy(&mut rng, 1000), &config(0.999)).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        assert!(json.contains("\"t2Limit\""), "{json}");
        let back: PcaModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        let mut broken = point(1.0, 0.0, None);
        broken[2] += 30.0;
        for x in healthy(&mut rng, 50)
            .iter()
            .chain([&broken, &point(9.0, 1.0, None)])
        {
            assert_eq!(back.score(x).unwrap(), model.score(x).unwrap());
        }
        assert!(model.memory_bytes() > 8 * (5 * 2 + 5 + 5 + 2));

        // A damaged record is an error, not a panic later.
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["loadings"].as_array_mut().unwrap().pop();
        assert!(serde_json::from_value::<PcaModel>(value).is_err());
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["std"][0] = serde_json::json!(0.0);
        assert!(serde_json::from_value::<PcaModel>(value).is_err());
    }
}
