//! Per-asset multivariate monitoring: lines an asset's sensors up into rows
//! (readings with the same timestamp), fits a PCA baseline
//! ([`crate::multivariate`]) on a healthy stretch, scores later rows with
//! T² and Q, and folds exceedances into episodes that name the contributing
//! sensors. Refits on a schedule and, after a confirmed repair, on the data
//! that follows it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::multivariate::{MvScore, PcaConfig, PcaModel};

/// Tuning of the per-asset monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetConfig {
    /// Healthy rows the baseline is fitted on.
    pub train_rows: usize,
    /// Rows scored before the baseline is refitted on recent healthy rows.
    pub refit_every: usize,
    /// Consecutive exceeding rows that open an episode.
    pub open_after: usize,
    /// Consecutive normal rows that close it.
    pub clear_after: usize,
    pub pca: PcaConfig,
}

impl Default for AssetConfig {
    fn default() -> Self {
        Self {
            train_rows: 1200,
            // Ten minutes at one row per second: the baseline follows slow,
            // shared movements (a daily cycle, load) instead of calling them
            // anomalous hours later. Anomalous rows never enter the refit.
            refit_every: 600,
            open_after: 3,
            clear_after: 30,
            pca: PcaConfig::default(),
        }
    }
}

/// What a completed row changed.
#[derive(Debug, Clone, PartialEq)]
pub enum AssetSignal {
    /// An episode starts; `contributors` are (sensor, share), largest first.
    Opened {
        ts: DateTime<Utc>,
        score: MvScore,
        contributors: Vec<(Uuid, f64)>,
    },
    /// The episode is over.
    Closed {
        ts: DateTime<Utc>,
        rows: u32,
        max_q: f64,
        max_t2: f64,
    },
}

/// Rows waiting for their last sensor, at most.
const MAX_PENDING: usize = 20_000;

/// One asset's monitor.
#[derive(Debug, Clone)]
pub struct AssetMonitor {
    config: AssetConfig,
    sensors: Vec<Uuid>,
    /// Cells of rows not complete yet: value and whether that sensor was healthy.
    pending: BTreeMap<DateTime<Utc>, Vec<Option<(f64, bool)>>>,
    training: Vec<Vec<f64>>,
    model: Option<PcaModel>,
    scored: usize,
    run: usize,
    calm: usize,
    episode: Option<(u32, f64, f64)>,
}

impl AssetMonitor {
    /// A monitor of `sensors` (in this order in every row).
    pub fn new(sensors: Vec<Uuid>, config: AssetConfig) -> Self {
        Self {
            config,
            sensors,
            pending: BTreeMap::new(),
            training: Vec::new(),
            model: None,
            scored: 0,
            run: 0,
            calm: 0,
            episode: None,
        }
    }

    pub fn sensors(&self) -> &[Uuid] {
        &self.sensors
    }

    pub fn model(&self) -> Option<&PcaModel> {
        self.model.as_ref()
    }

    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// Forgets the baseline: the next healthy rows fit a new one (after a repair).
    pub fn reset(&mut self) {
        self.training.clear();
        self.model = None;
        self.scored = 0;
        self.run = 0;
    }

    /// Adds one reading; `healthy` is false while that sensor is in an
    /// episode of its own (such rows never train the baseline). Returns what
    /// the row it completes changed, if anything.
    pub fn push(
        &mut self,
        sensor: Uuid,
        ts: DateTime<Utc>,
        value: f64,
        healthy: bool,
    ) -> Option<AssetSignal> {
        let col = self.sensors.iter().position(|s| *s == sensor)?;
        let n = self.sensors.len();
        let row = self.pending.entry(ts).or_insert_with(|| vec![None; n]);
        row[col] = Some((value, healthy));
        if row.iter().any(Option::is_none) {
            while self.pending.len() > MAX_PENDING {
                self.pending.pop_first();
            }
            return None;
        }
        let row = self.pending.remove(&ts)?;
        let healthy = row.iter().all(|c| c.is_some_and(|c| c.1));
        let values: Vec<f64> = row.into_iter().map(|c| c.map_or(f64::NAN, |c| c.0)).collect();
        self.row(ts, values, healthy)
    }

    fn row(&mut self, ts: DateTime<Utc>, values: Vec<f64>, healthy: bool) -> Option<AssetSignal> {
        let Some(model) = &self.model else {
            if healthy {
                self.training.push(values);
                if self.training.len() >= self.config.train_rows {
                    self.fit();
                }
            }
            return None;
        };
        let score = model.score(&values).ok()?;
        self.scored += 1;
        if !score.anomalous && healthy && self.episode.is_none() {
            // Recent healthy rows for the scheduled refit.
            if self.training.len() == self.config.train_rows {
                self.training.remove(0);
            }
            self.training.push(values);
            if self.scored >= self.config.refit_every {
                self.fit();
            }
        }
        match &mut self.episode {
            None => {
                self.run = if score.anomalous { self.run + 1 } else { 0 };
                if self.run < self.config.open_after {
                    return None;
                }
                self.episode = Some((self.run as u32, score.q, score.t2));
                self.calm = 0;
                let contributors = score
                    .top_contributors(self.sensors.len())
                    .into_iter()
                    .filter_map(|(i, share)| self.sensors.get(i).map(|s| (*s, share)))
                    .collect();
                Some(AssetSignal::Opened {
                    ts,
                    score,
                    contributors,
                })
            }
            Some((rows, max_q, max_t2)) => {
                if score.anomalous {
                    self.calm = 0;
                    *rows += 1;
                    *max_q = max_q.max(score.q);
                    *max_t2 = max_t2.max(score.t2);
                    return None;
                }
                self.calm += 1;
                if self.calm < self.config.clear_after {
                    return None;
                }
                let (rows, max_q, max_t2) = (*rows, *max_q, *max_t2);
                self.episode = None;
                self.run = 0;
                Some(AssetSignal::Closed {
                    ts,
                    rows,
                    max_q,
                    max_t2,
                })
            }
        }
    }

    fn fit(&mut self) {
        match PcaModel::fit(&self.training, &self.config.pca) {
            Ok(m) => {
                self.model = Some(m);
                self.scored = 0;
            }
            Err(e) => {
                tracing::debug!(error = %e, "asset baseline not fitted yet");
                // Keep collecting; drop the oldest half so a bad stretch ages out.
                let half = self.training.len() / 2;
                self.training.drain(..half);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(i: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + i, 0).unwrap()
    }

    fn noise(i: i64, k: u64) -> f64 {
        let x = ((i as f64 + k as f64 * 1000.3) * 12.9898).sin() * 43758.5453;
        (x - x.floor()) * 2.0 - 1.0
    }

    /// Three sensors driven by one load factor, plus noise; sensor 2 breaks
    /// away from the relation from `break_at` on (each value stays in its
    /// own normal range).
    fn feed(m: &mut AssetMonitor, ids: &[Uuid], n: i64, break_at: i64) -> Vec<(i64, AssetSignal)> {
        let mut out = Vec::new();
        for i in 0..n {
            let load = (i as f64 / 300.0).sin();
            let vals = [
                50.0 + 5.0 * load + 0.3 * noise(i, 1),
                20.0 + 2.0 * load + 0.2 * noise(i, 2),
                if i >= break_at {
                    10.0 - 1.0 * load
                } else {
                    10.0 + 1.0 * load
                } + 0.1 * noise(i, 3),
            ];
            for (id, v) in ids.iter().zip(vals) {
                if let Some(s) = m.push(*id, t(i), v, true) {
                    out.push((i, s));
                }
            }
        }
        out
    }

    #[test]
    fn a_broken_relation_is_caught_naming_the_sensor() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let mut m = AssetMonitor::new(ids.clone(), AssetConfig::default());
        let healthy = feed(&mut m, &ids, 4000, i64::MAX);
        assert!(m.model().is_some());
        assert!(healthy.is_empty(), "healthy data raised {healthy:?}");
        let mut m = AssetMonitor::new(ids.clone(), AssetConfig::default());
        let signals = feed(&mut m, &ids, 4000, 2500);
        let opened: Vec<_> = signals
            .iter()
            .filter_map(|(i, s)| match s {
                AssetSignal::Opened { contributors, .. } => Some((*i, contributors[0].0)),
                _ => None,
            })
            .collect();
        // The broken relation is invisible where the load crosses zero, so a
        // lasting break may come and go as several episodes (one work order:
        // they share its key); each names the broken sensor first.
        assert!(!opened.is_empty(), "{signals:?}");
        assert!(opened[0].0 >= 2500 && opened[0].0 < 2600, "{opened:?}");
        assert!(
            opened.iter().all(|o| o.1 == ids[2]),
            "the broken sensor is named first: {opened:?}"
        );
    }

    #[test]
    fn incomplete_rows_are_skipped_and_reset_refits() {
        let ids: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
        let mut m = AssetMonitor::new(
            ids.clone(),
            AssetConfig {
                train_rows: 600,
                ..AssetConfig::default()
            },
        );
        for i in 0..700 {
            m.push(ids[0], t(i), 1.0 + noise(i, 1), true);
            if i % 2 == 0 {
                m.push(ids[1], t(i), 2.0 + noise(i, 2), true);
            }
        }
        assert!(m.model().is_none(), "only 350 complete rows");
        for i in 700..1200 {
            m.push(ids[0], t(i), 1.0 + noise(i, 1), true);
            m.push(ids[1], t(i), 2.0 + noise(i, 2), true);
        }
        assert!(m.model().is_some());
        m.reset();
        assert!(m.model().is_none());
    }
}
