//! The Numenta Anomaly Benchmark harness: reading NAB-format corpora, running
//! a streaming detector over them with no look-ahead, writing NAB results
//! files, and scoring them with a port of NAB's scorer ([`scorer`]).
//!
//! A corpus directory holds `<category>/<name>.csv` (`timestamp,value`) and
//! `windows.json` (`{"<category>/<name>.csv": [["start", "end"], …]}`); NAB's
//! own `data/` + `labels/combined_windows.json` layout is accepted too.

pub mod scorer;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

pub use scorer::{CorpusScore, Profile, ProfileScore, PROFILES};

/// What can go wrong reading or writing a corpus.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{0}")]
    Corpus(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NabError + '_ {
    move |source| NabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One data file of the corpus.
#[derive(Debug, Clone)]
pub struct NabFile {
    /// `<category>/<name>.csv`, as in the labels.
    pub key: String,
    pub timestamps: Vec<DateTime<Utc>>,
    pub values: Vec<f64>,
    /// Labelled anomaly windows as inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

impl NabFile {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// 1 for rows inside a labelled window, else 0 (the `label` column).
    pub fn labels(&self) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        for &(a, b) in &self.windows {
            for l in &mut out[a..=b] {
                *l = 1;
            }
        }
        out
    }
}

/// A labelled corpus, files in key order.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: Vec<NabFile>,
}

impl Corpus {
    /// Loads every labelled file of `dir`.
    pub fn load(dir: &Path) -> Result<Self, NabError> {
        let (data_dir, labels_path) = if dir.join("windows.json").is_file() {
            (dir.to_path_buf(), dir.join("windows.json"))
        } else if dir.join("labels/combined_windows.json").is_file() {
            (dir.join("data"), dir.join("labels/combined_windows.json"))
        } else {
            return Err(NabError::Corpus(format!(
                "{}: no windows.json (nor NAB's labels/combined_windows.json): is this a NAB corpus?",
                dir.display()
            )));
        };
        let text = fs::read_to_string(&labels_path).map_err(io_err(&labels_path))?;
        let labels: BTreeMap<String, Vec<(String, String)>> =
            serde_json::from_str(&text).map_err(|e| NabError::Format {
                path: labels_path.clone(),
                reason: e.to_string(),
            })?;
        let mut files = Vec::with_capacity(labels.len());
        for (key, windows) in labels {
            let path = data_dir.join(&key);
            let (timestamps, values) = read_series(&path, "value")?;
            let windows = windows
                .iter()
                .map(|(a, b)| {
                    let (a, b) = (parse_ts(a), parse_ts(b));
                    let (Some(a), Some(b)) = (a, b) else {
                        return Err(NabError::Format {
                            path: labels_path.clone(),
                            reason: format!("{key}: unreadable window timestamp"),
                        });
                    };
                    let start = timestamps.partition_point(|t| *t < a);
                    let end = timestamps.partition_point(|t| *t <= b);
                    if start >= end {
                        return Err(NabError::Format {
                            path: labels_path.clone(),
                            reason: format!("{key}: window {a}..{b} holds no rows"),
                        });
                    }
                    Ok((start, end - 1))
                })
                .collect::<Result<Vec<_>, _>>()?;
            files.push(NabFile {
                key,
                timestamps,
                values,
                windows,
            });
        }
        if files.is_empty() {
            return Err(NabError::Corpus(format!(
                "{}: the labels list no files",
                labels_path.display()
            )));
        }
        Ok(Self { files })
    }

    pub fn window_count(&self) -> usize {
        self.files.iter().map(|f| f.windows.len()).sum()
    }
}

/// Parses NAB's timestamps (`2014-04-01 00:00:00`, optionally with fractional seconds).
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Reads a `timestamp,<column>,…` CSV (gzip-compressed when the name ends in
/// `.gz`) and returns the timestamps and that column.
pub fn read_series(path: &Path, column: &str) -> Result<(Vec<DateTime<Utc>>, Vec<f64>), NabError> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let bad = |reason: String| NabError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = BufReader::new(reader).lines();
    let header = lines
        .next()
        .ok_or_else(|| bad("empty file".into()))?
        .map_err(io_err(path))?;
    let col = header
        .split(',')
        .position(|h| h.trim() == column)
        .ok_or_else(|| bad(format!("no `{column}` column in header `{header}`")))?;
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let line = line.map_err(io_err(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let t = fields
            .first()
            .and_then(|f| parse_ts(f))
            .ok_or_else(|| bad(format!("line {}: unreadable timestamp", n + 2)))?;
        let v = fields
            .get(col)
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(format!("line {}: unreadable {column}", n + 2)))?;
        ts.push(t);
        vs.push(v);
    }
    Ok((ts, vs))
}

/// Runs a fresh detector (from `make`) over every file, one row at a time in
/// order, and returns each file's scores. The detector sees only the rows so
/// far: nothing about a file's length, range or labels.
pub fn run_detector<D>(
    corpus: &Corpus,
    mut make: impl FnMut() -> D,
    mut step: impl FnMut(&mut D, DateTime<Utc>, f64) -> f64,
) -> Vec<Vec<f64>> {
    corpus
        .files
        .iter()
        .map(|f| {
            let mut d = make();
            f.timestamps
                .iter()
                .zip(&f.values)
                .map(|(t, v)| step(&mut d, *t, *v).clamp(0.0, 1.0))
                .collect()
        })
        .collect()
}

/// Writes NAB results files: `<out>/<detector>/<category>/<detector>_<name>.csv`
/// with `timestamp,value,anomaly_score,label`.
pub fn write_results(
    out: &Path,
    detector: &str,
    corpus: &Corpus,
    scores: &[Vec<f64>],
) -> Result<usize, NabError> {
    let mut written = 0;
    for (file, scores) in corpus.files.iter().zip(scores) {
        let (category, name) = file.key.rsplit_once('/').unwrap_or(("", file.key.as_str()));
        let dir = out.join(detector).join(category);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(format!("{detector}_{name}"));
        let mut w = std::io::BufWriter::new(fs::File::create(&path).map_err(io_err(&path))?);
        let labels = file.labels();
        let mut body = String::from("timestamp,value,anomaly_score,label\n");
        for i in 0..file.len() {
            body.push_str(&format!(
                "{},{},{},{}\n",
                file.timestamps[i].format("%Y-%m-%d %H:%M:%S"),
                file.values[i],
                scores[i],
                labels[i]
            ));
        }
        w.write_all(body.as_bytes()).map_err(io_err(&path))?;
        w.flush().map_err(io_err(&path))?;
        written += 1;
    }
    Ok(written)
}

/// Reads published detector output laid out as `<dir>/<key>.gz` or
/// `<dir>/<key>` (column `anomaly_score`), in corpus order.
pub fn read_scores(dir: &Path, corpus: &Corpus) -> Result<Vec<Vec<f64>>, NabError> {
    corpus
        .files
        .iter()
        .map(|f| {
            let gz = dir.join(format!("{}.gz", f.key));
            let path = if gz.is_file() { gz } else { dir.join(&f.key) };
            let (ts, scores) = read_series(&path, "anomaly_score")?;
            if ts != f.timestamps {
                return Err(NabError::Format {
                    path,
                    reason: format!("rows do not match the data file {}", f.key),
                });
            }
            Ok(scores)
        })
        .collect()
}

/// One profile's result of the streaming detector on a corpus.
#[derive(Debug, Clone)]
pub struct StreamEval {
    /// The score at the profile's chosen threshold (`stream::THRESHOLD_*`).
    pub chosen: ProfileScore,
    /// The detector's output with that threshold (refractory periods depend on it).
    pub scores: Vec<Vec<f64>>,
}

/// The thresholds chosen on nab-dev, per profile, in [`PROFILES`] order.
pub const STREAM_THRESHOLDS: [f64; 3] = [
    crate::stream::THRESHOLD_STANDARD,
    crate::stream::THRESHOLD_LOW_FP,
    crate::stream::THRESHOLD_LOW_FN,
];

/// Runs the streaming detector over the corpus once per profile, with that
/// profile's threshold, and scores it.
pub fn evaluate_stream(corpus: &Corpus, base: crate::stream::StreamConfig) -> Vec<StreamEval> {
    use crate::stream::{StreamConfig, StreamDetector};
    PROFILES
        .iter()
        .zip(STREAM_THRESHOLDS)
        .map(|(profile, threshold)| {
            let config = StreamConfig { threshold, ..base };
            let scores = run_detector(corpus, || StreamDetector::new(config), |d, t, v| d.update(t, v));
            StreamEval {
                chosen: scorer::score_corpus(corpus, &scores, profile, threshold),
                scores,
            }
        })
        .collect()
}
