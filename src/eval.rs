//! `maintainpro eval nab DIR`: the streaming detector on a NAB-format corpus,
//! scored with the NAB scorer port; writes NAB results files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use maintainpro_analytics::nab::{self, scorer, Corpus, PROFILES};
use maintainpro_analytics::stream::StreamConfig;

/// The detector name in results paths (`<out>/maintainpro/<category>/maintainpro_<file>`).
pub const DETECTOR: &str = "maintainpro";

/// What `eval nab` prints, per profile.
#[derive(Debug, Clone)]
pub struct ProfileLine {
    pub profile: &'static str,
    pub threshold: f64,
    pub normalized: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// The same output with the threshold re-optimized by the NAB sweep.
    pub swept: f64,
    /// Numenta HTM's published output at NAB's published thresholds, when
    /// the corpus carries `reference-numenta/`.
    pub reference: Option<f64>,
}

/// HTM's thresholds as NAB published them, per profile.
const HTM_THRESHOLDS: [f64; 3] = [0.5421876907, 0.5751955032, 0.5421876907];

/// Runs the evaluation; writes results under `out` (the low-FP run, the
/// production default) and returns one line per profile.
pub fn nab(dir: &Path, out: &Path) -> anyhow::Result<Vec<ProfileLine>> {
    let corpus = Corpus::load(dir).with_context(|| format!("loading the corpus in {}", dir.display()))?;
    let runs = nab::evaluate_stream(&corpus, StreamConfig::default());
    let reference_dir: PathBuf = dir.join("reference-numenta");
    let reference = if reference_dir.is_dir() {
        Some(nab::read_scores(&reference_dir, &corpus).context("reading reference-numenta")?)
    } else {
        None
    };
    let mut lines = Vec::new();
    for ((profile, run), htm_threshold) in PROFILES.iter().zip(&runs).zip(HTM_THRESHOLDS) {
        let swept = scorer::optimize_threshold(&corpus, &run.scores, profile);
        lines.push(ProfileLine {
            profile: profile.name,
            threshold: run.chosen.threshold,
            normalized: run.chosen.normalized,
            tp: run.chosen.tp,
            fp: run.chosen.fp,
            fn_: run.chosen.fn_,
            swept: swept.normalized,
            reference: reference
                .as_ref()
                .map(|r| scorer::score_corpus(&corpus, r, profile, htm_threshold).normalized),
        });
    }
    let low_fp = &runs[1];
    nab::write_results(out, DETECTOR, &corpus, &low_fp.scores)
        .with_context(|| format!("writing results to {}", out.display()))?;
    Ok(lines)
}
