//! The analytics worker: reads each sensor's new readings in order (from a
//! persisted cursor), scores them, and turns episodes into anomalies and
//! auto work orders — all of one organization's changes in one transaction
//! with the cursor, so a crash never skips or double-counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use maintainpro_models::anomalies::{self, NewAnomaly};
use maintainpro_models::devices::{self, SensorContext};
use maintainpro_models::work_orders::{self, AutoRaise, Kind};
use maintainpro_models::{auto_policy, tuning, Db, Tenant, Tx};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::assets::{AssetConfig, AssetMonitor, AssetSignal};
use crate::detector::{severity, AnomalyKind, Detector, DetectorConfig, Signal};
use crate::predict::{predict_crossing, PredictConfig, Prediction, Side};
use crate::rounds::Rounds;
use crate::AnalyticsError;

pub const DETECTOR_NAME: &str = "robust_z";

#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    /// How often to look for new readings.
    pub interval: Duration,
    /// Readings per sensor per pass at most (keeps passes short on backlog).
    pub max_points_per_sensor: i64,
    pub detector: DetectorConfig,
    /// A sensor is silent (a "no data" inspection) when the organization's
    /// newest reading is this many of its usual sampling intervals past its
    /// own last one (and at least `min_silence`).
    pub silence_intervals: f64,
    pub min_silence: Duration,
    /// Cooldown, flapping and parent-silencing rules for auto work orders.
    pub policy: work_orders::AutoPolicy,
    /// Failure prediction for sensors with limits: how often (in data time)
    /// the trend is fitted, over each of these spans of recent history
    /// (shortest first: a recent change of slope shows in the short fit;
    /// the longest span read is the last).
    pub predict_every: chrono::Duration,
    pub predict_history: Vec<chrono::Duration>,
    pub predict: PredictConfig,
    /// The per-asset multivariate monitor.
    pub assets: AssetConfig,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_points_per_sensor: 5_000,
            detector: DetectorConfig::default(),
            silence_intervals: 10.0,
            min_silence: Duration::from_secs(30),
            policy: work_orders::AutoPolicy::default(),
            predict_every: chrono::Duration::minutes(1),
            predict_history: vec![
                chrono::Duration::minutes(15),
                chrono::Duration::hours(1),
                chrono::Duration::hours(6),
            ],
            predict: PredictConfig::default(),
            assets: AssetConfig::default(),
        }
    }
}

/// Counters for logs and metrics.
#[derive(Debug, Default)]
pub struct AnalyticsStats {
    pub points: AtomicU64,
    pub anomalies_opened: AtomicU64,
    pub work_orders_created: AtomicU64,
    pub work_orders_updated: AtomicU64,
    pub passes: AtomicU64,
}

struct SensorState {
    ctx: SensorContext,
    detector: Detector,
    cursor: Option<DateTime<Utc>>,
    open_anomaly: Option<Uuid>,
    /// Smoothed sampling interval (seconds), learned from arrivals.
    interval: Option<f64>,
    /// The open "no data" anomaly, while the sensor is silent.
    silent: Option<Uuid>,
    /// When the trend was last fitted (data time), and whether it then
    /// predicted a crossing (raised once until the prediction lapses).
    predicted_at: Option<DateTime<Utc>>,
    predicting: bool,
}

/// One organization's detectors.
struct OrgState {
    sensors: HashMap<Uuid, SensorState>,
    /// Multivariate monitors of assets with two sensors or more.
    assets: HashMap<Uuid, AssetState>,
    loaded_at: Instant,
}

struct AssetState {
    monitor: AssetMonitor,
    /// The open multivariate anomaly.
    open: Option<Uuid>,
}

/// The multivariate detector's name on anomalies.
pub const MULTIVARIATE_DETECTOR: &str = "pca_t2q";

const SENSOR_REFRESH: Duration = Duration::from_secs(15);
/// Readings replayed into a detector after a restart (its warm-up).
const PRIME_POINTS: i64 = 1_000;

/// Runs until `shutdown` is cancelled.
pub async fn run(db: Db, config: AnalyticsConfig, stats: Arc<AnalyticsStats>, shutdown: CancellationToken) {
    let mut orgs: HashMap<Uuid, OrgState> = HashMap::new();
    let mut rounds = Rounds::new(db.clone(), config.interval, shutdown.clone(), "analytics");
    while let Some(ids) = rounds.next().await {
        for org in ids {
            if shutdown.is_cancelled() {
                break;
            }
            if let Err(e) = pass(&db, &config, &stats, org, &mut orgs).await {
                // Drop this organization's in-memory state: it is rebuilt from
                // the committed cursors next time.
                orgs.remove(&org);
                tracing::warn!(error = %e, organization = %org, "analytics pass failed");
            }
        }
        stats.passes.fetch_add(1, Ordering::Relaxed);
    }
}

/// One pass over one organization's new readings.
async fn pass(
    db: &Db,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    org: Uuid,
    orgs: &mut HashMap<Uuid, OrgState>,
) -> Result<(), AnalyticsError> {
    let tenant = Tenant::system(org, "analytics");
    let mut tx = db.tenant_for(&tenant).await?;
    let stale = orgs
        .get(&org)
        .is_none_or(|s| s.loaded_at.elapsed() > SENSOR_REFRESH);
    if stale {
        let (previous, previous_assets) = match orgs.remove(&org) {
            Some(s) => (s.sensors, s.assets),
            None => {
                // A fresh start: multivariate episodes left open are over
                // (the monitors re-learn before they score again).
                for a in anomalies::list_open(&mut tx).await? {
                    if a.detector == MULTIVARIATE_DETECTOR {
                        anomalies::close(&mut tx, &tenant, a.id, Utc::now()).await?;
                    }
                }
                Default::default()
            }
        };
        let sensors = load(&mut tx, config, previous).await?;
        let assets = asset_monitors(config, &sensors, previous_assets);
        orgs.insert(
            org,
            OrgState {
                sensors,
                assets,
                loaded_at: Instant::now(),
            },
        );
    }
    let Some(state) = orgs.get_mut(&org) else {
        return Ok(());
    };
    if state.sensors.is_empty() {
        return Ok(());
    }
    refit(&mut tx, config, state).await?;

    // No cursor yet (NULL): start from the sensor's first reading.
    let (ids, cursors): (Vec<Uuid>, Vec<Option<DateTime<Utc>>>) =
        state.sensors.values().map(|s| (s.ctx.id, s.cursor)).unzip();
    let rows: Vec<(Uuid, DateTime<Utc>, f64)> = sqlx::query_as(
        "SELECT r.sensor_id, r.ts, r.value
         FROM unnest($1::uuid[], $2::timestamptz[]) AS c(sensor_id, last_ts)
         CROSS JOIN LATERAL (
             SELECT sensor_id, ts, value FROM readings r
             WHERE r.sensor_id = c.sensor_id AND (c.last_ts IS NULL OR r.ts > c.last_ts)
             ORDER BY r.ts LIMIT $3
         ) r
         ORDER BY r.sensor_id, r.ts",
    )
    .bind(&ids)
    .bind(&cursors)
    .bind(config.max_points_per_sensor)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(());
    }

    let mut moved: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for (sensor_id, ts, value) in &rows {
        let Some(s) = state.sensors.get_mut(sensor_id) else {
            continue;
        };
        moved.insert(*sensor_id, *ts);
        if let Some(prev) = s.cursor {
            let gap = (*ts - prev).as_seconds_f64().max(0.0);
            // A gap seen only now (a backlog, or a pass that spanned it):
            // the silence is reported when it ended.
            if let (Some(interval), None) = (s.interval, s.silent) {
                if gap > silence_allowed(config, interval) {
                    silence(&mut tx, &tenant, config, stats, s, *ts, gap / interval.max(1e-3)).await?;
                }
            }
            // The interval learns from ordinary arrivals only.
            if s.interval.is_none_or(|i| gap <= 3.0 * i) {
                s.interval = Some(s.interval.map_or(gap, |i| 0.9 * i + 0.1 * gap));
            }
        }
        s.cursor = Some(*ts);
        if let Some(id) = s.silent.take() {
            anomalies::close(&mut tx, &tenant, id, *ts).await?;
        }
        if let Some(signal) = s.detector.observe(*ts, *value) {
            handle(&mut tx, &tenant, config, stats, s, signal).await?;
        }
        let healthy = !s.detector.in_episode();
        if let Some(asset) = state.assets.get_mut(&s.ctx.equipment_id) {
            if let Some(signal) = asset.monitor.push(*sensor_id, *ts, *value, healthy) {
                handle_asset(&mut tx, &tenant, config, stats, &state.sensors, asset, signal).await?;
            }
        }
    }
    // Sensors that stopped while the rest of the organization goes on.
    if let Some(newest) = rows.iter().map(|r| r.1).max() {
        for s in state.sensors.values_mut() {
            let (Some(last), Some(interval), None) = (s.cursor, s.interval, s.silent) else {
                continue;
            };
            let silent_for = (newest - last).as_seconds_f64();
            if silent_for > silence_allowed(config, interval) {
                silence(
                    &mut tx,
                    &tenant,
                    config,
                    stats,
                    s,
                    newest,
                    silent_for / interval.max(1e-3),
                )
                .await?;
            }
        }
    }
    for (id, ts) in &moved {
        if let Some(s) = state.sensors.get_mut(id) {
            predict(&mut tx, &tenant, config, stats, s, *ts).await?;
        }
    }
    let (ids, tss): (Vec<Uuid>, Vec<DateTime<Utc>>) = moved.into_iter().unzip();
    sqlx::query(
        "INSERT INTO analytics_cursors (organization_id, sensor_id, last_ts)
         SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[])
         ON CONFLICT (sensor_id) DO UPDATE SET last_ts = excluded.last_ts, updated_at = now()",
    )
    .bind(org)
    .bind(&ids)
    .bind(&tss)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    stats.points.fetch_add(rows.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Loads sensors, their cursors and open episodes; warms new detectors on
/// the readings just before their cursor. Keeps state of known sensors.
async fn load(
    tx: &mut Tx,
    config: &AnalyticsConfig,
    mut previous: HashMap<Uuid, SensorState>,
) -> Result<HashMap<Uuid, SensorState>, AnalyticsError> {
    let contexts = devices::sensor_contexts(tx).await?;
    let cursors: HashMap<Uuid, DateTime<Utc>> =
        sqlx::query_as::<_, (Uuid, DateTime<Utc>)>("SELECT sensor_id, last_ts FROM analytics_cursors")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let open: HashMap<Uuid, anomalies::Anomaly> = anomalies::list_open(tx)
        .await?
        .into_iter()
        .filter(|a| a.detector == DETECTOR_NAME)
        .map(|a| (a.sensor_id, a))
        .collect();
    let scales = tuning::all(tx).await?;
    let scale_of = |id: Uuid| {
        scales
            .get(&(id, DETECTOR_NAME.to_string()))
            .copied()
            .unwrap_or(1.0)
    };
    let mut out = HashMap::new();
    for ctx in contexts {
        if let Some(mut s) = previous.remove(&ctx.id) {
            s.detector.set_threshold_scale(scale_of(ctx.id));
            s.ctx = ctx;
            out.insert(s.ctx.id, s);
            continue;
        }
        let mut detector = Detector::new(config.detector, ctx.min_value, ctx.max_value);
        detector.set_threshold_scale(scale_of(ctx.id));
        let cursor = cursors.get(&ctx.id).copied();
        if let Some(c) = cursor {
            let history: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
                "SELECT ts, value FROM (SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts <= $2
                                        ORDER BY ts DESC LIMIT $3) h ORDER BY ts",
            )
            .bind(ctx.id)
            .bind(c)
            .bind(PRIME_POINTS)
            .fetch_all(&mut **tx)
            .await?;
            for (ts, v) in history {
                detector.prime(ts, v);
            }
            detector.clear_episode();
        }
        let mut silent = None;
        let open_anomaly = match open.get(&ctx.id) {
            Some(a) if a.kind == AnomalyKind::NoData.as_str() => {
                silent = Some(a.id);
                None
            }
            Some(a) => {
                let kind = AnomalyKind::parse(&a.kind).unwrap_or(AnomalyKind::High);
                detector.resume_episode(kind, a.points.max(1) as u32, a.peak_value, a.score);
                Some(a.id)
            }
            None => None,
        };
        out.insert(
            ctx.id,
            SensorState {
                ctx,
                detector,
                cursor,
                open_anomaly,
                interval: None,
                silent,
                predicted_at: None,
                predicting: false,
            },
        );
    }
    Ok(out)
}

/// Applies one detector signal: open an anomaly and raise (or add to) the
/// auto work order, or close the episode.
async fn handle(
    tx: &mut Tx,
    tenant: &Tenant,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    s: &mut SensorState,
    signal: Signal,
) -> Result<(), AnalyticsError> {
    match signal {
        Signal::Opened {
            kind,
            ts,
            value,
            score,
            probability,
            baseline,
            scale,
        } => {
            let sev = severity(kind, score);
            let anomaly = anomalies::open(
                tx,
                tenant,
                NewAnomaly {
                    sensor_id: s.ctx.id,
                    equipment_id: s.ctx.equipment_id,
                    kind: kind.as_str().to_string(),
                    detector: DETECTOR_NAME.to_string(),
                    severity: sev.to_string(),
                    score,
                    started_at: ts,
                    peak_value: value,
                    baseline,
                    details: serde_json::json!({
                        "value": value, "baseline": baseline, "scale": scale, "z": score, "probability": probability,
                        "unit": s.ctx.unit, "metric": s.ctx.metric,
                    }),
                },
            )
            .await?;
            stats.anomalies_opened.fetch_add(1, Ordering::Relaxed);
            s.open_anomaly = Some(anomaly.id);
            let evidence = evidence(tx, s, &anomaly, kind).await?;
            let raise = auto_raise(&s.ctx, &anomaly, kind, evidence);
            raise_counted(tx, tenant, config, stats, raise, &s.ctx.name, kind.as_str()).await?;
        }
        Signal::Closed {
            ts,
            points,
            peak_value,
            max_score,
        } => {
            if let Some(id) = s.open_anomaly.take() {
                anomalies::extend(tx, id, points as i32, max_score, peak_value).await?;
                anomalies::close(tx, tenant, id, ts).await?;
            }
        }
    }
    Ok(())
}

/// The work order an anomaly asks for: one per (equipment, sensor) for
/// process anomalies, a separate inspection for instrumentation faults.
fn auto_raise(
    ctx: &SensorContext,
    anomaly: &anomalies::Anomaly,
    kind: AnomalyKind,
    evidence: serde_json::Value,
) -> AutoRaise {
    let what = match kind {
        AnomalyKind::High => "abnormally high",
        AnomalyKind::Low => "abnormally low",
        AnomalyKind::OutOfRange => "outside its limits",
        AnomalyKind::Stuck => "stuck (sensor fault suspected)",
        AnomalyKind::Drift => "drifting away from its usual level",
        AnomalyKind::NoData => "silent: no data (sensor or link fault suspected)",
    };
    let baseline = anomaly
        .baseline
        .map(|b| format!(" against a baseline of {b:.2} {}", ctx.unit))
        .unwrap_or_default();
    let (wo_kind, failure_mode) = if kind.is_sensor_health() {
        (Kind::Inspection, format!("sensor_health:{}", ctx.id))
    } else {
        (Kind::Corrective, format!("process:{}", ctx.id))
    };
    AutoRaise {
        anomaly_id: anomaly.id,
        equipment_id: ctx.equipment_id,
        sensor_id: ctx.id,
        failure_mode,
        severity: anomaly.severity.clone(),
        evidence,
        title: format!("{}: {} {what}", ctx.equipment_name, ctx.name),
        description: format!(
            "Raised automatically by analytics ({DETECTOR_NAME}). {} read {:.2} {} at {}{baseline} (score {:.1}, severity {}).",
            ctx.name, anomaly.peak_value, ctx.unit, anomaly.started_at.to_rfc3339(), anomaly.score, anomaly.severity
        ),
        kind: wo_kind,
    }
}

/// One monitor per asset with two sensors or more, kept while its sensor
/// set is unchanged.
fn asset_monitors(
    config: &AnalyticsConfig,
    sensors: &HashMap<Uuid, SensorState>,
    mut previous: HashMap<Uuid, AssetState>,
) -> HashMap<Uuid, AssetState> {
    let mut by_asset: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for s in sensors.values() {
        by_asset.entry(s.ctx.equipment_id).or_default().push(s.ctx.id);
    }
    by_asset
        .into_iter()
        .filter(|(_, ids)| ids.len() >= 2)
        .map(|(asset, mut ids)| {
            ids.sort();
            let state = match previous.remove(&asset) {
                Some(p) if p.monitor.sensors() == ids.as_slice() => p,
                _ => AssetState {
                    monitor: AssetMonitor::new(ids, config.assets.clone()),
                    open: None,
                },
            };
            (asset, state)
        })
        .collect()
}

/// Applies a multivariate signal: the anomaly is recorded on the sensor that
/// contributes most, and raises (or joins) that sensor's process work order —
/// a broken relation between sensors and that sensor's own alarm are one
/// problem, one work order.
async fn handle_asset(
    tx: &mut Tx,
    tenant: &Tenant,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    sensors: &HashMap<Uuid, SensorState>,
    asset: &mut AssetState,
    signal: AssetSignal,
) -> Result<(), AnalyticsError> {
    match signal {
        AssetSignal::Opened {
            ts,
            score,
            contributors,
        } => {
            let Some(top) = contributors.first().and_then(|(id, _)| sensors.get(id)) else {
                return Ok(());
            };
            let ctx = &top.ctx;
            let ratio = (score.t2 / score.t2_limit).max(score.q / score.q_limit);
            let named: Vec<serde_json::Value> = contributors
                .iter()
                .filter_map(|(id, share)| {
                    sensors
                        .get(id)
                        .map(|s| serde_json::json!({"sensorId": id, "sensor": s.ctx.name, "share": share}))
                })
                .collect();
            let details = serde_json::json!({
                "t2": score.t2, "q": score.q, "t2Limit": score.t2_limit, "qLimit": score.q_limit,
                "contributingSensors": named,
            });
            let value = top.detector.last_value().unwrap_or(0.0);
            let anomaly = anomalies::open(
                tx,
                tenant,
                NewAnomaly {
                    sensor_id: ctx.id,
                    equipment_id: ctx.equipment_id,
                    kind: "multivariate".to_string(),
                    detector: MULTIVARIATE_DETECTOR.to_string(),
                    severity: if ratio >= 4.0 { "high" } else { "medium" }.to_string(),
                    score: ratio,
                    started_at: ts,
                    peak_value: value,
                    baseline: None,
                    details: details.clone(),
                },
            )
            .await?;
            stats.anomalies_opened.fetch_add(1, Ordering::Relaxed);
            asset.open = Some(anomaly.id);
            let names: Vec<&str> = contributors
                .iter()
                .take(3)
                .filter_map(|(id, _)| sensors.get(id).map(|s| s.ctx.name.as_str()))
                .collect();
            let raise = AutoRaise {
                anomaly_id: anomaly.id,
                equipment_id: ctx.equipment_id,
                sensor_id: ctx.id,
                failure_mode: format!("process:{}", ctx.id),
                severity: anomaly.severity.clone(),
                evidence: serde_json::json!({"detector": MULTIVARIATE_DETECTOR, "startedAt": ts, "scores": details}),
                title: format!("{}: sensors out of their usual relation ({})", ctx.equipment_name, names.join(", ")),
                description: format!(
                    "Raised automatically by analytics (PCA T²/Q over the asset's sensors). T² {:.1} (limit {:.1}), Q {:.2} (limit {:.2}); contributing most: {}.",
                    score.t2, score.t2_limit, score.q, score.q_limit, names.join(", ")
                ),
                kind: Kind::Corrective,
            };
            raise_counted(tx, tenant, config, stats, raise, &ctx.name, "multivariate").await?;
        }
        AssetSignal::Closed { ts, rows, .. } => {
            if let Some(id) = asset.open.take() {
                sqlx::query("UPDATE anomalies SET points = $2 WHERE id = $1")
                    .bind(id)
                    .bind(rows as i32)
                    .execute(&mut **tx)
                    .await?;
                anomalies::close(tx, tenant, id, ts).await?;
            }
        }
    }
    Ok(())
}

/// Fits the trend of a sensor with limits (at most every `predict_every`)
/// and, when it predicts a crossing within the horizon, raises a preventive
/// work order — on the same key as the sensor's process anomalies, so a
/// prediction and the anomaly that may follow are one work order.
async fn predict(
    tx: &mut Tx,
    tenant: &Tenant,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    s: &mut SensorState,
    now: DateTime<Utc>,
) -> Result<(), AnalyticsError> {
    if s.ctx.min_value.is_none() && s.ctx.max_value.is_none() {
        return Ok(());
    }
    if s.predicted_at.is_some_and(|t| now - t < config.predict_every) {
        return Ok(());
    }
    s.predicted_at = Some(now);
    let Some(longest) = config.predict_history.iter().max().copied() else {
        return Ok(());
    };
    let series: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
        "SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts > $2 AND ts <= $3 ORDER BY ts",
    )
    .bind(s.ctx.id)
    .bind(now - longest)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let mut prediction = None;
    for span in &config.predict_history {
        let from = series.partition_point(|(t, _)| *t <= now - *span);
        match predict_crossing(
            &series[from..],
            s.ctx.min_value,
            s.ctx.max_value,
            now,
            &config.predict,
        ) {
            Ok(Some(p)) => {
                prediction = Some(p);
                break;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(sensor = %s.ctx.name, error = %e, "no trend fit"),
        }
    }
    let Some(p) = prediction else {
        s.predicting = false;
        return Ok(());
    };
    if s.predicting {
        return Ok(());
    }
    s.predicting = true;
    let side = match p.side {
        Side::High => "high",
        Side::Low => "low",
    };
    let sev = if p.earliest - now <= chrono::Duration::days(1) {
        "high"
    } else {
        "medium"
    };
    let details = serde_json::to_value(&p).unwrap_or_default();
    let anomaly = anomalies::open(
        tx,
        tenant,
        NewAnomaly {
            sensor_id: s.ctx.id,
            equipment_id: s.ctx.equipment_id,
            kind: format!("predicted_{side}"),
            detector: "trend_regression".to_string(),
            severity: sev.to_string(),
            score: p.slope_per_hour.abs(),
            started_at: now,
            peak_value: p.smoothed_last,
            baseline: None,
            details: details.clone(),
        },
    )
    .await?;
    anomalies::close(tx, tenant, anomaly.id, now).await?;
    stats.anomalies_opened.fetch_add(1, Ordering::Relaxed);
    let raise = prediction_raise(&s.ctx, &anomaly, &p, details);
    raise_counted(
        tx,
        tenant,
        config,
        stats,
        raise,
        &s.ctx.name,
        &format!("predicted_{side}"),
    )
    .await
}

/// Raises (or adds to, or is refused by the policy) an auto work order, and
/// counts and logs what happened — for every detector alike.
async fn raise_counted(
    tx: &mut Tx,
    tenant: &Tenant,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    raise: AutoRaise,
    sensor: &str,
    kind: &str,
) -> Result<(), AnalyticsError> {
    let equipment = raise.equipment_id;
    match work_orders::raise_auto(tx, tenant, raise, &config.policy).await? {
        work_orders::Raised::Created(wo) => {
            stats.work_orders_created.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                work_order = %wo.code, work_order_kind = %wo.kind, %equipment, sensor, kind,
                "auto work order raised"
            );
        }
        work_orders::Raised::Added(wo) => {
            stats.work_orders_updated.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                work_order = %wo.code, occurrences = wo.occurrence_count, sensor, kind,
                "anomaly added to open work order"
            );
        }
        work_orders::Raised::Suppressed { reason } => {
            tracing::info!(
                sensor,
                kind,
                reason = reason.as_str(),
                "auto work order suppressed"
            );
        }
    }
    Ok(())
}

fn prediction_raise(
    ctx: &SensorContext,
    anomaly: &anomalies::Anomaly,
    p: &Prediction,
    details: serde_json::Value,
) -> AutoRaise {
    let latest = p
        .latest
        .map_or("not before the horizon".to_string(), |t| t.to_rfc3339());
    AutoRaise {
        anomaly_id: anomaly.id,
        equipment_id: ctx.equipment_id,
        sensor_id: ctx.id,
        failure_mode: format!("process:{}", ctx.id),
        severity: anomaly.severity.clone(),
        evidence: serde_json::json!({
            "detector": "trend_regression", "sensorId": ctx.id, "sensor": ctx.name, "unit": ctx.unit,
            "prediction": details,
        }),
        title: format!("{}: {} predicted to reach its limit", ctx.equipment_name, ctx.name),
        description: format!(
            "Raised automatically by analytics (trend regression). {} trends at {:+.3} {}/h from {:.2} toward its limit {:.2}: crossing expected {} (band {} .. {}, R² {:.2}).",
            ctx.name, p.slope_per_hour, ctx.unit, p.smoothed_last, p.limit, p.predicted_at.to_rfc3339(), p.earliest.to_rfc3339(), latest, p.r_squared
        ),
        kind: Kind::Preventive,
    }
}

/// How long a sensor sampling every `interval` seconds may stay quiet.
fn silence_allowed(config: &AnalyticsConfig, interval: f64) -> f64 {
    (interval * config.silence_intervals).max(config.min_silence.as_secs_f64())
}

/// Opens a "no data" anomaly (and its inspection work order) for a silent
/// sensor; `intervals` is how many usual intervals the silence lasted.
async fn silence(
    tx: &mut Tx,
    tenant: &Tenant,
    config: &AnalyticsConfig,
    stats: &AnalyticsStats,
    s: &mut SensorState,
    at: DateTime<Utc>,
    intervals: f64,
) -> Result<(), AnalyticsError> {
    // A process episode still open is left as it is; the silence is its own anomaly.
    let process = s.open_anomaly.take();
    let signal = Signal::Opened {
        kind: AnomalyKind::NoData,
        ts: at,
        value: s.detector.last_value().unwrap_or(0.0),
        score: intervals,
        probability: 1.0,
        baseline: None,
        scale: None,
    };
    handle(tx, tenant, config, stats, s, signal).await?;
    s.silent = s.open_anomaly.take();
    s.open_anomaly = process;
    Ok(())
}

/// Consumes refit requests (a repair was confirmed): the sensors' detectors
/// start afresh, learning their baseline from the readings after the
/// repair instead of before it.
async fn refit(tx: &mut Tx, config: &AnalyticsConfig, state: &mut OrgState) -> Result<(), AnalyticsError> {
    for req in tuning::pending_refits(tx).await? {
        for s in state.sensors.values_mut() {
            let hit = match req.sensor_id {
                Some(id) => s.ctx.id == id,
                None => s.ctx.equipment_id == req.equipment_id,
            };
            if hit && s.open_anomaly.is_none() {
                let scale = s.detector.threshold_scale();
                s.detector = Detector::new(config.detector, s.ctx.min_value, s.ctx.max_value);
                s.detector.set_threshold_scale(scale);
                tracing::info!(sensor = %s.ctx.name, reason = %req.reason, "baseline refit after repair");
            }
        }
        if let Some(asset) = state.assets.get_mut(&req.equipment_id) {
            asset.monitor.reset();
        }
        tuning::mark_refit_done(tx, req.id).await?;
    }
    Ok(())
}

/// What an auto work order carries to justify itself: the readings around
/// the anomaly, its scores and baseline, and similar past anomalies on the
/// asset (with their verdicts).
async fn evidence(
    tx: &mut Tx,
    s: &SensorState,
    anomaly: &anomalies::Anomaly,
    kind: AnomalyKind,
) -> Result<serde_json::Value, AnalyticsError> {
    let from = anomaly.started_at - chrono::Duration::minutes(30);
    let window = auto_policy::readings_window(tx, s.ctx.id, from, anomaly.started_at, 300).await?;
    let similar = auto_policy::similar_anomalies(tx, s.ctx.equipment_id, kind.as_str(), 5).await?;
    let similar: Vec<serde_json::Value> = similar
        .iter()
        .filter(|a| a.id != anomaly.id)
        .map(|a| {
            serde_json::json!({
                "anomalyId": a.id, "startedAt": a.started_at, "score": a.score,
                "workOrderId": a.work_order_id, "verdict": a.verdict,
            })
        })
        .collect();
    Ok(serde_json::json!({
        "detector": DETECTOR_NAME,
        "sensorId": s.ctx.id,
        "sensor": s.ctx.name,
        "unit": s.ctx.unit,
        "kind": kind.as_str(),
        "startedAt": anomaly.started_at,
        "value": anomaly.peak_value,
        "score": anomaly.score,
        "probability": anomaly.details.get("probability"),
        "baseline": anomaly.baseline,
        "scale": anomaly.details.get("scale"),
        "zThreshold": s.detector.z_threshold(),
        "probabilityThreshold": s.detector.probability_threshold(),
        "contributingSensors": [s.ctx.name],
        "readings": {
            "resolution": window.resolution.as_str(),
            "bucketSeconds": window.bucket_seconds,
            "points": window.buckets.iter().map(|b| serde_json::json!([b.ts, b.min, b.avg, b.max])).collect::<Vec<_>>(),
        },
        "similarAnomalies": similar,
    }))
}
