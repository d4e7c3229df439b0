//! Integration tests of the HTTP API against a real PostgreSQL (one fresh
//! database per test), driving the router with `oneshot`.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, SecondsFormat, TimeZone, Utc};
use http_body_util::BodyExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use maintainpro_api::auth::Claims;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::devices::Sensor;
use maintainpro_models::equipment::Equipment;
use maintainpro_models::testkit::{self, test_db, TestDb};
use maintainpro_models::users::{self, NewUser, User};
use maintainpro_models::work_orders::{self, NewWorkOrder, WorkOrder};
use maintainpro_models::{Actor, Db, Tenant};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &str = "test-secret-test-secret-test-secret";
const PASSWORD: &str = testkit::SEED_PASSWORD;

/// One organization's seeded rows.
struct Org {
    id: Uuid,
    admin: User,
    equipment: Equipment,
    sensor: Sensor,
}

struct TestApp {
    tdb: TestDb,
    state: AppState,
    a: Org,
    b: Org,
}

impl TestApp {
    fn db(&self) -> &Db {
        &self.tdb.db
    }

    fn app(&self) -> Router {
        router(self.state.clone())
    }

    fn token(&self, user: &User) -> String {
        self.state.jwt.issue(user).unwrap()
    }

    /// A user of org A with `role`, and a token for them.
    async fn user_a(&self, role: Role) -> (User, String) {
        let mut tx = self.db().tenant(self.a.id).await.unwrap();
        let user = users::create(
            &mut tx,
            &system(self.a.id),
            NewUser {
                email: format!("{}-{}@acme.test", role, Uuid::new_v4().simple()),
                name: format!("{role} user"),
                role,
                password: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let token = self.token(&user);
        (user, token)
    }

    async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        send(self.app(), req).await
    }

    async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call(Method::GET, uri, Some(token), None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    /// Asserts an error envelope with `status` and `code`; returns the error member.
    fn error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], false, "body: {}", self.body);
        let err = &self.body["error"];
        assert_eq!(err["code"], code, "body: {}", self.body);
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        let ts = err["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "timestamp {ts}");
        assert_eq!(
            err["requestId"].as_str(),
            self.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            "envelope and header carry the same request id"
        );
        err
    }

    /// Asserts a success envelope with `status`; returns `data`.
    fn data(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], true, "body: {}", self.body);
        assert_eq!(
            self.body["meta"]["requestId"].as_str(),
            self.headers.get("x-request-id").and_then(|v| v.to_str().ok())
        );
        &self.body["data"]
    }
}

async fn send(app: Router, req: Request<Body>) -> Resp {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn system(org_id: Uuid) -> Tenant {
    Tenant {
        org_id,
        actor: Actor::System("test"),
    }
}

fn config() -> ApiConfig {
    ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SECRET)
}

async fn seed_org(db: &Db, slug: &str) -> Org {
    let s = testkit::seed_org(db, slug, &["bearing_temp"]).await;
    Org {
        id: s.tenant.org_id,
        admin: s.admin,
        equipment: s.equipment,
        sensor: s.sensors[0].clone(),
    }
}

async fn spawn() -> TestApp {
    let tdb = test_db().await;
    let a = seed_org(&tdb.db, "acme").await;
    let b = seed_org(&tdb.db, "globex").await;
    let state = AppState::new(tdb.db.clone(), config());
    TestApp { tdb, state, a, b }
}

async fn create_wo_in_b(t: &TestApp) -> WorkOrder {
    let mut tx = t.db().tenant(t.b.id).await.unwrap();
    let wo = work_orders::create(
        &mut tx,
        &system(t.b.id),
        NewWorkOrder {
            title: "globex secret job".into(),
            description: String::new(),
            kind: None,
            priority: None,
            equipment_id: Some(t.b.equipment.id),
            sensor_id: None,
            assigned_to: None,
            due_at: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    wo
}

fn mint(claims: &Value, alg: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims_for(user: &User) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "sub": user.id, "org": user.organization_id, "role": user.role,
        "iat": now, "exp": now + 600, "iss": "maintainpro", "aud": "maintainpro-api",
    })
}

#[tokio::test]
async fn login_success_and_failure() {
    let t = spawn().await;
    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ADMIN@acme.test", "password": PASSWORD})),
        )
        .await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["expiresIn"], 900);
    assert_eq!(data["user"]["email"], "admin@acme.test");
    assert!(data["user"].get("password_hash").is_none());
    let token = data["accessToken"].as_str().unwrap().to_string();

    // The token works, and carries the organization.
    let me = t.get("/api/v1/me", &token).await;
    let me = me.data(StatusCode::OK);
    assert_eq!(me["user"]["id"], json!(t.a.admin.id));
    assert_eq!(me["organization"]["slug"], "acme");
    let perms: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(perms.contains(&"work_orders:create") && perms.contains(&"users:manage"));

    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "admin@acme.test", "password": "wrong password"})),
        )
        .await;
    r.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(r.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");

    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "nobody@acme.test", "password": PASSWORD})),
        )
        .await;
    r.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "admin@acme.test"})),
        )
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "password");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn bad_tokens_are_rejected() {
    let t = spawn().await;
    let admin = &t.a.admin;
    let now = Utc::now().timestamp();

    let mut expired = claims_for(admin);
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut wrong_aud = claims_for(admin);
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims_for(admin);
    wrong_iss["iss"] = json!("evil");
    let mut no_exp = claims_for(admin);
    no_exp.as_object_mut().unwrap().remove("exp");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims_for(admin).to_string())
    );
    let valid = mint(&claims_for(admin), Algorithm::HS256, SECRET);
    let mut tampered = valid.clone();
    tampered.push('A');

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("Bearer not-a-jwt".into())),
        ("wrong scheme", Some(format!("Basic {valid}"))),
        ("empty bearer", Some("Bearer ".into())),
        (
            "expired",
            Some(format!("Bearer {}", mint(&expired, Algorithm::HS256, SECRET))),
        ),
        (
            "wrong audience",
            Some(format!("Bearer {}", mint(&wrong_aud, Algorithm::HS256, SECRET))),
        ),
        (
            "wrong issuer",
            Some(format!("Bearer {}", mint(&wrong_iss, Algorithm::HS256, SECRET))),
        ),
        (
            "no exp",
            Some(format!("Bearer {}", mint(&no_exp, Algorithm::HS256, SECRET))),
        ),
        (
            "other key",
            Some(format!(
                "Bearer {}",
                mint(
                    &claims_for(admin),
                    Algorithm::HS256,
                    "another-key-another-key-another"
                )
            )),
        ),
        (
            "other algorithm",
            Some(format!(
                "Bearer {}",
                mint(&claims_for(admin), Algorithm::HS512, SECRET)
            )),
        ),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("tampered", Some(format!("Bearer {tampered}"))),
    ];
    for (name, auth) in cases {
        let mut req = Request::get("/api/v1/work-orders");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let r = send(t.app(), req.body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.body);
        r.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    // The same claims, properly signed, pass.
    t.get("/api/v1/work-orders", &valid).await.data(StatusCode::OK);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn work_orders_create_get_and_paginate() {
    let t = spawn().await;
    let (tech, token) = t.user_a(Role::Technician).await;
    let mut created = Vec::new();
    for i in 1..=3 {
        let r = t
            .post(
                "/api/v1/work-orders",
                &token,
                json!({"title": format!("Replace bearing {i}"), "priority": "high", "equipmentId": t.a.equipment.id}),
            )
            .await;
        let wo = r.data(StatusCode::CREATED);
        assert_eq!(wo["status"], "open");
        assert_eq!(wo["source"], "manual");
        assert_eq!(wo["priority"], "high");
        assert_eq!(wo["code"], format!("WO-{i:06}"));
        assert_eq!(wo["requestedBy"], json!(tech.id));
        created.push(wo["id"].as_str().unwrap().to_string());
    }

    let r = t
        .get(&format!("/api/v1/work-orders/{}", created[0]), &token)
        .await;
    let wo = r.data(StatusCode::OK);
    assert_eq!(wo["title"], "Replace bearing 1");
    assert_eq!(wo["anomaly"], Value::Null);

    let first = t.get("/api/v1/work-orders?limit=2", &token).await;
    let items = first.data(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let cursor = first.body["meta"]["nextCursor"].as_str().unwrap().to_string();
    let second = t
        .get(&format!("/api/v1/work-orders?limit=2&cursor={cursor}"), &token)
        .await;
    let rest = second.data(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(rest.len(), 1);
    assert!(second.body["meta"].get("nextCursor").is_none());

    let mut seen: Vec<String> = items
        .iter()
        .chain(rest.iter())
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    // Newest first.
    assert_eq!(seen[0], created[2]);
    seen.sort();
    created.sort();
    assert_eq!(seen, created);

    // Filters and search.
    let r = t
        .get("/api/v1/work-orders?q=bearing&status=open&priority=high", &token)
        .await;
    assert_eq!(r.data(StatusCode::OK).as_array().unwrap().len(), 3);
    let r = t.get("/api/v1/work-orders?status=completed", &token).await;
    assert_eq!(r.data(StatusCode::OK).as_array().unwrap().len(), 0);
    t.get("/api/v1/work-orders?status=bogus", &token)
        .await
        .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    t.get("/api/v1/work-orders?cursor=nope", &token)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    t.get("/api/v1/work-orders?limit=0", &token)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn status_changes_follow_the_machine() {
    let t = spawn().await;
    let (_, token) = t.user_a(Role::Technician).await;
    let wo = t
        .post("/api/v1/work-orders", &token, json!({"title": "Check pump"}))
        .await;
    let id = wo.data(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    let status_uri = format!("/api/v1/work-orders/{id}/status");
    // Corrective work is completed with its failure codes (see
    // work_orders::completion_requirements; api/tests/work_order_details.rs).
    let codes = json!({"problemCode": "NOI", "causeCode": "LUB", "remedyCode": "LUB"});
    t.call(
        Method::PATCH,
        &format!("/api/v1/work-orders/{id}"),
        Some(&token),
        Some(codes),
    )
    .await
    .data(StatusCode::OK);

    for to in ["in_progress", "on_hold", "in_progress", "completed"] {
        let r = t
            .post(&status_uri, &token, json!({"status": to, "note": "step"}))
            .await;
        assert_eq!(r.data(StatusCode::OK)["status"], to);
    }
    let r = t.get(&format!("/api/v1/work-orders/{id}"), &token).await;
    assert!(r.data(StatusCode::OK)["completedAt"].is_string());

    let r = t.post(&status_uri, &token, json!({"status": "open"})).await;
    let err = r.error(StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_eq!(err["message"], "cannot change status from completed to open");
    let r = t.get(&format!("/api/v1/work-orders/{id}"), &token).await;
    assert_eq!(
        r.data(StatusCode::OK)["status"],
        "completed",
        "unchanged after a refused transition"
    );

    // Unknown status value: the body's shape is wrong.
    let r = t.post(&status_uri, &token, json!({"status": "done"})).await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "status");

    // Unknown id.
    let r = t
        .post(
            &format!("/api/v1/work-orders/{}/status", Uuid::new_v4()),
            &token,
            json!({"status": "in_progress"}),
        )
        .await;
    r.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn bad_requests_come_back_in_the_envelope() {
    let t = spawn().await;
    let token = t.token(&t.a.admin);

    // Model validation: details name the fields.
    let r = t
        .post("/api/v1/work-orders", &token, json!({"title": "   "}))
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    let fields: Vec<&str> = err["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title"]);

    // Body shape: missing field, wrong type.
    let r = t
        .post("/api/v1/work-orders", &token, json!({"description": "no title"}))
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "title");
    let r = t
        .post(
            "/api/v1/work-orders",
            &token,
            json!({"title": "x", "priority": "urgent"}),
        )
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "priority");
    let r = t.post("/api/v1/work-orders", &token, json!({"title": 42})).await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // References into nothing.
    let r = t
        .post(
            "/api/v1/work-orders",
            &token,
            json!({"title": "x", "equipmentId": Uuid::new_v4()}),
        )
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "equipmentId");

    // Malformed JSON.
    let req = Request::post("/api/v1/work-orders")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"title\": \"x\",,"))
        .unwrap();
    send(t.app(), req)
        .await
        .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    // Not JSON at all.
    let req = Request::post("/api/v1/work-orders")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from("title=x"))
        .unwrap();
    send(t.app(), req)
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");

    // Too large.
    let big = json!({"title": "x", "description": "a".repeat(1024 * 1024 + 10)});
    t.post("/api/v1/work-orders", &token, big)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

    // Non-UUID path parameters.
    for uri in [
        "/api/v1/work-orders/not-a-uuid",
        "/api/v1/equipment/123",
        "/api/v1/sensors/xyz/readings",
        "/api/v1/anomalies/zzz",
    ] {
        t.get(uri, &token)
            .await
            .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }

    // Unknown routes and methods under /api.
    t.get("/api/v1/nope", &token)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.get("/api/v2/work-orders", &token)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = t.call(Method::GET, "/api", None, None).await;
    r.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let r = t
        .call(Method::DELETE, "/api/v1/work-orders", Some(&token), None)
        .await;
    r.error(StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST");
    assert!(r.headers.get(header::ALLOW).is_some());

    // Query of the wrong type.
    t.get("/api/v1/sensors?equipmentId=abc", &token)
        .await
        .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn permissions_are_enforced() {
    let t = spawn().await;
    let (_, requester) = t.user_a(Role::Requester).await;
    let (_, tech) = t.user_a(Role::Technician).await;

    // A requester may create and view, but not change status.
    let r = t
        .post(
            "/api/v1/work-orders",
            &requester,
            json!({"title": "Leak at valve"}),
        )
        .await;
    let id = r.data(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    let r = t
        .post(
            &format!("/api/v1/work-orders/{id}/status"),
            &requester,
            json!({"status": "in_progress"}),
        )
        .await;
    let err = r.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(err["message"], "missing permission work_orders:update");
    let r = t.get(&format!("/api/v1/work-orders/{id}"), &requester).await;
    assert_eq!(r.data(StatusCode::OK)["status"], "open");

    t.get("/api/v1/users", &requester)
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.get("/api/v1/anomalies", &requester)
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.get(&format!("/api/v1/sensors/{}/readings", t.a.sensor.id), &requester)
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Assigning needs work_orders:assign.
    t.post(
        "/api/v1/work-orders",
        &requester,
        json!({"title": "x", "assignedTo": t.a.admin.id}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "FORBIDDEN");

    // A technician may change status but not register assets, devices or users.
    t.post(
        &format!("/api/v1/work-orders/{id}/status"),
        &tech,
        json!({"status": "in_progress"}),
    )
    .await
    .data(StatusCode::OK);
    t.post(
        "/api/v1/equipment",
        &tech,
        json!({"name": "Fan", "assetTag": "F-1"}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.post("/api/v1/devices", &tech, json!({"name": "gw9"}))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.get("/api/v1/dead-letters", &tech)
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.post(
        "/api/v1/users",
        &tech,
        json!({"email": "x@acme.test", "name": "X", "role": "admin", "password": PASSWORD}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn organizations_never_see_each_other() {
    let t = spawn().await;
    let token_a = t.token(&t.a.admin);
    let wo_b = create_wo_in_b(&t).await;
    t.post("/api/v1/work-orders", &token_a, json!({"title": "acme job"}))
        .await
        .data(StatusCode::CREATED);

    // Foreign ids are simply not there.
    t.get(&format!("/api/v1/work-orders/{}", wo_b.id), &token_a)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.post(
        &format!("/api/v1/work-orders/{}/status", wo_b.id),
        &token_a,
        json!({"status": "cancelled"}),
    )
    .await
    .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.get(&format!("/api/v1/equipment/{}", t.b.equipment.id), &token_a)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.get(&format!("/api/v1/sensors/{}", t.b.sensor.id), &token_a)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.get(&format!("/api/v1/sensors/{}/readings", t.b.sensor.id), &token_a)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Nor can they be referenced.
    let r = t
        .post(
            "/api/v1/work-orders",
            &token_a,
            json!({"title": "x", "equipmentId": t.b.equipment.id}),
        )
        .await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // Lists hold only A's rows.
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let wos = ids(t.get("/api/v1/work-orders", &token_a).await.data(StatusCode::OK));
    assert_eq!(wos.len(), 1);
    assert!(!wos.contains(&wo_b.id.to_string()));
    let eqs = ids(t.get("/api/v1/equipment", &token_a).await.data(StatusCode::OK));
    assert_eq!(eqs, vec![t.a.equipment.id.to_string()]);
    let sensors = ids(t.get("/api/v1/sensors", &token_a).await.data(StatusCode::OK));
    assert_eq!(sensors, vec![t.a.sensor.id.to_string()]);
    let users = ids(t.get("/api/v1/users", &token_a).await.data(StatusCode::OK));
    assert_eq!(users, vec![t.a.admin.id.to_string()]);
    let devices = t.get("/api/v1/devices", &token_a).await;
    assert_eq!(devices.data(StatusCode::OK).as_array().unwrap().len(), 1);
    let tree = t.get("/api/v1/equipment/tree", &token_a).await;
    assert_eq!(tree.data(StatusCode::OK).as_array().unwrap().len(), 1);

    // And B sees its own work order but not A's.
    let token_b = t.token(&t.b.admin);
    let wos_b = ids(t.get("/api/v1/work-orders", &token_b).await.data(StatusCode::OK));
    assert_eq!(wos_b, vec![wo_b.id.to_string()]);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn readings_come_back_in_buckets() {
    let t = spawn().await;
    let (_, token) = t.user_a(Role::Technician).await;
    let base = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let mut tx = t.db().tenant(t.a.id).await.unwrap();
    for i in 0..120i64 {
        sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, $4)")
            .bind(t.a.id)
            .bind(t.a.sensor.id)
            .bind(base + Duration::seconds(i * 30))
            .bind(i as f64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let from = base.to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = (base + Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let uri = format!(
        "/api/v1/sensors/{}/readings?from={from}&to={to}&maxPoints=6",
        t.a.sensor.id
    );
    let r = t.get(&uri, &token).await;
    let series = r.data(StatusCode::OK);
    assert_eq!(series["sensorId"], json!(t.a.sensor.id));
    assert_eq!(series["bucketSeconds"], 600.0);
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 6);
    let total: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 120);
    assert_eq!(buckets[0]["min"], 0.0);
    assert_eq!(buckets[0]["max"], 19.0);
    assert_eq!(buckets[5]["max"], 119.0);

    // Bad ranges are validation errors; unknown sensors are 404.
    let r = t
        .get(
            &format!("/api/v1/sensors/{}/readings?from={to}&to={from}", t.a.sensor.id),
            &token,
        )
        .await;
    r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    t.get(&format!("/api/v1/sensors/{}/readings", Uuid::new_v4()), &token)
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn registry_resources_round_trip() {
    let t = spawn().await;
    let token = t.token(&t.a.admin);

    let r = t
        .post(
            "/api/v1/equipment",
            &token,
            json!({"name": "Motor", "assetTag": "M-1", "parentId": t.a.equipment.id, "criticality": "critical"}),
        )
        .await;
    let motor = r.data(StatusCode::CREATED).clone();
    t.post(
        "/api/v1/equipment",
        &token,
        json!({"name": "Dup", "assetTag": "M-1"}),
    )
    .await
    .error(StatusCode::CONFLICT, "CONFLICT");
    let r = t
        .get(
            &format!("/api/v1/equipment?parentId={}", t.a.equipment.id),
            &token,
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)[0]["id"], motor["id"]);
    let r = t.get("/api/v1/equipment?q=mot", &token).await;
    assert_eq!(r.data(StatusCode::OK).as_array().unwrap().len(), 1);
    let r = t.get("/api/v1/equipment/tree", &token).await;
    assert_eq!(r.data(StatusCode::OK)[0]["children"][0]["id"], motor["id"]);

    let r = t
        .post(
            "/api/v1/devices",
            &token,
            json!({"name": "gw-2", "description": "line 2"}),
        )
        .await;
    let creds = r.data(StatusCode::CREATED).clone();
    assert_eq!(creds["secret"].as_str().unwrap().len(), 32);
    let device_id = creds["device"]["id"].clone();
    let r = t
        .post(
            "/api/v1/sensors",
            &token,
            json!({"deviceId": device_id, "equipmentId": motor["id"], "metric": "vibration", "unit": "mm/s"}),
        )
        .await;
    let sensor = r.data(StatusCode::CREATED).clone();
    let r = t
        .get(
            &format!("/api/v1/sensors?deviceId={}", device_id.as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(r.data(StatusCode::OK).as_array().unwrap().len(), 1);
    let r = t
        .get(
            &format!("/api/v1/sensors/{}", sensor["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)["metric"], "vibration");

    let r = t
        .post(
            "/api/v1/users",
            &token,
            json!({"email": "tech@acme.test", "name": "Tech", "role": "technician", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.data(StatusCode::CREATED)["role"], "technician");
    let r = t
        .post(
            "/api/v1/users",
            &token,
            json!({"email": "bad", "name": "", "role": "technician", "password": "short"}),
        )
        .await;
    let err = r.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"].as_array().unwrap().len(), 3);
    let r = t.get("/api/v1/users", &token).await;
    assert_eq!(r.data(StatusCode::OK).as_array().unwrap().len(), 2);

    // The new user can sign in.
    let r = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "tech@acme.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.data(StatusCode::OK)["user"]["role"], "technician");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn anomalies_and_dead_letters() {
    use maintainpro_models::anomalies::{self, NewAnomaly};
    use maintainpro_models::dead_letters::{self, NewDeadLetter};

    let t = spawn().await;
    let token = t.token(&t.a.admin);
    let mut tx = t.db().tenant(t.a.id).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3i64 {
        let a = anomalies::open(
            &mut tx,
            &system(t.a.id),
            NewAnomaly {
                sensor_id: t.a.sensor.id,
                equipment_id: t.a.equipment.id,
                kind: "spike".into(),
                detector: "test".into(),
                severity: "high".into(),
                score: 5.0,
                started_at: Utc::now() - Duration::minutes(10 - i),
                peak_value: 99.0,
                baseline: Some(70.0),
                details: json!({}),
            },
        )
        .await
        .unwrap();
        ids.push(a.id);
    }
    tx.commit().await.unwrap();
    dead_letters::insert_many(
        t.db(),
        &[
            NewDeadLetter {
                organization_id: Some(t.a.id),
                topic: "mp/v1/acme/gw/telemetry".into(),
                payload: b"{oops".to_vec(),
                reason: "malformed_payload".into(),
                detail: "expected value".into(),
            },
            NewDeadLetter {
                organization_id: Some(t.b.id),
                topic: "mp/v1/globex/gw/telemetry".into(),
                payload: b"x".to_vec(),
                reason: "malformed_payload".into(),
                detail: String::new(),
            },
        ],
    )
    .await
    .unwrap();

    let r = t.get("/api/v1/anomalies?limit=2&status=open", &token).await;
    let page = r.data(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], json!(ids[2]));
    let cursor = r.body["meta"]["nextCursor"].as_str().unwrap().to_string();
    let r = t
        .get(&format!("/api/v1/anomalies?limit=2&cursor={cursor}"), &token)
        .await;
    assert_eq!(r.data(StatusCode::OK)[0]["id"], json!(ids[0]));
    let r = t.get(&format!("/api/v1/anomalies/{}", ids[1]), &token).await;
    assert_eq!(r.data(StatusCode::OK)["kind"], "spike");
    t.get("/api/v1/anomalies?status=weird", &token)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    let r = t.get("/api/v1/dead-letters?limit=10", &token).await;
    let letters = r.data(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "only acme's dead letters");
    assert_eq!(letters[0]["payloadText"], "{oops");
    t.get("/api/v1/dead-letters?limit=0", &token)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // A work order raised by an anomaly shows it; B cannot see the anomaly.
    let mut tx = t.db().tenant(t.a.id).await.unwrap();
    let raised = work_orders::raise_auto(
        &mut tx,
        &system(t.a.id),
        work_orders::AutoRaise {
            anomaly_id: ids[0],
            equipment_id: t.a.equipment.id,
            sensor_id: t.a.sensor.id,
            failure_mode: "process:bearing_temp".into(),
            severity: "high".into(),
            evidence: json!({"similar": []}),
            title: "Bearing temperature spike".into(),
            description: String::new(),
            kind: work_orders::Kind::Corrective,
        },
        &maintainpro_models::auto_policy::AutoPolicy::default(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let raised = raised.work_order().unwrap();
    let r = t.get(&format!("/api/v1/work-orders/{}", raised.id), &token).await;
    let wo = r.data(StatusCode::OK);
    assert_eq!(wo["source"], "auto");
    assert_eq!(wo["evidence"], json!({"similar": []}));
    assert_eq!(wo["verdict"], Value::Null);
    assert_eq!(wo["anomaly"]["id"], json!(ids[0]));
    t.get(&format!("/api/v1/anomalies/{}", ids[0]), &t.token(&t.b.admin))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let t = spawn().await;
    let r = t.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/equipment",
        "/api/v1/equipment/tree",
        "/api/v1/equipment/{id}",
        "/api/v1/devices",
        "/api/v1/sensors",
        "/api/v1/sensors/{id}",
        "/api/v1/sensors/{id}/readings",
        "/api/v1/anomalies",
        "/api/v1/anomalies/{id}",
        "/api/v1/work-orders",
        "/api/v1/work-orders/{id}",
        "/api/v1/work-orders/{id}/status",
        "/api/v1/dead-letters",
        "/api/v1/users",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(paths["/api/v1/work-orders"].get("post").is_some());
    assert!(paths["/api/v1/work-orders/{id}/status"].get("post").is_some());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"].get("WorkOrder").is_some());
    assert!(doc["components"]["schemas"].get("ErrorEnvelope").is_some());
    // The document matches the function the binary uses.
    assert_eq!(serde_json::to_value(maintainpro_api::openapi()).unwrap(), *doc);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn probes_request_ids_and_root() {
    let t = spawn().await;
    let r = t.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    assert!(r.headers.get("x-request-id").is_some());
    let r = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);

    // The client's request id is kept, in the header and the envelope.
    let req = Request::get("/api/v1/me")
        .header("x-request-id", "client-req-42")
        .body(Body::empty())
        .unwrap();
    let r = send(t.app(), req).await;
    assert_eq!(r.headers.get("x-request-id").unwrap(), "client-req-42");
    assert_eq!(
        r.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED")["requestId"],
        "client-req-42"
    );
    // A generated one is a UUID.
    let r = t.call(Method::GET, "/api/v1/me", None, None).await;
    let id = r.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok());

    let r = t.call(Method::GET, "/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "/api/v1/openapi.json");

    // Readiness fails once the database is gone.
    t.db().close().await;
    let r = t.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn static_ui_is_served_with_spa_fallback() {
    let tdb = test_db().await;
    let dir = std::env::temp_dir().join(format!("mp-api-ui-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<html>maintainpro ui</html>").unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let mut cfg = config();
    cfg.static_dir = Some(dir.clone());
    let app = router(AppState::new(tdb.db.clone(), cfg));

    let body = |r: &Resp| r.body.as_str().unwrap_or_default().to_string();
    let r = send(app.clone(), Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(body(&r).contains("maintainpro ui"));
    let r = send(
        app.clone(),
        Request::get("/assets/app.js").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(body(&r), "console.log(1)");
    let r = send(
        app.clone(),
        Request::get("/work-orders/123").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        body(&r).contains("maintainpro ui"),
        "client-side routes get index.html"
    );
    // The API keeps its own 404s.
    let r = send(
        app.clone(),
        Request::get("/api/v1/nope").body(Body::empty()).unwrap(),
    )
    .await;
    r.error(StatusCode::NOT_FOUND, "NOT_FOUND");

    std::fs::remove_dir_all(&dir).unwrap();
    tdb.cleanup().await;
}

#[tokio::test]
async fn run_serves_until_cancelled() {
    let tdb = test_db().await;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(maintainpro_api::run(
        tdb.db.clone(),
        config(),
        listener,
        shutdown.clone(),
    ));

    // A raw HTTP/1.1 request, to avoid an HTTP client dependency.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    shutdown.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok());

    // An empty key is refused up front.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let mut bad = config();
    bad.jwt_secret.clear();
    let err = maintainpro_api::run(
        tdb.db.clone(),
        bad,
        listener,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    assert!(err.is_err());
    tdb.cleanup().await;
}

#[tokio::test]
async fn claims_type_matches_issued_tokens() {
    // The public Claims type decodes what the API issues (for other services).
    let t = spawn().await;
    let token = t.token(&t.a.admin);
    let claims: Claims = t.state.jwt.verify(&token).unwrap();
    assert_eq!(claims.org, t.a.id);
    assert_eq!(claims.iss, "maintainpro");
    assert_eq!(claims.aud, "maintainpro-api");
    assert_eq!(claims.exp - claims.iat, 900);
    t.tdb.cleanup().await;
}
