//! A port of NAB v1.1's scorer (`nab/sweeper.py`): probationary period,
//! window-relative sigmoid rewards, the standard / low-FP / low-FN
//! profiles, normalization between the null and the perfect detector, and
//! the threshold sweep that picks each profile's best threshold.

use serde::Serialize;

use super::{Corpus, NabFile};

/// Rewards of one application profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub a_tp: f64,
    pub a_fp: f64,
    pub a_fn: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        a_tp: 1.0,
        a_fp: 0.22,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 2.0,
    },
];

/// `2/(1+e^{5y}) − 1`, and −1 beyond 3 window widths.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// Rows not scored at the start of a file of `n` rows.
pub fn probationary_period(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// Where a row sits relative to the labelled windows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// In the probationary period: never scored.
    Probation,
    /// Inside window `w`; the reward of a detection here, unweighted (1 at the left edge).
    Window { w: usize, reward: f64 },
    /// Outside every window; the sigmoid of the distance past the previous
    /// window (−1 before the first one), to be weighted by A_FP.
    Outside { sigmoid: f64 },
}

fn places(file: &NabFile) -> Vec<Place> {
    let n = file.len();
    let prob = probationary_period(n);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<(usize, usize)> = None; // (right index, width)
    let mut next = 0;
    for i in 0..n {
        let place = match file.windows.get(next) {
            Some(&(a, b)) if i >= a => {
                let width = (b - a + 1) as f64;
                let y = -((b - i + 1) as f64) / width;
                if i == b {
                    prev = Some((b, b - a + 1));
                    next += 1;
                }
                Place::Window {
                    w: next - usize::from(i == b),
                    reward: scaled_sigmoid(y) / max_tp,
                }
            }
            _ => {
                let sigmoid = match prev {
                    None => -1.0,
                    Some((r, w)) => scaled_sigmoid((i.abs_diff(r)) as f64 / (w as f64 - 1.0).max(1.0)),
                };
                Place::Outside { sigmoid }
            }
        };
        out.push(if i < prob { Place::Probation } else { place });
    }
    out
}

/// Raw score of one file at `threshold`, with counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub score: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Scores one file's detector output at a threshold.
pub fn score_file(file: &NabFile, scores: &[f64], profile: &Profile, threshold: f64) -> Tally {
    let mut detected = vec![false; file.windows.len()];
    let mut t = Tally::default();
    for (place, s) in places(file).into_iter().zip(scores) {
        if *s < threshold {
            continue;
        }
        match place {
            Place::Probation => {}
            Place::Window { w, reward } => {
                if !detected[w] {
                    detected[w] = true;
                    t.score += profile.a_tp * reward;
                    t.tp += 1;
                }
            }
            Place::Outside { sigmoid } => {
                t.score += profile.a_fp * sigmoid;
                t.fp += 1;
            }
        }
    }
    t.fn_ = detected.iter().filter(|d| !**d).count();
    t.score -= profile.a_fn * t.fn_ as f64;
    t
}

/// One profile's result over a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileScore {
    pub profile: &'static str,
    pub threshold: f64,
    pub raw: f64,
    pub normalized: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Every profile's result over a corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusScore {
    pub profiles: Vec<ProfileScore>,
}

/// `100·(S − S_null)/(S_perfect − S_null)`: the null detector misses every
/// window (−A_FN each), the perfect one catches each at its left edge (+A_TP).
pub fn normalize(raw: f64, windows: usize, profile: &Profile) -> f64 {
    let null = -profile.a_fn * windows as f64;
    let perfect = profile.a_tp * windows as f64;
    if perfect == null {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// Scores a corpus at a fixed threshold.
pub fn score_corpus(corpus: &Corpus, scores: &[Vec<f64>], profile: &Profile, threshold: f64) -> ProfileScore {
    let mut total = Tally::default();
    for (file, s) in corpus.files.iter().zip(scores) {
        let t = score_file(file, s, profile, threshold);
        total.score += t.score;
        total.tp += t.tp;
        total.fp += t.fp;
        total.fn_ += t.fn_;
    }
    ProfileScore {
        profile: profile.name,
        threshold,
        raw: total.score,
        normalized: normalize(total.score, corpus.window_count(), profile),
        tp: total.tp,
        fp: total.fp,
        fn_: total.fn_,
    }
}

/// NAB's threshold sweep: every distinct score over the corpus is tried as
/// the threshold (highest first, in one pass) and the one with the highest
/// raw score wins (the highest such threshold on ties).
pub fn optimize_threshold(corpus: &Corpus, scores: &[Vec<f64>], profile: &Profile) -> ProfileScore {
    struct Point {
        score: f64,
        window: Option<usize>, // corpus-wide window index
        value: f64,            // weighted reward of a detection here
    }
    let mut points = Vec::new();
    let mut window_base = 0;
    for (file, s) in corpus.files.iter().zip(scores) {
        for (place, &score) in places(file).into_iter().zip(s) {
            match place {
                Place::Probation => {}
                Place::Window { w, reward } => points.push(Point {
                    score,
                    window: Some(window_base + w),
                    value: profile.a_tp * reward,
                }),
                Place::Outside { sigmoid } => points.push(Point {
                    score,
                    window: None,
                    value: profile.a_fp * sigmoid,
                }),
            }
        }
        window_base += file.windows.len();
    }
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    let windows = corpus.window_count();
    let mut best_tp = vec![f64::NEG_INFINITY; windows];
    let mut tp_sum = 0.0;
    let (mut tp, mut fp, mut fp_sum) = (0usize, 0usize, 0.0);
    let no_detection = -profile.a_fn * windows as f64;
    let mut best = (f64::INFINITY, no_detection, 0, 0, windows);
    let mut i = 0;
    while i < points.len() {
        let threshold = points[i].score;
        while i < points.len() && points[i].score == threshold {
            let p = &points[i];
            match p.window {
                Some(w) => {
                    if best_tp[w] == f64::NEG_INFINITY {
                        tp += 1;
                        best_tp[w] = p.value;
                        tp_sum += p.value;
                    } else if p.value > best_tp[w] {
                        tp_sum += p.value - best_tp[w];
                        best_tp[w] = p.value;
                    }
                }
                None => {
                    fp += 1;
                    fp_sum += p.value;
                }
            }
            i += 1;
        }
        let raw = tp_sum + fp_sum - profile.a_fn * (windows - tp) as f64;
        if raw > best.1 {
            best = (threshold, raw, tp, fp, windows - tp);
        }
    }
    ProfileScore {
        profile: profile.name,
        threshold: if best.0.is_finite() { best.0 } else { 1.0 },
        raw: best.1,
        normalized: normalize(best.1, windows, profile),
        tp: best.2,
        fp: best.3,
        fn_: best.4,
    }
}

/// Optimized scores for all three profiles.
pub fn optimize_all(corpus: &Corpus, scores: &[Vec<f64>]) -> CorpusScore {
    CorpusScore {
        profiles: PROFILES
            .iter()
            .map(|p| optimize_threshold(corpus, scores, p))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{DateTime, Utc};

    fn file(n: usize, windows: Vec<(usize, usize)>) -> NabFile {
        NabFile {
            key: "t/x.csv".into(),
            timestamps: (0..n)
                .map(|i| DateTime::<Utc>::from_timestamp(i as i64 * 300, 0).unwrap())
                .collect(),
            values: vec![0.0; n],
            windows,
        }
    }

    #[test]
    fn sigmoid_shape() {
        assert!((scaled_sigmoid(0.0)).abs() < 1e-12);
        assert!(scaled_sigmoid(-1.0) > 0.98);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn left_edge_detection_earns_one_and_misses_cost_fn() {
        let f = file(1000, vec![(400, 499), (700, 799)]);
        let mut s = vec![0.0; 1000];
        s[400] = 1.0;
        let p = &PROFILES[0];
        let t = score_file(&f, &s, p, 0.5);
        assert_eq!((t.tp, t.fp, t.fn_), (1, 0, 1));
        assert!((t.score - (1.0 - 1.0)).abs() < 1e-9, "{t:?}");
        // A later detection in the same window adds nothing; one far outside costs A_FP.
        s[450] = 1.0;
        s[990] = 1.0;
        let t = score_file(&f, &s, p, 0.5);
        assert_eq!((t.tp, t.fp), (1, 1));
        assert!(
            (t.score - (1.0 - 1.0 - 0.11 * (1.0 - 2.0 / (1.0 + (5.0 * 191.0 / 99.0f64).exp())))).abs() < 1e-9
        );
    }

    #[test]
    fn probation_is_not_scored() {
        let f = file(1000, vec![]);
        let mut s = vec![0.0; 1000];
        s[100] = 1.0; // inside the first 150 rows
        assert_eq!(score_file(&f, &s, &PROFILES[0], 0.5).fp, 0);
    }

    #[test]
    fn sweep_agrees_with_fixed_threshold_scoring() {
        let f = file(2000, vec![(600, 699), (1500, 1599)]);
        let s: Vec<f64> = (0..2000).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let corpus = Corpus { files: vec![f] };
        for p in &PROFILES {
            let best = optimize_threshold(&corpus, std::slice::from_ref(&s), p);
            let fixed = score_corpus(&corpus, std::slice::from_ref(&s), p, best.threshold);
            assert!((best.raw - fixed.raw).abs() < 1e-9, "{best:?} vs {fixed:?}");
        }
    }
}
