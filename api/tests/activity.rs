//! Work-order comments and time logs through the API, as a real client
//! would use them, including permissions and tenancy.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use common::{add_user, app, call, login};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db};
use serde_json::json;

#[tokio::test]
async fn comments_and_time_logs() {
    let t = test_db().await;
    let a = seed_org(&t.db, "act-a", &["temp"]).await;
    let b = seed_org(&t.db, "act-b", &["temp"]).await;
    add_user(&t.db, &a, "req@act-a.test", Role::Requester).await;
    add_user(&t.db, &a, "tech@act-a.test", Role::Technician).await;
    let app = app(&t.db);
    let admin = login(&app, &a.admin.email).await;
    let tech = login(&app, "tech@act-a.test").await;
    let requester = login(&app, "req@act-a.test").await;
    let admin_b = login(&app, &b.admin.email).await;

    let (status, wo) = call(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        Some(&admin),
        Some(json!({"title": "Noisy bearing"})),
    )
    .await;
    assert_eq!(status, 201, "{wo}");
    let id = wo["data"]["id"].as_str().unwrap().to_string();

    // Comments: anyone who sees the work order may add one; they come back in
    // order. A requester sees only what they requested.
    for (token, text) in [(&tech, "Bearing replaced, running quieter"), (&admin, "Thanks!")] {
        let (status, body) = call(
            &app,
            Method::POST,
            &format!("/api/v1/work-orders/{id}/comments"),
            Some(token),
            Some(json!({"body": text})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders/{id}/comments"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{id}/comments"),
        Some(&requester),
        Some(json!({"body": "me too"})),
    )
    .await;
    assert_eq!(status, 404, "not the requester's work order");
    let texts: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["Bearing replaced, running quieter", "Thanks!"]);
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{id}/comments"),
        Some(&admin),
        Some(json!({"body": "  "})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "body");

    // Time logs: technicians log their own labour; totals add up.
    for minutes in [45, 30] {
        let (status, body) = call(
            &app,
            Method::POST,
            &format!("/api/v1/work-orders/{id}/time-logs"),
            Some(&tech),
            Some(json!({"minutes": minutes, "note": "replace bearing"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders/{id}/time-logs"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["data"]["totalMinutes"], 75);
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 2);
    // Invalid minutes, a requester logging time, logging for someone else without assign.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{id}/time-logs"),
        Some(&tech),
        Some(json!({"minutes": 0})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{id}/time-logs"),
        Some(&requester),
        Some(json!({"minutes": 5})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{id}/time-logs"),
        Some(&tech),
        Some(json!({"minutes": 5, "userId": a.admin.id})),
    )
    .await;
    assert_eq!(
        status, 403,
        "logging another user's time needs work_orders:assign"
    );

    // Another organization sees nothing and can add nothing.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/work-orders/{id}/comments"), None),
        (
            Method::POST,
            format!("/api/v1/work-orders/{id}/comments"),
            Some(json!({"body": "hi"})),
        ),
        (Method::GET, format!("/api/v1/work-orders/{id}/time-logs"), None),
        (
            Method::POST,
            format!("/api/v1/work-orders/{id}/time-logs"),
            Some(json!({"minutes": 5})),
        ),
    ] {
        let (status, resp) = call(&app, method, &path, Some(&admin_b), body).await;
        assert_eq!(status, 404, "{path}: {resp}");
    }
    t.cleanup().await;
}
