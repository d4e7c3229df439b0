//! Work-order comments and time logs through the API, as a real client
//! would use them, including permissions and tenancy.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg, SEED_PASSWORD};
use maintainpro_models::users::{self, NewUser};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn login(app: &Router, email: &str) -> String {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": SEED_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["accessToken"].as_str().unwrap().to_string()
}

async fn add_user(db: &maintainpro_models::Db, org: &SeededOrg, email: &str, role: Role) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let new = NewUser {
        email: email.into(),
        name: email.into(),
        role,
        password: SEED_PASSWORD.into(),
    };
    users::create(&mut tx, &org.tenant, new).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn comments_and_time_logs() {
    let t = test_db().await;
    let a = seed_org(&t.db, "act-a", &["temp"]).await;
    let b = seed_org(&t.db, "act-b", &["temp"]).await;
    add_user(&t.db, &a, "req@act-a.test", Role::Requester).await;
    add_user(&t.db, &a, "tech@act-a.test", Role::Technician).await;
    let app = router(AppState::new(
        t.db.clone(),
        ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), "s".repeat(40)),
    ));
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

    // Comments: anyone who sees work orders may add one; they come back in order.
    for (token, text) in [
        (&tech, "Bearing replaced, running quieter"),
        (&requester, "Thanks!"),
    ] {
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
    assert_eq!(body["data"]["total_minutes"], 75);
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
        Some(json!({"minutes": 5, "user_id": a.admin.id})),
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
