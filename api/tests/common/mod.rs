//! A small HTTP harness shared by API test binaries: requests through the
//! router (no network), sign-in, and extra users.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{SeededOrg, SEED_PASSWORD};
use maintainpro_models::users::{self, NewUser};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The whole API over `db`.
pub fn app(db: &maintainpro_models::Db) -> Router {
    router(AppState::new(
        db.clone(),
        ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), "s".repeat(40)),
    ))
}

pub async fn call(
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

pub async fn login(app: &Router, email: &str) -> String {
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

pub async fn add_user(db: &maintainpro_models::Db, org: &SeededOrg, email: &str, role: Role) {
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

/// GET returning the raw body text (asserting 200).
pub async fn raw(app: &Router, uri: &str, token: &str) -> String {
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{uri}");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}
