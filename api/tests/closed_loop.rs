//! The closed loop of auto work orders over HTTP: evidence and verdict in
//! the work-order JSON, completion refused without a verdict (422 naming
//! `verdict`), a false alarm completed with the verdict in the status body
//! and no failure codes, a verdict by PATCH (final once completed: 409),
//! verification before the quiet period refused (409), and the anomaly
//! showing its verdict.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use axum::Router;
use maintainpro_models::anomalies::{self, NewAnomaly};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::work_orders::{self, AutoPolicy, AutoRaise, Kind};
use serde_json::{json, Value};
use uuid::Uuid;

use common::{add_user, app, call, login};

async fn expect(
    app: &Router,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (got, resp) = call(app, method.clone(), uri, Some(token), body).await;
    assert_eq!(got, status, "{method} {uri}: {resp}");
    if (200..300).contains(&got) {
        resp["data"].clone()
    } else {
        resp["error"].clone()
    }
}

/// An anomaly on the seeded pump and the auto work order it raises.
async fn auto_work_order(db: &maintainpro_models::Db, org: &SeededOrg, failure_mode: &str) -> (Uuid, Uuid) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let a = anomalies::open(
        &mut tx,
        &org.tenant,
        NewAnomaly {
            sensor_id: org.sensors[0].id,
            equipment_id: org.equipment.id,
            kind: "high".into(),
            detector: "robust_z".into(),
            severity: "medium".into(),
            score: 7.0,
            started_at: chrono::Utc::now(),
            peak_value: 90.0,
            baseline: Some(60.0),
            details: json!({}),
        },
    )
    .await
    .unwrap();
    let raised = work_orders::raise_auto(
        &mut tx,
        &org.tenant,
        AutoRaise {
            anomaly_id: a.id,
            equipment_id: org.equipment.id,
            sensor_id: org.sensors[0].id,
            failure_mode: failure_mode.into(),
            severity: "medium".into(),
            evidence: json!({"similar": [], "score": 7.0}),
            title: "Pump: temp abnormally high".into(),
            description: String::new(),
            kind: Kind::Corrective,
        },
        &AutoPolicy::default(),
    )
    .await
    .unwrap();
    let wo = raised.work_order().unwrap().id;
    tx.commit().await.unwrap();
    (a.id, wo)
}

#[tokio::test]
async fn auto_work_orders_close_the_loop_over_http() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "loop", &["temp"]).await;
    add_user(&t.db, &org, "tech@loop.test", Role::Technician).await;
    let tech = login(&app, "tech@loop.test").await;

    let (anomaly, id) = auto_work_order(&t.db, &org, "process:temp-high").await;
    let uri = |rest: &str| format!("/api/v1/work-orders/{id}{rest}");
    let wo = expect(&app, Method::GET, &uri(""), &tech, None, 200).await;
    assert_eq!(wo["source"], "auto");
    assert_eq!(wo["failureMode"], "process:temp-high");
    assert_eq!(wo["evidence"], json!({"similar": [], "score": 7.0}));
    assert_eq!(wo["verdict"], Value::Null);
    // Medium severity on a high-criticality pump: high priority.
    assert_eq!(wo["priority"], "high");

    expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "in_progress"})),
        200,
    )
    .await;
    // Without a verdict: 422 naming it (and the codes a true alarm would need).
    let err = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "completed"})),
        422,
    )
    .await;
    let fields: Vec<&str> = err["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["verdict", "problemCode", "causeCode", "remedyCode"]);
    // A verdict only goes with completing, and must be one of the two.
    let err = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "on_hold", "verdict": "false_alarm"})),
        422,
    )
    .await;
    assert_eq!(err["details"][0]["field"], "verdict");
    expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "completed", "verdict": "maybe"})),
        422,
    )
    .await;
    // A false alarm completes with the verdict alone.
    let done = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "completed", "verdict": "false_alarm", "note": "sun on the sensor"})),
        200,
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["verdict"].as_str()),
        (Some("completed"), Some("false_alarm"))
    );
    let a = expect(
        &app,
        Method::GET,
        &format!("/api/v1/anomalies/{anomaly}"),
        &tech,
        None,
        200,
    )
    .await;
    assert_eq!(a["verdict"], "false_alarm");
    assert_eq!(a["failureMode"], "process:temp-high");
    // Final once completed.
    let err = expect(
        &app,
        Method::PATCH,
        &uri(""),
        &tech,
        Some(json!({"verdict": "true_alarm"})),
        409,
    )
    .await;
    assert_eq!(err["code"], "CONFLICT");

    // Another key: the verdict set by PATCH, then completed as a true alarm;
    // verifying at once is refused until the quiet period is over.
    let (_, id2) = auto_work_order(&t.db, &org, "process:temp-low").await;
    let uri2 = |rest: &str| format!("/api/v1/work-orders/{id2}{rest}");
    let patched = expect(
        &app,
        Method::PATCH,
        &uri2(""),
        &tech,
        Some(json!({"verdict": "true_alarm", "problemCode": "OHE", "causeCode": "WEA", "remedyCode": "REP"})),
        200,
    )
    .await;
    assert_eq!(patched["verdict"], "true_alarm");
    expect(
        &app,
        Method::POST,
        &uri2("/status"),
        &tech,
        Some(json!({"status": "in_progress"})),
        200,
    )
    .await;
    expect(
        &app,
        Method::POST,
        &uri2("/status"),
        &tech,
        Some(json!({"status": "completed"})),
        200,
    )
    .await;
    let admin = login(&app, "admin@loop.test").await;
    let err = expect(
        &app,
        Method::POST,
        &uri2("/status"),
        &admin,
        Some(json!({"status": "verified"})),
        409,
    )
    .await;
    assert_eq!(err["code"], "CONFLICT");
    assert!(
        err["message"].as_str().unwrap().contains("stayed normal"),
        "{err}"
    );

    // Manual work orders take no verdict.
    let manual = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &tech,
        Some(json!({"title": "Check the fence"})),
        201,
    )
    .await;
    assert_eq!(manual["evidence"], Value::Null);
    let m = manual["id"].as_str().unwrap();
    let err = expect(
        &app,
        Method::PATCH,
        &format!("/api/v1/work-orders/{m}"),
        &tech,
        Some(json!({"verdict": "false_alarm"})),
        422,
    )
    .await;
    assert_eq!(err["details"][0]["field"], "verdict");

    // The OpenAPI document describes the verdict.
    let (_, doc) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["StatusChange"]["properties"]["verdict"].is_object(),
        "{}",
        schemas["StatusChange"]
    );
    assert!(schemas["WorkOrderPatch"]["properties"]["verdict"].is_object());
    assert!(schemas["WorkOrder"]["properties"]["evidence"].is_object());
    assert!(schemas["WorkOrder"]["properties"]["verdict"].is_object());
    t.cleanup().await;
}
