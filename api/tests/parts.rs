//! The parts endpoints over HTTP against a real PostgreSQL: the catalog and
//! stock locations, movements through the ledger, reservations and the parts
//! cost of a work order, the permission matrix (403) and other organizations'
//! ids (404).

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{self, test_db, TestDb};
use maintainpro_models::users::{self, NewUser, User};
use maintainpro_models::{Actor, Tenant};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &str = "test-secret-test-secret-test-secret";

struct TestApp {
    tdb: TestDb,
    state: AppState,
    a: Uuid,
    admin_a: String,
    admin_b: String,
}

impl TestApp {
    async fn spawn() -> TestApp {
        let tdb = test_db().await;
        let a = testkit::seed_org(&tdb.db, "parts-a", &[]).await;
        let b = testkit::seed_org(&tdb.db, "parts-b", &[]).await;
        let state = AppState::new(
            tdb.db.clone(),
            ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SECRET),
        );
        let admin_a = state.jwt.issue(&a.admin).unwrap();
        let admin_b = state.jwt.issue(&b.admin).unwrap();
        TestApp {
            tdb,
            state,
            a: a.tenant.org_id,
            admin_a,
            admin_b,
        }
    }

    /// A token for a new user of org A with `role`.
    async fn token_a(&self, role: Role) -> String {
        let mut tx = self.tdb.db.tenant(self.a).await.unwrap();
        let user: User = users::create(
            &mut tx,
            &Tenant {
                org_id: self.a,
                actor: Actor::System("test"),
            },
            NewUser {
                email: format!("{role}-{}@parts-a.test", Uuid::new_v4().simple()),
                name: format!("{role} user"),
                role,
                password: testkit::SEED_PASSWORD.into(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.state.jwt.issue(&user).unwrap()
    }

    async fn call(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
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
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, token, None).await
    }

    async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    /// POST that must answer `status`; returns `data`.
    async fn post_ok(&self, uri: &str, token: &str, body: Value, status: StatusCode) -> Value {
        let (s, b) = self.post(uri, token, body).await;
        assert_eq!(s, status, "POST {uri}: {b}");
        b["data"].clone()
    }

    /// A location, a part and a work order in the organization of `token`.
    async fn stock(&self, token: &str, sku: &str) -> (String, String, String) {
        let loc = self
            .post_ok(
                "/api/v1/stock-locations",
                token,
                json!({"name": format!("Store {sku}")}),
                StatusCode::CREATED,
            )
            .await;
        let part = self
            .post_ok(
                "/api/v1/parts",
                token,
                json!({"sku": sku, "name": format!("Part {sku}"), "unitCostCents": 1500, "reorderPoint": 2}),
                StatusCode::CREATED,
            )
            .await;
        let wo = self
            .post_ok(
                "/api/v1/work-orders",
                token,
                json!({"title": format!("Job for {sku}")}),
                StatusCode::CREATED,
            )
            .await;
        let id = |v: &Value| v["id"].as_str().unwrap().to_string();
        (id(&loc), id(&part), id(&wo))
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn catalog_ledger_reservations_and_cost() {
    let t = TestApp::spawn().await;
    let tok = t.admin_a.clone();
    let (loc, part, wo) = t.stock(&tok, "BRG-6204").await;

    // Catalog rules: SKU unique, fields validated, location names unique.
    let (s, b) = t
        .post("/api/v1/parts", &tok, json!({"sku": "BRG-6204", "name": "again"}))
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::CONFLICT, "CONFLICT"), "{b}");
    let (s, b) = t
        .post(
            "/api/v1/parts",
            &tok,
            json!({"sku": "", "name": "x", "unitCostCents": -1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let fields: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sku", "unitCostCents"]);
    let (s, _) = t
        .post("/api/v1/stock-locations", &tok, json!({"name": "Store BRG-6204"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let van = t
        .post_ok(
            "/api/v1/stock-locations",
            &tok,
            json!({"name": "Van 1"}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = t.get("/api/v1/stock-locations", &tok).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["data"].as_array().unwrap().len(), 2);

    // Receive, then try to issue more than is on hand.
    let m = t
        .post_ok(
            &format!("/api/v1/parts/{part}/receive"),
            &tok,
            json!({"locationId": loc, "quantity": 4}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (m["kind"].as_str(), m["quantity"].as_i64()),
        (Some("receive"), Some(4))
    );
    assert_eq!(m["unitCostCents"], 1500);
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part}/issue"),
            &tok,
            json!({"locationId": loc, "quantity": 5, "workOrderId": wo}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["message"], "only 4 on hand at Store BRG-6204");
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part}/issue"),
            &tok,
            json!({"locationId": loc, "quantity": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "missing work order: {b}");
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part}/adjust"),
            &tok,
            json!({"locationId": loc, "quantity": -1, "note": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"][0]["field"], "note");

    // Reserve 3 for the work order, issue 2 of them, return 1 to the van.
    let r = t
        .post_ok(
            &format!("/api/v1/work-orders/{wo}/reservations"),
            &tok,
            json!({"partId": part, "locationId": loc, "quantity": 3}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(r["quantity"], 3);
    let (s, b) = t
        .post(
            &format!("/api/v1/work-orders/{wo}/reservations"),
            &tok,
            json!({"partId": part, "locationId": loc, "quantity": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        b["error"]["message"],
        "only 1 available at Store BRG-6204 (4 on hand, 3 reserved)"
    );
    t.post_ok(
        &format!("/api/v1/parts/{part}/issue"),
        &tok,
        json!({"locationId": loc, "quantity": 2, "workOrderId": wo}),
        StatusCode::CREATED,
    )
    .await;
    t.post_ok(
        &format!("/api/v1/parts/{part}/return"),
        &tok,
        json!({"locationId": van, "quantity": 1, "workOrderId": wo}),
        StatusCode::CREATED,
    )
    .await;

    let (s, b) = t.get(&format!("/api/v1/parts/{part}"), &tok).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let d = &b["data"];
    assert_eq!(
        (
            d["onHand"].as_i64(),
            d["reserved"].as_i64(),
            d["available"].as_i64()
        ),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(d["lowStock"], false);
    let locations = d["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    assert_eq!(locations[0]["locationName"], "Store BRG-6204");
    assert_eq!(
        (locations[0]["onHand"].as_i64(), locations[0]["reserved"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (
            locations[1]["locationName"].as_str(),
            locations[1]["onHand"].as_i64()
        ),
        (Some("Van 1"), Some(1))
    );

    let (s, b) = t.get(&format!("/api/v1/work-orders/{wo}/parts"), &tok).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let d = &b["data"];
    assert_eq!(d["issued"][0]["issued"], 2);
    assert_eq!(d["issued"][0]["returned"], 1);
    assert_eq!(d["issued"][0]["costCents"], 1500);
    assert_eq!(d["reserved"][0]["quantity"], 1);
    assert_eq!(d["totalCostCents"], 1500);

    // The ledger, newest first, in pages.
    let (s, b) = t
        .get(&format!("/api/v1/parts/{part}/movements?limit=2"), &tok)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let kinds: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["return", "issue"]);
    let cursor = b["meta"]["nextCursor"].as_str().unwrap().to_string();
    let (_, b) = t
        .get(
            &format!("/api/v1/parts/{part}/movements?limit=2&cursor={cursor}"),
            &tok,
        )
        .await;
    assert_eq!(b["data"][0]["kind"], "receive");
    assert_eq!(b["data"][0]["onHandAfter"], 4);
    assert!(b["meta"]["nextCursor"].is_null());

    // Search, low-stock filter and PATCH.
    t.stock(&tok, "FLT-100").await;
    let (_, b) = t.get("/api/v1/parts?q=brg", &tok).await;
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    assert_eq!(b["data"][0]["sku"], "BRG-6204");
    let (_, b) = t.get("/api/v1/parts?lowStock=true", &tok).await;
    let low: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(low, ["FLT-100"], "0 available < reorder point 2; BRG has 2");
    let (s, b) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/parts/{part}"),
            &tok,
            Some(json!({"reorderPoint": 3, "name": "Deep-groove bearing"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"]["name"], "Deep-groove bearing");
    assert_eq!(b["data"]["lowStock"], true);
    let (_, b) = t.get("/api/v1/parts?lowStock=true&limit=1", &tok).await;
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    assert!(b["meta"]["nextCursor"].is_string());

    // Releasing the reservation frees its stock.
    let reservation = d["reserved"][0]["id"].as_str().unwrap().to_string();
    let (s, b) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/work-orders/{wo}/reservations/{reservation}"),
            &tok,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = t.get(&format!("/api/v1/parts/{part}"), &tok).await;
    assert_eq!(
        (b["data"]["reserved"].as_i64(), b["data"]["available"].as_i64()),
        (Some(0), Some(3))
    );
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/work-orders/{wo}/reservations/{reservation}"),
            &tok,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The endpoints are in the OpenAPI document.
    let (_, doc) = t.get("/api/v1/openapi.json", &tok).await;
    for path in [
        "/api/v1/parts",
        "/api/v1/parts/{id}",
        "/api/v1/parts/{id}/issue",
        "/api/v1/parts/{id}/movements",
        "/api/v1/stock-locations",
        "/api/v1/work-orders/{id}/reservations",
        "/api/v1/work-orders/{id}/parts",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn permissions_by_role() {
    let t = TestApp::spawn().await;
    let (loc, part, wo) = t.stock(&t.admin_a, "PRM-1").await;
    t.post_ok(
        &format!("/api/v1/parts/{part}/receive"),
        &t.admin_a,
        json!({"locationId": loc, "quantity": 5}),
        StatusCode::CREATED,
    )
    .await;

    let requester = t.token_a(Role::Requester).await;
    let reads = [
        "/api/v1/parts".to_string(),
        format!("/api/v1/parts/{part}"),
        format!("/api/v1/parts/{part}/movements"),
        "/api/v1/stock-locations".to_string(),
        format!("/api/v1/work-orders/{wo}/parts"),
    ];
    for uri in &reads {
        let (s, b) = t.get(uri, &requester).await;
        assert_eq!(
            (s, error_code(&b)),
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
            "GET {uri}: {b}"
        );
    }
    let issue_body = json!({"locationId": loc, "quantity": 1, "workOrderId": wo});
    let writes = [
        ("/api/v1/parts".to_string(), json!({"sku": "X", "name": "x"})),
        ("/api/v1/stock-locations".to_string(), json!({"name": "Shelf"})),
        (
            format!("/api/v1/parts/{part}/receive"),
            json!({"locationId": loc, "quantity": 1}),
        ),
        (format!("/api/v1/parts/{part}/issue"), issue_body.clone()),
        (format!("/api/v1/parts/{part}/return"), issue_body.clone()),
        (
            format!("/api/v1/parts/{part}/adjust"),
            json!({"locationId": loc, "quantity": 1, "note": "x"}),
        ),
        (
            format!("/api/v1/work-orders/{wo}/reservations"),
            json!({"partId": part, "locationId": loc, "quantity": 1}),
        ),
    ];
    for (uri, body) in &writes {
        let (s, b) = t.post(uri, &requester, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "POST {uri}: {b}");
    }

    // A technician sees stock and issues it, but does not manage the catalog.
    let tech = t.token_a(Role::Technician).await;
    for uri in &reads {
        let (s, b) = t.get(uri, &tech).await;
        assert_eq!(s, StatusCode::OK, "GET {uri}: {b}");
    }
    for (uri, body) in &writes[..3] {
        let (s, b) = t.post(uri, &tech, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "POST {uri}: {b}");
    }
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/parts/{part}"),
            &tech,
            Some(json!({"name": "y"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part}/adjust"),
            &tech,
            writes[5].1.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    t.post_ok(&writes[6].0, &tech, writes[6].1.clone(), StatusCode::CREATED)
        .await;
    t.post_ok(&writes[3].0, &tech, issue_body.clone(), StatusCode::CREATED)
        .await;
    t.post_ok(&writes[4].0, &tech, issue_body, StatusCode::CREATED)
        .await;

    // A manager manages the catalog.
    let manager = t.token_a(Role::Manager).await;
    t.post_ok(&writes[0].0, &manager, writes[0].1.clone(), StatusCode::CREATED)
        .await;
    t.post_ok(&writes[5].0, &manager, writes[5].1.clone(), StatusCode::CREATED)
        .await;
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn other_organizations_ids_are_not_found() {
    let t = TestApp::spawn().await;
    let (loc_a, part_a, wo_a) = t.stock(&t.admin_a, "ORG-A").await;
    let (loc_b, part_b, wo_b) = t.stock(&t.admin_b, "ORG-B").await;
    t.post_ok(
        &format!("/api/v1/parts/{part_b}/receive"),
        &t.admin_b,
        json!({"locationId": loc_b, "quantity": 5}),
        StatusCode::CREATED,
    )
    .await;
    let reservation_b = t
        .post_ok(
            &format!("/api/v1/work-orders/{wo_b}/reservations"),
            &t.admin_b,
            json!({"partId": part_b, "locationId": loc_b, "quantity": 1}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let tok = &t.admin_a;
    for uri in [
        format!("/api/v1/parts/{part_b}"),
        format!("/api/v1/parts/{part_b}/movements"),
        format!("/api/v1/work-orders/{wo_b}/parts"),
    ] {
        let (s, b) = t.get(&uri, tok).await;
        assert_eq!(
            (s, error_code(&b)),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
            "GET {uri}: {b}"
        );
    }
    let movement = json!({"locationId": loc_a, "quantity": 1, "workOrderId": wo_a});
    for (uri, body) in [
        (
            format!("/api/v1/parts/{part_b}/receive"),
            json!({"locationId": loc_a, "quantity": 1}),
        ),
        (format!("/api/v1/parts/{part_b}/issue"), movement.clone()),
        (format!("/api/v1/parts/{part_b}/return"), movement),
        (
            format!("/api/v1/parts/{part_b}/adjust"),
            json!({"locationId": loc_a, "quantity": 1, "note": "x"}),
        ),
        (
            format!("/api/v1/work-orders/{wo_b}/reservations"),
            json!({"partId": part_a, "locationId": loc_a, "quantity": 1}),
        ),
    ] {
        let (s, b) = t.post(&uri, tok, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "POST {uri}: {b}");
    }
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/parts/{part_b}"),
            tok,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/work-orders/{wo_b}/reservations/{reservation_b}"),
            tok,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B's location or work order named in A's movement is an invalid reference.
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part_a}/receive"),
            tok,
            json!({"locationId": loc_b, "quantity": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"][0]["field"], "locationId");
    t.post_ok(
        &format!("/api/v1/parts/{part_a}/receive"),
        tok,
        json!({"locationId": loc_a, "quantity": 1}),
        StatusCode::CREATED,
    )
    .await;
    let (s, b) = t
        .post(
            &format!("/api/v1/parts/{part_a}/issue"),
            tok,
            json!({"locationId": loc_a, "quantity": 1, "workOrderId": wo_b}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"][0]["field"], "workOrderId");
    // A's lists hold none of B's rows.
    let (_, b) = t.get("/api/v1/parts", tok).await;
    assert!(b["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != part_b.as_str()));
    let (_, b) = t.get("/api/v1/stock-locations", tok).await;
    assert!(b["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["id"] != loc_b.as_str()));
    // B's reservation is still there, untouched.
    let (_, b) = t
        .get(&format!("/api/v1/work-orders/{wo_b}/parts"), &t.admin_b)
        .await;
    assert_eq!(b["data"]["reserved"][0]["id"], reservation_b.as_str());
    t.tdb.cleanup().await;
}
