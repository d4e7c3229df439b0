//! Acceptance: each of the simulator's injected faults (spike, drift, step,
//! stuck, dropout) raises exactly one work order of the right kind within a
//! bounded delay, and a fault-free hour raises none. Readings are generated
//! by the edge agent's simulator (synthetic time, 1 s interval), stored in a
//! real PostgreSQL in one-minute slices as ingest would, and the analytics
//! worker runs live over them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use support::{origin, setup, stream, work_orders};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_raises_one_work_order_of_its_kind() {
    let (tdb, org, sensors) = setup("faults").await;
    // Faults start after 30 min of normal data (the detectors' warm-up),
    // each on its own sensor; magnitudes are the simulator's defaults.
    let faults = [
        ("bearing_temp", "spike", 1800, 1, "corrective"),
        ("vibration", "drift", 1800, 300, "corrective"),
        ("motor_current", "step", 1800, 600, "corrective"),
        ("pressure", "stuck", 1800, 300, "inspection"),
        ("flow", "dropout", 1800, 300, "inspection"),
    ];
    let specs: Vec<String> = faults
        .iter()
        .map(|(m, k, at, dur, _)| format!("gw-01/{m}:{k}@{at}s+{dur}s"))
        .collect();
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    stream(&tdb.db, org, &sensors, &specs, 0..3600).await;

    let raised = work_orders(&tdb.db, org).await;
    println!("work orders: {raised:#?}");
    for (metric, fault, at, duration, want_kind) in faults {
        let sensor = sensors[metric];
        let mine: Vec<_> = raised.iter().filter(|w| w.1 == sensor).collect();
        assert_eq!(
            mine.len(),
            1,
            "{fault} on {metric}: exactly one work order, got {mine:?}"
        );
        let (kind, _, started, anomaly_kind) = mine[0];
        assert_eq!(
            kind, want_kind,
            "{fault} raised a {kind} work order ({anomaly_kind})"
        );
        let start = origin() + chrono::Duration::seconds(at);
        let delay = (*started - start).num_seconds();
        // Bounded delay: within the fault's window plus one minute.
        assert!(
            (0..=duration + 60).contains(&delay),
            "{fault}: detected {delay} s after it began"
        );
        println!("{fault:8} → {kind:10} ({anomaly_kind}) after {delay} s");
    }
    // The fault-free sensor raised nothing.
    assert!(raised.iter().all(|w| w.1 != sensors["oil_temp"]), "{raised:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_free_hour_raises_nothing() {
    let (tdb, org, sensors) = setup("quiet").await;
    stream(&tdb.db, org, &sensors, &[], 0..3600).await;
    let raised = work_orders(&tdb.db, org).await;
    assert!(raised.is_empty(), "a fault-free hour raised {raised:#?}");
}

/// A drift toward a sensor's limit is predicted before the limit is
/// reached, and the prediction and the live drift anomaly make one work
/// order (whichever came first raised it; the other joined it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_toward_a_limit_is_predicted_in_time_as_one_work_order() {
    let (tdb, org, sensors) = setup("predict").await;
    let vib = sensors["vibration"];
    let mut tx = tdb.db.tenant(org).await.unwrap();
    sqlx::query("UPDATE sensors SET max_value = 4.0 WHERE id = $1")
        .bind(vib)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // 2.5 mm/s drifting up by 1.8 over 30 min: it would cross 4.0 at ~3300 s.
    stream(
        &tdb.db,
        org,
        &sensors,
        &["gw-01/vibration:drift@1800s+1800s*12"],
        0..3300,
    )
    .await;
    let raised = work_orders(&tdb.db, org).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let mut tx = tdb.db.tenant(org).await.unwrap();
    let linked: Vec<(String, DateTime<Utc>, Option<Uuid>)> = sqlx::query_as(
        "SELECT kind, started_at, work_order_id FROM anomalies WHERE sensor_id = $1 ORDER BY started_at",
    )
    .bind(vib)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let wo: Uuid = sqlx::query_scalar("SELECT id FROM work_orders WHERE source = 'auto'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    println!("{linked:#?}");
    let predicted = linked
        .iter()
        .find(|a| a.0 == "predicted_high")
        .expect("the crossing was predicted");
    let lead = (origin() + chrono::Duration::seconds(3300) - predicted.1).num_seconds();
    println!(
        "predicted {lead} s before the limit; work order raised by {:?}",
        raised[0]
    );
    assert!(lead > 0, "predicted {lead} s before the crossing");
    assert!(
        linked.iter().all(|a| a.2 == Some(wo)),
        "every anomaly joined the one work order: {linked:?}"
    );
}
