//! Shared by the analytics integration tests: a seeded organization, and
//! simulated telemetry streamed into PostgreSQL while the analytics worker
//! runs over it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use maintainpro_analytics::{AnalyticsConfig, AnalyticsStats};
use maintainpro_edge::{FaultSpec, Fleet, SimConfig};
use maintainpro_models::testkit::{seed_org, test_db, TestDb};
use maintainpro_models::Db;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const METRICS: [&str; 6] = [
    "bearing_temp",
    "vibration",
    "motor_current",
    "pressure",
    "flow",
    "oil_temp",
];

pub fn origin() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Auto work orders of the organization: (kind, sensor, anomaly start, anomaly kind).
pub async fn work_orders(db: &Db, org: Uuid) -> Vec<(String, Uuid, DateTime<Utc>, String)> {
    let mut tx = db.tenant(org).await.unwrap();
    let rows: Vec<(String, Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT w.kind, w.sensor_id, a.started_at, a.kind FROM work_orders w JOIN anomalies a ON a.id = w.anomaly_id
         WHERE w.source = 'auto' ORDER BY a.started_at",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows
}

/// Streams the `seconds` (from the origin) of simulated data into the database a minute at a
/// time, waiting for analytics to catch up after each slice.
pub async fn stream(
    db: &Db,
    org: Uuid,
    sensors: &HashMap<String, Uuid>,
    faults: &[&str],
    seconds: std::ops::Range<i64>,
) {
    let mut config = SimConfig::fleet("plant", 1, METRICS.len(), Duration::from_secs(1));
    config.faults = faults.iter().map(|f| f.parse::<FaultSpec>().unwrap()).collect();
    let mut fleet = Fleet::new(&config, origin()).unwrap();
    let stats = Arc::new(AnalyticsStats::default());
    let stop = CancellationToken::new();
    let worker = tokio::spawn(maintainpro_analytics::run(
        db.clone(),
        AnalyticsConfig {
            interval: Duration::from_millis(20),
            ..AnalyticsConfig::default()
        },
        stats.clone(),
        stop.clone(),
    ));
    for minute in seconds.start / 60..seconds.end / 60 {
        let (mut ids, mut tss, mut vals) = (Vec::new(), Vec::new(), Vec::new());
        for s in 0..60 {
            let ts = origin() + chrono::Duration::seconds(minute * 60 + s);
            for (_, msg) in fleet.sample(ts) {
                for (metric, v) in &msg.metrics {
                    ids.push(sensors[metric]);
                    tss.push(msg.ts);
                    vals.push(*v);
                }
            }
        }
        let mut tx = db.tenant(org).await.unwrap();
        sqlx::query(
            "INSERT INTO readings (organization_id, sensor_id, ts, value)
             SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::float8[])",
        )
        .bind(org)
        .bind(&ids)
        .bind(&tss)
        .bind(&vals)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        // Wait until every sensor that reported this minute was analysed.
        let last: HashMap<Uuid, DateTime<Utc>> = ids.iter().copied().zip(tss.iter().copied()).collect();
        for _ in 0..500 {
            let mut tx = db.tenant(org).await.unwrap();
            let cursors: HashMap<Uuid, DateTime<Utc>> = sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
                "SELECT sensor_id, last_ts FROM analytics_cursors",
            )
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .into_iter()
            .collect();
            tx.commit().await.unwrap();
            if last
                .iter()
                .all(|(id, ts)| cursors.get(id).is_some_and(|c| c >= ts))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.cancel();
    worker.await.unwrap();
}

pub async fn setup(slug: &str) -> (TestDb, Uuid, HashMap<String, Uuid>) {
    let tdb = test_db().await;
    let seeded = seed_org(&tdb.db, slug, &METRICS).await;
    let sensors = seeded.sensors.iter().map(|s| (s.metric.clone(), s.id)).collect();
    (tdb, seeded.tenant.org_id, sensors)
}
