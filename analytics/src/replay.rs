//! Detector replay: runs a detector configuration over stored history and
//! reports what it would have raised — anomalies and the work orders they
//! would ask for — without writing anything (the transaction is read-only),
//! so an engineer can try a setting before enabling it.

use chrono::{DateTime, Utc};
use maintainpro_models::{devices, tuning, Tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::detector::{severity, AnomalyKind, Detector, DetectorConfig, Signal};
use crate::worker::DETECTOR_NAME;
use crate::AnalyticsError;

/// Most readings replayed per sensor (the answer says when it stopped early).
pub const MAX_POINTS: i64 = 500_000;
/// Readings before `from` used to warm the detector up.
const WARMUP_POINTS: i64 = 1_000;

/// What to replay, and with which setting.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayRequest {
    /// Sensors to replay (at most 50).
    pub sensor_ids: Vec<Uuid>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// |z| needed to open an episode (default: the live setting).
    pub z_threshold: Option<f64>,
    /// Anomaly probability needed to open an episode (default: the live setting).
    pub probability_threshold: Option<f64>,
    /// Per-sensor scale of both thresholds (default: each sensor's tuned
    /// scale, as raised by false-alarm verdicts).
    pub threshold_scale: Option<f64>,
}

/// One anomaly the setting would have raised.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedAnomaly {
    /// high, low, out_of_range or stuck.
    pub kind: String,
    pub started_at: DateTime<Utc>,
    /// None while the episode was still open at `to`.
    pub ended_at: Option<DateTime<Utc>>,
    pub points: u32,
    pub peak_value: f64,
    pub score: f64,
    pub probability: f64,
    pub severity: String,
    pub baseline: Option<f64>,
    /// The kind of work order it would ask for (corrective, or inspection for sensor faults).
    pub work_order_kind: String,
}

/// One sensor's replay.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SensorReplay {
    pub sensor_id: Uuid,
    pub name: String,
    pub points: usize,
    /// True when the range held more than the replay limit.
    pub truncated: bool,
    pub threshold_scale: f64,
    pub anomalies: Vec<ReplayedAnomaly>,
}

/// The replay's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub z_threshold: f64,
    pub probability_threshold: f64,
    /// Anomalies over all sensors.
    pub anomalies: usize,
    pub sensors: Vec<SensorReplay>,
}

/// Replays one series (pure): `warmup` primes the detector, `series` is scored.
pub fn replay_series(
    config: DetectorConfig,
    limits: (Option<f64>, Option<f64>),
    threshold_scale: f64,
    warmup: &[(DateTime<Utc>, f64)],
    series: &[(DateTime<Utc>, f64)],
) -> Vec<ReplayedAnomaly> {
    let mut d = Detector::new(config, limits.0, limits.1);
    d.set_threshold_scale(threshold_scale);
    for (t, v) in warmup {
        d.prime(*t, *v);
    }
    d.clear_episode();
    let mut out: Vec<ReplayedAnomaly> = Vec::new();
    for (t, v) in series {
        match d.observe(*t, *v) {
            Some(Signal::Opened {
                kind,
                ts,
                value,
                score,
                probability,
                baseline,
                ..
            }) => out.push(ReplayedAnomaly {
                kind: kind.as_str().into(),
                started_at: ts,
                ended_at: None,
                points: 1,
                peak_value: value,
                score,
                probability,
                severity: severity(kind, score).into(),
                baseline,
                work_order_kind: if kind.is_sensor_health() {
                    "inspection"
                } else {
                    "corrective"
                }
                .into(),
            }),
            Some(Signal::Closed {
                ts,
                points,
                peak_value,
                max_score,
            }) => {
                if let Some(a) = out.last_mut().filter(|a| a.ended_at.is_none()) {
                    a.ended_at = Some(ts);
                    a.points = points;
                    a.peak_value = peak_value;
                    a.score = max_score;
                    let kind = AnomalyKind::parse(&a.kind).unwrap_or(AnomalyKind::High);
                    a.severity = severity(kind, max_score).into();
                }
            }
            None => {}
        }
    }
    out
}

/// Replays stored history in a read-only transaction (the caller's, with the
/// tenant set): nothing is written, whatever the detector finds.
pub async fn replay(
    tx: &mut Tx,
    base: DetectorConfig,
    req: &ReplayRequest,
) -> Result<ReplayReport, AnalyticsError> {
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut **tx)
        .await?;
    let mut config = base;
    if let Some(z) = req.z_threshold {
        config.threshold = z;
    }
    if let Some(p) = req.probability_threshold {
        config.stream.threshold = p;
    }
    let mut sensors = Vec::with_capacity(req.sensor_ids.len());
    for id in &req.sensor_ids {
        let sensor = devices::get_sensor(tx, *id).await?;
        let scale = match req.threshold_scale {
            Some(s) => s,
            None => tuning::threshold_scale(tx, *id, DETECTOR_NAME).await?,
        };
        let warmup: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
            "SELECT ts, value FROM (SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts < $2
                                    ORDER BY ts DESC LIMIT $3) h ORDER BY ts",
        )
        .bind(id)
        .bind(req.from)
        .bind(WARMUP_POINTS)
        .fetch_all(&mut **tx)
        .await?;
        let series: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
            "SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4",
        )
        .bind(id)
        .bind(req.from)
        .bind(req.to)
        .bind(MAX_POINTS + 1)
        .fetch_all(&mut **tx)
        .await?;
        let truncated = series.len() as i64 > MAX_POINTS;
        let series = &series[..series.len().min(MAX_POINTS as usize)];
        let anomalies = replay_series(
            config,
            (sensor.min_value, sensor.max_value),
            scale,
            &warmup,
            series,
        );
        sensors.push(SensorReplay {
            sensor_id: sensor.id,
            name: sensor.name,
            points: series.len(),
            truncated,
            threshold_scale: scale,
            anomalies,
        });
    }
    Ok(ReplayReport {
        from: req.from,
        to: req.to,
        z_threshold: config.threshold,
        probability_threshold: config.stream.threshold,
        anomalies: sensors.iter().map(|s| s.anomalies.len()).sum(),
        sensors,
    })
}
