//! The closed loop, end to end over real PostgreSQL with the analytics worker
//! running: a false-alarm verdict measurably raises that sensor's threshold,
//! a confirmed repair makes the detectors re-learn their baseline from the
//! data after it, and replay reports what a setting would raise while
//! writing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{DateTime, Utc};
use maintainpro_analytics::replay::{self, ReplayRequest};
use maintainpro_analytics::DetectorConfig;
use maintainpro_models::work_orders::{self, AutoPolicy, Status, Verdict, WorkOrderPatch};
use maintainpro_models::{tuning, Db, Tenant};
use support::{origin, setup, stream, work_orders as auto_work_orders};
use uuid::Uuid;

fn at(seconds: i64) -> DateTime<Utc> {
    origin() + chrono::Duration::seconds(seconds)
}

/// Completes the organization's one open auto work order with a verdict.
async fn complete_open(db: &Db, org: Uuid, verdict: Verdict) -> Uuid {
    let t = Tenant::system(org, "technician");
    let mut tx = db.tenant(org).await.unwrap();
    let id: Uuid = sqlx::query_scalar("SELECT id FROM work_orders WHERE source = 'auto' AND status = 'open'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    if verdict == Verdict::TrueAlarm {
        let codes = WorkOrderPatch {
            problem_code: Some(Some("OHE".into())),
            cause_code: Some(Some("WEA".into())),
            remedy_code: Some(Some("REP".into())),
            ..Default::default()
        };
        work_orders::update(&mut tx, &t, id, codes).await.unwrap();
    }
    work_orders::transition(&mut tx, &t, id, Status::InProgress, "")
        .await
        .unwrap();
    work_orders::transition_with(
        &mut tx,
        &t,
        id,
        Status::Completed,
        "done",
        Some(verdict),
        &AutoPolicy::default(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn replay(
    db: &Db,
    org: Uuid,
    sensor: Uuid,
    range: std::ops::Range<i64>,
    scale: Option<f64>,
) -> Vec<replay::ReplayedAnomaly> {
    let mut tx = db.tenant(org).await.unwrap();
    let report = replay::replay(
        &mut tx,
        DetectorConfig::default(),
        &ReplayRequest {
            sensor_ids: vec![sensor],
            from: at(range.start),
            to: at(range.end),
            z_threshold: None,
            probability_threshold: None,
            threshold_scale: scale,
        },
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    report.sensors.into_iter().flat_map(|s| s.anomalies).collect()
}

async fn count(db: &Db, org: Uuid, table: &str) -> i64 {
    let mut tx = db.tenant(org).await.unwrap();
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_alarm_verdict_raises_that_sensors_threshold() {
    let (tdb, org, sensors) = setup("verdict").await;
    let vib = sensors["vibration"];
    // A modest spike (6 noise sd): over the live z floor of 4.5, not far over.
    stream(
        &tdb.db,
        org,
        &sensors,
        &["gw-01/vibration:spike@1800s+1s*6"],
        0..2100,
    )
    .await;
    assert_eq!(
        auto_work_orders(&tdb.db, org).await.len(),
        1,
        "the spike raised a work order"
    );
    let mut tx = tdb.db.tenant(org).await.unwrap();
    let before = tuning::threshold_scale(&mut tx, vib, "robust_z").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(before, 1.0);
    // Replay at the untuned setting finds the spike, with its score.
    let untuned = replay(&tdb.db, org, vib, 1500..2100, Some(1.0)).await;
    assert_eq!(untuned.len(), 1, "{untuned:?}");
    let spike_z = untuned[0].score;

    complete_open(&tdb.db, org, Verdict::FalseAlarm).await;
    let mut tx = tdb.db.tenant(org).await.unwrap();
    let after = tuning::threshold_scale(&mut tx, vib, "robust_z").await.unwrap();
    tx.commit().await.unwrap();
    assert!(after > before, "threshold scale {before} → {after}");
    let tuned_z = DetectorConfig::default().threshold * after;
    assert!(
        spike_z < tuned_z,
        "the spike (z {spike_z:.2}) must sit under the tuned floor {tuned_z:.2} for this test"
    );
    // Measurably: the same history at the tuned threshold raises nothing.
    let tuned = replay(&tdb.db, org, vib, 1500..2100, None).await;
    assert!(tuned.is_empty(), "tuned scale {after}: {tuned:?}");
    // And the live detector uses it: the same spike again opens no anomaly
    // at all (not merely a suppressed one).
    stream(
        &tdb.db,
        org,
        &sensors,
        &["gw-01/vibration:spike@2400s+1s*6"],
        2100..2700,
    )
    .await;
    let mut tx = tdb.db.tenant(org).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM anomalies WHERE sensor_id = $1 AND started_at >= $2")
            .bind(vib)
            .bind(at(2100))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 0, "no anomaly for the same spike after the verdict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_refits_the_baseline_on_the_data_after_it() {
    // The bearing overheats for a minute (a step up), is repaired, and runs
    // cooler than before from then on (a step down at the repair). With the
    // repair confirmed, the detector re-learns from the data after it;
    // without it (the control), the new level is an anomaly against the
    // old baseline.
    let faults = [
        "gw-01/bearing_temp:step@1800s+60s*10",
        "gw-01/bearing_temp:step@2100s+3000s*-8",
    ];
    let mut new_anomalies = Vec::new();
    for repaired in [true, false] {
        let (tdb, org, sensors) = setup(if repaired { "repaired" } else { "control" }).await;
        stream(&tdb.db, org, &sensors, &faults, 0..2100).await;
        assert_eq!(
            auto_work_orders(&tdb.db, org).await.len(),
            1,
            "the overheating raised a work order"
        );
        if repaired {
            complete_open(&tdb.db, org, Verdict::TrueAlarm).await;
            assert_eq!(
                count(&tdb.db, org, "baseline_refits WHERE done_at IS NULL").await,
                1
            );
        }
        stream(&tdb.db, org, &sensors, &faults, 2100..3600).await;
        if repaired {
            assert_eq!(
                count(&tdb.db, org, "baseline_refits WHERE done_at IS NULL").await,
                0,
                "refit consumed"
            );
        }
        let mut tx = tdb.db.tenant(org).await.unwrap();
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM anomalies WHERE sensor_id = $1 AND started_at >= $2")
                .bind(sensors["bearing_temp"])
                .bind(at(2100))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        new_anomalies.push(n);
    }
    assert_eq!(new_anomalies[0], 0, "after the refit, the new level is normal");
    assert!(
        new_anomalies[1] >= 1,
        "control: without the refit the new level is anomalous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_what_it_would_raise_and_writes_nothing() {
    let (tdb, org, sensors) = setup("replay").await;
    // Store history without running analytics over it: insert through the
    // stream helper with a worker, then wipe what the worker wrote, so the
    // replay runs over plain history.
    stream(
        &tdb.db,
        org,
        &sensors,
        &[
            "gw-01/bearing_temp:spike@1800s+1s",
            "gw-01/pressure:stuck@2000s+300s",
        ],
        0..2400,
    )
    .await;
    let mut tx = tdb.db.tenant(org).await.unwrap();
    for table in ["work_orders", "anomalies", "analytics_cursors"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let tables = [
        "anomalies",
        "work_orders",
        "analytics_cursors",
        "detector_tuning",
        "audit_log",
    ];
    let mut before = Vec::new();
    for t in tables {
        before.push(count(&tdb.db, org, t).await);
    }

    let mut tx = tdb.db.tenant(org).await.unwrap();
    let report = replay::replay(
        &mut tx,
        DetectorConfig::default(),
        &ReplayRequest {
            sensor_ids: vec![sensors["bearing_temp"], sensors["pressure"], sensors["flow"]],
            from: at(1200),
            to: at(2400),
            z_threshold: None,
            probability_threshold: None,
            threshold_scale: None,
        },
    )
    .await
    .unwrap();
    // The transaction is read-only: a write in it fails.
    let write = sqlx::query("DELETE FROM readings").execute(&mut *tx).await;
    assert!(write.is_err(), "replay's transaction must be read-only");
    tx.rollback().await.unwrap();

    let by_sensor = |id: Uuid| report.sensors.iter().find(|s| s.sensor_id == id).unwrap();
    let temp = by_sensor(sensors["bearing_temp"]);
    assert_eq!(temp.points, 1200);
    assert_eq!(temp.anomalies.len(), 1, "{temp:?}");
    assert_eq!(temp.anomalies[0].kind, "high");
    assert_eq!(temp.anomalies[0].started_at, at(1800));
    assert_eq!(temp.anomalies[0].work_order_kind, "corrective");
    let pressure = by_sensor(sensors["pressure"]);
    assert_eq!(pressure.anomalies.len(), 1, "{pressure:?}");
    assert_eq!(pressure.anomalies[0].kind, "stuck");
    assert_eq!(pressure.anomalies[0].work_order_kind, "inspection");
    assert!(by_sensor(sensors["flow"]).anomalies.is_empty());
    assert_eq!(report.anomalies, 2);

    for (t, n) in tables.iter().zip(before) {
        assert_eq!(count(&tdb.db, org, t).await, n, "replay wrote to {t}");
    }
}
