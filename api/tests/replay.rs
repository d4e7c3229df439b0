//! Detector replay over HTTP: what the live setting (or a variant) would
//! have raised over stored readings, nothing written; bad requests get
//! 422 with the fields named; another organization's sensor is a 404.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use chrono::{Duration, TimeZone, Utc};
use maintainpro_models::testkit::{seed_org, test_db};
use serde_json::json;

use common::{app, call, login};

#[tokio::test]
async fn replay_answers_what_it_would_raise_and_writes_nothing() {
    let tdb = test_db().await;
    let org = seed_org(&tdb.db, "acme", &["temp"]).await;
    let other = seed_org(&tdb.db, "globex", &["temp"]).await;
    let sensor = org.sensors[0].id;
    // 40 minutes of a quiet 1 Hz signal with one spike at minute 30.
    let t0 = Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap();
    let (mut tss, mut vals) = (Vec::new(), Vec::new());
    for i in 0..2400i64 {
        let noise = ((i as f64 * 12.9898).sin() * 43758.5453).fract() * 0.4;
        tss.push(t0 + Duration::seconds(i));
        vals.push(if i == 1800 { 70.0 } else { 60.0 + noise });
    }
    let mut tx = tdb.db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query(
        "INSERT INTO readings (organization_id, sensor_id, ts, value)
         SELECT $1, $2, * FROM unnest($3::timestamptz[], $4::float8[])",
    )
    .bind(org.tenant.org_id)
    .bind(sensor)
    .bind(&tss)
    .bind(&vals)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let app = app(&tdb.db);
    let token = login(&app, &format!("admin@{}.test", org.slug)).await;
    let body = json!({
        "sensorIds": [sensor],
        "from": (t0 + Duration::minutes(20)).to_rfc3339(),
        "to": (t0 + Duration::minutes(40)).to_rfc3339(),
    });
    let (status, resp) = call(
        &app,
        Method::POST,
        "/api/v1/analytics/replay",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let report = &resp["data"];
    assert_eq!(report["anomalies"], 1, "{report}");
    let s = &report["sensors"][0];
    assert_eq!(s["points"], 1200);
    assert_eq!(s["anomalies"][0]["kind"], "high");
    assert_eq!(
        s["anomalies"][0]["startedAt"],
        (t0 + Duration::seconds(1800)).to_rfc3339().replace("+00:00", "Z")
    );
    assert_eq!(s["anomalies"][0]["workOrderKind"], "corrective");

    // A stricter setting raises nothing.
    let strict = json!({
        "sensorIds": [sensor], "from": (t0 + Duration::minutes(20)).to_rfc3339(),
        "to": (t0 + Duration::minutes(40)).to_rfc3339(), "zThreshold": 1000.0,
    });
    let (_, resp) = call(
        &app,
        Method::POST,
        "/api/v1/analytics/replay",
        Some(&token),
        Some(strict),
    )
    .await;
    assert_eq!(resp["data"]["anomalies"], 0, "{resp}");

    // Nothing written.
    let mut tx = tdb.db.tenant(org.tenant.org_id).await.unwrap();
    for table in ["anomalies", "work_orders", "analytics_cursors"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "replay wrote to {table}");
    }
    tx.commit().await.unwrap();

    // Bad requests: 422 naming the fields.
    let bad =
        json!({"sensorIds": [], "from": t0.to_rfc3339(), "to": t0.to_rfc3339(), "probabilityThreshold": 2.0});
    let (status, resp) = call(
        &app,
        Method::POST,
        "/api/v1/analytics/replay",
        Some(&token),
        Some(bad),
    )
    .await;
    assert_eq!(status, 422, "{resp}");
    let fields: Vec<&str> = resp["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["sensorIds", "to", "probabilityThreshold"], "{resp}");

    // Another organization's sensor: 404.
    let foreign = json!({
        "sensorIds": [other.sensors[0].id], "from": t0.to_rfc3339(),
        "to": (t0 + Duration::minutes(40)).to_rfc3339(),
    });
    let (status, resp) = call(
        &app,
        Method::POST,
        "/api/v1/analytics/replay",
        Some(&token),
        Some(foreign),
    )
    .await;
    assert_eq!(status, 404, "{resp}");
}
