//! The trend API: several sensors in one call, resolution and LTTB, the
//! streamed CSV export of raw readings, the last value per sensor, and
//! their validation and tenancy errors.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use http_body_util::BodyExt;
use maintainpro_models::auth::Role;
use maintainpro_models::rollups;
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::Db;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

use common::{add_user, app, call, login};

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One reading per `every` seconds for `secs`, value = index + offset.
async fn insert(db: &Db, org: &SeededOrg, sensor: Uuid, secs: i64, every: i64, offset: f64) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query(
        "INSERT INTO readings (organization_id, sensor_id, ts, value)
         SELECT $1, $2, $3 + make_interval(secs => s), s / $5 + $6
         FROM generate_series(0, $4 - 1, $5) s",
    )
    .bind(org.tenant.org_id)
    .bind(sensor)
    .bind(base())
    .bind(secs)
    .bind(every)
    .bind(offset)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn get(app: &Router, uri: &str, token: &str) -> (u16, Value) {
    call(app, Method::GET, uri, Some(token), None).await
}

/// GET returning status, content type and the body text.
async fn get_text(app: &Router, uri: &str, token: &str) -> (u16, String, String) {
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

struct World {
    db: Db,
    app: Router,
    org: SeededOrg,
    foreign: SeededOrg,
    token: String,
}

async fn world() -> (maintainpro_models::testkit::TestDb, World) {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let org = seed_org(&db, "trends", &["temp", "vib", "idle"]).await;
    let foreign = seed_org(&db, "trends-other", &["temp"]).await;
    // Two days at 30 s for temp, one hour at 1 s for vib; none for idle.
    insert(&db, &org, org.sensors[0].id, 2 * 86400, 30, 0.0).await;
    insert(&db, &org, org.sensors[1].id, 3600, 1, 1000.0).await;
    insert(&db, &foreign, foreign.sensors[0].id, 3600, 10, 0.0).await;
    rollups::roll_up_all(&db, Duration::days(7)).await.unwrap();
    let app = app(&db);
    add_user(&db, &org, "tech@trends.test", Role::Technician).await;
    let token = login(&app, "tech@trends.test").await;
    (
        tdb,
        World {
            db,
            app,
            org,
            foreign,
            token,
        },
    )
}

#[tokio::test]
async fn several_sensors_in_one_call() {
    let (tdb, w) = world().await;
    let (a, b) = (w.org.sensors[0].id, w.org.sensors[1].id);
    let range = format!("from={}&to={}", iso(base()), iso(base() + Duration::days(2)));
    let (status, body) = get(
        &w.app,
        &format!("/api/v1/readings?sensorIds={b},{a}&{range}&maxPoints=48"),
        &w.token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let series = body["data"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["sensorId"], json!(b), "in the order asked");
    assert_eq!(series[1]["sensorId"], json!(a));
    assert_eq!(series[1]["resolution"], "1h");
    assert_eq!(series[1]["bucketSeconds"], 3600.0);
    assert_eq!(series[1]["buckets"].as_array().unwrap().len(), 48);
    let total: i64 = series[1]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2 * 86400 / 30);
    assert_eq!(series[1]["rowsScanned"], 48);
    // vib has one hour of data: one bucket, min/max of its values.
    let vib = series[0]["buckets"].as_array().unwrap();
    assert_eq!(vib.len(), 1);
    assert_eq!(
        (vib[0]["min"].as_f64(), vib[0]["max"].as_f64()),
        (Some(1000.0), Some(4599.0))
    );

    // The single-sensor call agrees, and a finer range reads raw data.
    let (_, one) = get(
        &w.app,
        &format!("/api/v1/sensors/{a}/readings?{range}&maxPoints=48"),
        &w.token,
    )
    .await;
    assert_eq!(one["data"]["buckets"], series[1]["buckets"]);
    let (_, fine) = get(
        &w.app,
        &format!(
            "/api/v1/sensors/{b}/readings?from={}&to={}&maxPoints=1000",
            iso(base()),
            iso(base() + Duration::minutes(10))
        ),
        &w.token,
    )
    .await;
    assert_eq!(fine["data"]["resolution"], "raw");
    assert_eq!(fine["data"]["buckets"].as_array().unwrap().len(), 600);
    // LTTB keeps maxPoints of 4× finer buckets.
    let (_, thin) = get(
        &w.app,
        &format!("/api/v1/sensors/{a}/readings?{range}&maxPoints=100&lttb=true"),
        &w.token,
    )
    .await;
    assert_eq!(thin["data"]["lttb"], true);
    assert_eq!(thin["data"]["resolution"], "1m");
    assert_eq!(thin["data"]["buckets"].as_array().unwrap().len(), 100);

    // Validation: no ids, too many, not uuids, bad range.
    for query in [
        "sensorIds=".to_string(),
        "sensorIds=nope".to_string(),
        format!(
            "sensorIds={}",
            (0..21)
                .map(|_| Uuid::new_v4().to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        format!("sensorIds={a}&from={}&to={}", iso(base()), iso(base())),
        format!("sensorIds={a}&maxPoints=0"),
    ] {
        let (status, body) = get(&w.app, &format!("/api/v1/readings?{query}"), &w.token).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    }
    // Unknown and foreign ids: 404, naming neither.
    let foreign = w.foreign.sensors[0].id;
    for other in [Uuid::new_v4(), foreign] {
        let (status, body) = get(
            &w.app,
            &format!("/api/v1/readings?sensorIds={a},{other}"),
            &w.token,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        assert!(!body.to_string().contains(&other.to_string()));
    }
    // Requesters may not read trends.
    add_user(&w.db, &w.org, "req@trends.test", Role::Requester).await;
    let req = login(&w.app, "req@trends.test").await;
    let (status, _) = get(&w.app, &format!("/api/v1/readings?sensorIds={a}"), &req).await;
    assert_eq!(status, 403);
    tdb.cleanup().await;
}

#[tokio::test]
async fn csv_export_streams_raw_rows() {
    let (tdb, w) = world().await;
    let b = w.org.sensors[1].id;
    // 20 minutes of 1 s data: 1200 rows (one chunk); below, the whole hour
    // (3600 rows, ~100 KB: several chunks).
    let from = base() + Duration::minutes(5);
    let to = base() + Duration::minutes(25);
    let (status, ctype, text) = get_text(
        &w.app,
        &format!(
            "/api/v1/sensors/{b}/readings.csv?from={}&to={}",
            iso(from),
            iso(to)
        ),
        &w.token,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ts,value");
    assert_eq!(lines.len(), 1 + 1200, "from inclusive, to exclusive");
    assert_eq!(lines[1], "2024-05-01T00:05:00Z,1300");
    assert_eq!(lines[1200], "2024-05-01T00:24:59Z,2499");

    let (status, _, text) = get_text(
        &w.app,
        &format!(
            "/api/v1/sensors/{b}/readings.csv?from={}&to={}",
            iso(base() - Duration::hours(1)),
            iso(base() + Duration::hours(2))
        ),
        &w.token,
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.len() > 64 * 1024, "spans several chunks: {}", text.len());
    let values: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(values.len(), 3600);
    assert!(
        values.windows(2).all(|p| p[1] == p[0] + 1.0),
        "oldest first, none lost"
    );

    // Errors are JSON, before anything is streamed.
    let (status, body) = get(
        &w.app,
        &format!(
            "/api/v1/sensors/{b}/readings.csv?from={}&to={}",
            iso(to),
            iso(from)
        ),
        &w.token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("VALIDATION_ERROR"))
    );
    let foreign = w.foreign.sensors[0].id;
    let (status, _) = get(
        &w.app,
        &format!("/api/v1/sensors/{foreign}/readings.csv"),
        &w.token,
    )
    .await;
    assert_eq!(status, 404);
    tdb.cleanup().await;
}

#[tokio::test]
async fn latest_value_per_sensor() {
    let (tdb, w) = world().await;
    let (status, body) = get(&w.app, "/api/v1/sensors/latest", &w.token).await;
    assert_eq!(status, 200, "{body}");
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 3, "only this organization's sensors: {body}");
    let by = |id: Uuid| items.iter().find(|i| i["sensorId"] == json!(id)).unwrap();
    let temp = by(w.org.sensors[0].id);
    assert_eq!(temp["ts"], "2024-05-02T23:59:30Z");
    assert_eq!(temp["value"], 5759.0);
    assert_eq!(temp["metric"], "temp");
    assert_eq!(temp["equipmentId"], json!(w.org.equipment.id));
    let vib = by(w.org.sensors[1].id);
    assert_eq!(
        (vib["ts"].as_str(), vib["value"].as_f64()),
        (Some("2024-05-01T00:59:59Z"), Some(4599.0))
    );
    let idle = by(w.org.sensors[2].id);
    assert!(idle["ts"].is_null() && idle["value"].is_null());

    let (_, one) = get(
        &w.app,
        &format!("/api/v1/sensors/latest?equipmentId={}", w.org.equipment.id),
        &w.token,
    )
    .await;
    assert_eq!(one["data"].as_array().unwrap().len(), 3);
    let (_, none) = get(
        &w.app,
        &format!("/api/v1/sensors/latest?equipmentId={}", w.foreign.equipment.id),
        &w.token,
    )
    .await;
    assert_eq!(none["data"], json!([]));
    let (status, body) = get(&w.app, "/api/v1/sensors/latest?equipmentId=nope", &w.token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{body}"
    );
    tdb.cleanup().await;
}
