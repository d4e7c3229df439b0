//! Webhooks end to end: a real HTTP receiver gets signed deliveries for work
//! orders created through the API, failures are retried with backoff and
//! logged, and private targets are refused by default.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use maintainpro_api::webhook_delivery::{deliver_due, DeliveryConfig};
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::testkit::{self, test_db, TestDb};
use maintainpro_models::webhooks::Backoff;
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

const SECRET: &str = "test-secret-test-secret-test-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: usize,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut got = r.got.lock().unwrap();
    got.push(Received { headers, body });
    if got.len() <= r.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A receiver on 127.0.0.1:<free port>; returns its URL and its log.
async fn start_receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let r = Receiver {
        got: Arc::default(),
        fail_first,
    };
    let got = r.got.clone();
    let app = Router::new().route("/hook", post(receive)).with_state(r);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

struct T {
    tdb: TestDb,
    state: AppState,
    token: String,
    org: uuid::Uuid,
}

async fn setup(allow_private: bool) -> T {
    let tdb = test_db().await;
    let org = testkit::seed_org(&tdb.db, "acme", &[]).await;
    let mut config = ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SECRET);
    config.allow_private_webhook_targets = allow_private;
    let state = AppState::new(tdb.db.clone(), config);
    let token = state.jwt.issue(&org.admin).unwrap();
    T {
        tdb,
        state,
        token,
        org: org.tenant.org_id,
    }
}

impl T {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn create_work_order(&self, title: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/work-orders",
                Some(json!({ "title": title })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"].clone()
    }

    async fn create_webhook(&self, url: &str, kinds: Value) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({ "url": url, "eventKinds": kinds })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"].clone()
    }
}

fn delivery_config() -> DeliveryConfig {
    DeliveryConfig {
        interval: Duration::from_millis(50),
        backoff: Backoff {
            base: Duration::from_millis(100),
            max_attempts: 8,
        },
        timeout: Duration::from_secs(5),
        batch: 50,
        allow_private_targets: true,
    }
}

/// Runs delivery passes until `done` holds (or fails after 15 s).
async fn deliver_until(t: &T, cfg: &DeliveryConfig, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries did not arrive in time"
        );
        deliver_due(&t.tdb.db, cfg).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The webhook's delivery of the `work_order.created` event, if any.
async fn wo_delivery(t: &T, webhook_id: &str) -> Option<Value> {
    let uri = format!("/api/v1/webhooks/{webhook_id}/deliveries");
    let (status, body) = t.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["eventKind"] == "work_order.created")
        .cloned()
}

/// Verifies a Standard Webhooks signature the way a receiver would.
fn verify(secret: &str, r: &Received) -> bool {
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let sig = r.headers["webhook-signature"].to_str().unwrap();
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    sig.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn receiver_gets_signed_work_order_events() {
    let t = setup(true).await;
    let (url, got) = start_receiver(0).await;
    // Created before the webhook: must not be delivered.
    t.create_work_order("before the webhook").await;
    let hook = t.create_webhook(&url, json!(["work_order.created"])).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));

    // The secret is shown once: the list does not carry it.
    let (status, list) = t.call(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none());

    let wo1 = t.create_work_order("pump leaks").await;
    let wo2 = t.create_work_order("belt squeaks").await;
    let cfg = delivery_config();
    deliver_until(&t, &cfg, || got.lock().unwrap().len() >= 2).await;
    // A further pass delivers nothing twice.
    deliver_due(&t.tdb.db, &cfg).await.unwrap();

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "exactly the two work orders after the webhook");
    let mut subjects = Vec::new();
    for r in &got {
        assert!(verify(&secret, r), "signature must verify");
        assert!(!verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", r));
        let ts: i64 = r.headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["kind"], "work_order.created");
        assert_eq!(
            r.headers["webhook-id"].to_str().unwrap(),
            format!("evt_{}", body["id"])
        );
        assert!(body["createdAt"].is_string());
        assert_eq!(body["payload"]["id"], body["subjectId"]);
        subjects.push(body["subjectId"].clone());
    }
    assert_eq!(subjects, vec![wo1["id"].clone(), wo2["id"].clone()]);

    // The delivery log shows both as succeeded after one attempt.
    let id = hook["id"].as_str().unwrap();
    let (status, log) = t
        .call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let log = log["data"].as_array().unwrap().clone();
    assert_eq!(log.len(), 2);
    for d in &log {
        assert_eq!(d["status"], "succeeded");
        assert_eq!(d["attempt"], 1);
        assert_eq!(d["lastStatusCode"], 204);
        assert_eq!(d["eventKind"], "work_order.created");
    }

    // Deleting the webhook removes it; its log is gone with it.
    let (status, _) = t
        .call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = t
        .call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn failing_receiver_is_retried_with_backoff_until_it_succeeds() {
    let t = setup(true).await;
    let (url, got) = start_receiver(2).await;
    let hook = t.create_webhook(&url, json!(["work_order.created"])).await;
    let id = hook["id"].as_str().unwrap().to_string();
    let wo = t.create_work_order("retry me").await;
    let cfg = delivery_config();

    // First attempt: 500, recorded, retried later (not immediately).
    deliver_until(&t, &cfg, || !got.lock().unwrap().is_empty()).await;
    let d = wo_delivery(&t, &id).await.unwrap();
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempt"], 1);
    assert_eq!(d["lastStatusCode"], 500);
    assert!(d["lastError"].as_str().unwrap().contains("500"));
    assert!(d["nextAttemptAt"].is_string());

    deliver_until(&t, &cfg, || got.lock().unwrap().len() >= 3).await;
    let d = wo_delivery(&t, &id).await.unwrap();
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempt"], 3);
    assert_eq!(d["lastStatusCode"], 204);
    assert!(d["nextAttemptAt"].is_null());

    // The three requests carried the same event and message id.
    let got = got.lock().unwrap().clone();
    let bodies: Vec<Value> = got
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["subjectId"] == wo["id"])
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|b| b["id"] == bodies[0]["id"]));
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn receiver_that_never_answers_2xx_ends_dead() {
    let t = setup(true).await;
    let (url, got) = start_receiver(usize::MAX).await;
    let hook = t.create_webhook(&url, json!(["work_order.created"])).await;
    t.create_work_order("never delivered").await;
    let mut cfg = delivery_config();
    cfg.backoff = Backoff {
        base: Duration::from_millis(10),
        max_attempts: 3,
    };
    deliver_until(&t, &cfg, || got.lock().unwrap().len() >= 3).await;
    // No attempt after the last one.
    for _ in 0..5 {
        deliver_due(&t.tdb.db, &cfg).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(got.lock().unwrap().len(), 3);
    let id = hook["id"].as_str().unwrap();
    let (_, log) = t
        .call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), None)
        .await;
    assert_eq!(log["data"][0]["status"], "dead");
    assert_eq!(log["data"][0]["attempt"], 3);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn private_targets_are_refused_by_default() {
    let t = setup(false).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.20:8080/x",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9000/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
    ] {
        let (status, body) = t
            .call(Method::POST, "/api/v1/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["details"][0]["field"], "url");
    }
    for url in [
        "ftp://93.184.216.34/",
        "not a url",
        "http://user:pw@93.184.216.34/",
    ] {
        let (status, _) = t
            .call(Method::POST, "/api/v1/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
    }
    let (_, list) = t.call(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    // A public address is accepted.
    t.create_webhook("https://93.184.216.34/hook", json!([])).await;
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn delivery_time_check_refuses_private_targets_too() {
    // Created while private targets were allowed, delivered by a worker that
    // does not allow them: the attempt fails without reaching the receiver.
    let t = setup(true).await;
    let (url, got) = start_receiver(0).await;
    let hook = t.create_webhook(&url, json!([])).await;
    t.create_work_order("blocked").await;
    let mut cfg = delivery_config();
    cfg.allow_private_targets = false;
    let id = hook["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let d = loop {
        assert!(tokio::time::Instant::now() < deadline, "no attempt recorded");
        deliver_due(&t.tdb.db, &cfg).await.unwrap();
        let (_, log) = t
            .call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), None)
            .await;
        if let Some(d) = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["attempt"].as_i64() > Some(0))
        {
            break d.clone();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    assert_eq!(d["status"], "failed");
    assert!(d["lastError"].as_str().unwrap().contains("target refused"), "{d}");
    assert!(got.lock().unwrap().is_empty());
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn technicians_cannot_manage_webhooks() {
    let t = setup(true).await;
    let mut tx = t
        .tdb
        .db
        .tenant(t.state.jwt.verify(&t.token).unwrap().org)
        .await
        .unwrap();
    let org = t.state.jwt.verify(&t.token).unwrap().org;
    let tech = maintainpro_models::users::create(
        &mut tx,
        &maintainpro_models::Tenant::system(org, "test"),
        maintainpro_models::users::NewUser {
            email: "tech@acme.test".into(),
            name: "Tech".into(),
            role: maintainpro_models::auth::Role::Technician,
            password: testkit::SEED_PASSWORD.into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let tech_t = T {
        org: t.org,
        token: t.state.jwt.issue(&tech).unwrap(),
        state: t.state.clone(),
        tdb: t.tdb,
    };
    let (status, _) = tech_t.call(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = tech_t
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://93.184.216.34/"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    tech_t.tdb.cleanup().await;
}

#[tokio::test]
async fn an_event_committed_late_is_not_skipped() {
    // A transaction takes an event id, a later one commits first: the
    // enqueuer must not move past the first one's event while it is open.
    let t = setup(true).await;
    let (url, got) = start_receiver(0).await;
    t.create_webhook(&url, json!(["work_order.created"])).await;
    let cfg = delivery_config();

    let mut slow = t.tdb.db.tenant(t.org).await.unwrap();
    // An event written directly (creating a work order would hold the
    // organization's number counter and block the second one).
    let slow_id = uuid::Uuid::new_v4();
    maintainpro_models::events::emit(
        &mut slow,
        &maintainpro_models::Tenant::system(t.org, "test"),
        "work_order.created",
        Some(slow_id),
        &json!({ "id": slow_id }),
    )
    .await
    .unwrap();
    let fast = t.create_work_order("fast").await;
    for _ in 0..5 {
        deliver_due(&t.tdb.db, &cfg).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    slow.commit().await.unwrap();
    deliver_until(&t, &cfg, || got.lock().unwrap().len() >= 2).await;

    let subjects: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["subjectId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects.contains(&slow_id.to_string()),
        "the late event was skipped"
    );
    assert!(subjects.contains(&fast["id"].as_str().unwrap().to_string()));
    t.tdb.cleanup().await;
}
