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
use maintainpro_models::{Db, Tenant, Tx};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::detector::{severity, AnomalyKind, Detector, DetectorConfig, Signal};
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
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_points_per_sensor: 5_000,
            detector: DetectorConfig::default(),
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
}

/// One organization's detectors.
struct OrgState {
    sensors: HashMap<Uuid, SensorState>,
    loaded_at: Instant,
}

const SENSOR_REFRESH: Duration = Duration::from_secs(15);

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
        let previous = orgs.remove(&org).map(|s| s.sensors).unwrap_or_default();
        let sensors = load(&mut tx, config, previous).await?;
        orgs.insert(
            org,
            OrgState {
                sensors,
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
        return Ok(());
    }

    let mut moved: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for (sensor_id, ts, value) in &rows {
        let Some(s) = state.sensors.get_mut(sensor_id) else {
            continue;
        };
        moved.insert(*sensor_id, *ts);
        s.cursor = Some(*ts);
        if let Some(signal) = s.detector.observe(*ts, *value) {
            handle(&mut tx, &tenant, stats, s, signal).await?;
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
    let mut out = HashMap::new();
    for ctx in contexts {
        if let Some(mut s) = previous.remove(&ctx.id) {
            s.ctx = ctx;
            out.insert(s.ctx.id, s);
            continue;
        }
        let mut detector = Detector::new(config.detector, ctx.min_value, ctx.max_value);
        let cursor = cursors.get(&ctx.id).copied();
        if let Some(c) = cursor {
            let history: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
                "SELECT ts, value FROM (SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts <= $2
                                        ORDER BY ts DESC LIMIT $3) h ORDER BY ts",
            )
            .bind(ctx.id)
            .bind(c)
            .bind(2 * config.detector.window as i64)
            .fetch_all(&mut **tx)
            .await?;
            for (ts, v) in history {
                detector.prime(ts, v);
            }
            detector.clear_episode();
        }
        let open_anomaly = open.get(&ctx.id).map(|a| {
            let kind = match a.kind.as_str() {
                "low" => AnomalyKind::Low,
                "out_of_range" => AnomalyKind::OutOfRange,
                "stuck" => AnomalyKind::Stuck,
                _ => AnomalyKind::High,
            };
            detector.resume_episode(kind, a.points.max(1) as u32, a.peak_value, a.score);
            a.id
        });
        out.insert(
            ctx.id,
            SensorState {
                ctx,
                detector,
                cursor,
                open_anomaly,
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
                        "value": value, "baseline": baseline, "scale": scale, "z": score,
                        "unit": s.ctx.unit, "metric": s.ctx.metric,
                    }),
                },
            )
            .await?;
            stats.anomalies_opened.fetch_add(1, Ordering::Relaxed);
            s.open_anomaly = Some(anomaly.id);
            let raised = work_orders::raise_auto(tx, tenant, auto_raise(&s.ctx, &anomaly, kind)).await?;
            if raised.created {
                stats.work_orders_created.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    work_order = %raised.work_order.code, equipment = %s.ctx.equipment_name,
                    sensor = %s.ctx.name, kind = kind.as_str(), score, "auto work order raised"
                );
            } else {
                stats.work_orders_updated.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    work_order = %raised.work_order.code, occurrences = raised.work_order.occurrence_count,
                    sensor = %s.ctx.name, "anomaly added to open work order"
                );
            }
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
fn auto_raise(ctx: &SensorContext, anomaly: &anomalies::Anomaly, kind: AnomalyKind) -> AutoRaise {
    let what = match kind {
        AnomalyKind::High => "abnormally high",
        AnomalyKind::Low => "abnormally low",
        AnomalyKind::OutOfRange => "outside its limits",
        AnomalyKind::Stuck => "stuck (sensor fault suspected)",
    };
    let baseline = anomaly
        .baseline
        .map(|b| format!(" against a baseline of {b:.2} {}", ctx.unit))
        .unwrap_or_default();
    let (wo_kind, dedup_key) = if kind.is_sensor_health() {
        (Kind::Inspection, format!("sensor-health:{}", ctx.id))
    } else {
        (Kind::Corrective, format!("sensor:{}", ctx.id))
    };
    AutoRaise {
        anomaly_id: anomaly.id,
        equipment_id: ctx.equipment_id,
        sensor_id: ctx.id,
        dedup_key,
        title: format!("{}: {} {what}", ctx.equipment_name, ctx.name),
        description: format!(
            "Raised automatically by analytics ({DETECTOR_NAME}). {} read {:.2} {} at {}{baseline} (score {:.1}, severity {}).",
            ctx.name, anomaly.peak_value, ctx.unit, anomaly.started_at.to_rfc3339(), anomaly.score, anomaly.severity
        ),
        kind: wo_kind,
        priority: work_orders::priority_for(&anomaly.severity, &ctx.criticality),
    }
}
