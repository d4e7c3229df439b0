//! Walks every operation of the OpenAPI document as each role of one
//! organization, once with the ids of its own rows and once with the ids of
//! another organization's rows, and checks the access rules end to end:
//! 403 exactly where the role lacks the operation's permission (the
//! matrix of `Role::can`), 404 for every foreign id in a path, no foreign
//! id accepted in a body, and never a foreign row in any answer.
//!
//! Nothing here lists the operations by hand: a new operation is walked as
//! soon as it is documented, and the walk stops with a clear message when
//! it meets a path parameter it has no id for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use maintainpro_models::anomalies::{self, NewAnomaly};
use maintainpro_models::auth::{Permission, Role};
use maintainpro_models::dead_letters::{self, NewDeadLetter};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::Db;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use common::{add_user, app, call, login};

/// Operations the walk leaves to their own tests, and why.
const NOT_WALKED: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/api/v1/events/ws",
        "a WebSocket upgrade authenticated by its query token; api/tests/events.rs covers roles and tenancy",
    ),
    (
        "GET",
        "/api/v1/readings/ws",
        "a WebSocket upgrade; api/tests/readings_ws.rs covers its permission, foreign sensors and origins",
    ),
];

/// One organization's rows, by the collection segment that precedes an id
/// in a path (`/work-orders/{id}` → "work-orders"), plus every string that
/// must never show in another organization's answers.
struct World {
    ids: HashMap<&'static str, String>,
    secrets: Vec<String>,
}

impl World {
    fn id(&self, segment: &str, path: &str) -> String {
        match self.ids.get(segment) {
            Some(id) => id.clone(),
            None => panic!(
                "{path}: the access walk has no id for '{segment}' — create one in build_world() \
                 so the new operation is checked too"
            ),
        }
    }
}

/// Body fields holding ids, by the collection they point into.
fn segment_of_field(field: &str) -> &'static str {
    match field.replace('_', "").to_ascii_lowercase().as_str() {
        "equipmentid" | "parentid" => "equipment",
        "sensorid" => "sensors",
        "partid" => "parts",
        "locationid" => "stock-locations",
        "userid" | "userids" | "assignedto" | "assigneeid" | "assignees" => "users",
        "deviceid" => "devices",
        "anomalyid" => "anomalies",
        "requestid" => "requests",
        _ => "work-orders",
    }
}

async fn post(app: &Router, token: &str, uri: &str, body: Value) -> String {
    let (status, resp) = call(app, Method::POST, uri, Some(token), Some(body)).await;
    assert!((200..300).contains(&status), "{uri}: {status} {resp}");
    resp["data"]["id"].as_str().map(str::to_owned).unwrap_or_default()
}

/// Rows of every kind in `org`, created as its admin through the API (and
/// through the models for what only the services write).
async fn build_world(app: &Router, db: &Db, org: &SeededOrg, tag: &str) -> World {
    let token = login(app, &org.admin.email).await;
    let t = token.as_str();
    let secret = format!("zz-{tag}-secret");
    let equipment = org.equipment.id.to_string();
    let wo = post(
        app,
        t,
        "/api/v1/work-orders",
        json!({"title": format!("{secret} work order"), "equipmentId": equipment}),
    )
    .await;
    post(
        app,
        t,
        &format!("/api/v1/work-orders/{wo}/comments"),
        json!({"body": format!("{secret} comment")}),
    )
    .await;
    post(
        app,
        t,
        &format!("/api/v1/work-orders/{wo}/time-logs"),
        json!({"minutes": 30}),
    )
    .await;
    let request = post(
        app,
        t,
        "/api/v1/requests",
        json!({"title": format!("{secret} request"), "equipmentId": equipment}),
    )
    .await;
    let part = post(
        app,
        t,
        "/api/v1/parts",
        json!({"sku": format!("{tag}-SKU"), "name": format!("{secret} part")}),
    )
    .await;
    let location = post(
        app,
        t,
        "/api/v1/stock-locations",
        json!({"name": format!("{secret} store")}),
    )
    .await;
    post(
        app,
        t,
        &format!("/api/v1/parts/{part}/receive"),
        json!({"locationId": location, "quantity": 10}),
    )
    .await;
    let reservation = post(
        app,
        t,
        &format!("/api/v1/work-orders/{wo}/reservations"),
        json!({"partId": part, "locationId": location, "quantity": 1}),
    )
    .await;
    let pm = post(
        app,
        t,
        "/api/v1/pm-schedules",
        json!({"title": format!("{secret} pm"), "equipmentId": equipment, "trigger": "calendar",
               "intervalCount": 7, "intervalUnit": "day"}),
    )
    .await;
    let webhook = post(
        app,
        t,
        "/api/v1/webhooks",
        json!({"url": "https://93.184.216.34/hook", "eventKinds": ["work_order.created"]}),
    )
    .await;
    let user = post(
        app,
        t,
        "/api/v1/users",
        json!({"email": format!("victim@{tag}.example"), "name": format!("{secret} user"),
               "role": "technician", "password": "a long password"}),
    )
    .await;

    let attachment = upload(app, t, &wo).await;
    let (status, checklist) = call(
        app,
        Method::PUT,
        &format!("/api/v1/work-orders/{wo}/checklist"),
        Some(t),
        Some(json!({"items": [{"label": format!("{secret} check")}]})),
    )
    .await;
    assert_eq!(status, 200, "{checklist}");
    let checklist_item = checklist["data"][0]["id"]
        .as_str()
        .expect("a checklist item")
        .to_owned();
    let downtime = post(
        app,
        t,
        &format!("/api/v1/work-orders/{wo}/downtime"),
        json!({"reason": "breakdown", "note": secret}),
    )
    .await;
    let (_, codes) = call(app, Method::GET, "/api/v1/failure-codes", Some(t), None).await;
    let failure_code = codes["data"][0]["id"]
        .as_str()
        .expect("a default failure code")
        .to_owned();

    let mut tx = db.tenant_for(&org.tenant).await.unwrap();
    let anomaly = anomalies::open(
        &mut tx,
        &org.tenant,
        NewAnomaly {
            sensor_id: org.sensors[0].id,
            equipment_id: org.equipment.id,
            kind: "spike".into(),
            detector: "robust_z".into(),
            severity: "high".into(),
            score: 9.0,
            started_at: Utc::now() - Duration::minutes(5),
            peak_value: 99.0,
            baseline: Some(70.0),
            details: json!({"note": secret}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    dead_letters::insert_many(
        db,
        &[NewDeadLetter {
            organization_id: Some(org.tenant.org_id),
            topic: format!("mp/v1/{}/gw-01/telemetry", org.slug),
            payload: secret.clone().into_bytes(),
            reason: "malformed_payload".into(),
            detail: secret.clone(),
        }],
    )
    .await
    .unwrap();

    let ids: HashMap<&'static str, String> = [
        ("work-orders", wo),
        ("requests", request),
        ("parts", part),
        ("stock-locations", location),
        ("reservations", reservation),
        ("pm-schedules", pm),
        ("webhooks", webhook),
        ("users", user),
        ("equipment", equipment),
        ("sensors", org.sensors[0].id.to_string()),
        ("devices", org.device.id.to_string()),
        ("anomalies", anomaly.id.to_string()),
        ("failure-codes", failure_code),
        ("attachments", attachment),
        ("checklist", checklist_item),
        ("downtime", downtime),
    ]
    .into_iter()
    .collect();
    let mut secrets: Vec<String> = ids.values().cloned().collect();
    secrets.extend(org.sensors.iter().map(|s| s.id.to_string()));
    secrets.extend([
        secret,
        org.tenant.org_id.to_string(),
        org.admin.id.to_string(),
        org.admin.email.clone(),
    ]);
    World { ids, secrets }
}

/// A tiny PNG (signature and header chunk) as a multipart upload.
const BOUNDARY: &str = "walk-boundary-7d1c";

fn multipart_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"walk.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &Router, token: &str, work_order: &str) -> String {
    let uri = format!("/api/v1/work-orders/{work_order}/attachments");
    let (status, text) = send(app, Method::POST, &uri, token, Some(Payload::Multipart)).await;
    assert!((200..300).contains(&status), "{uri}: {status} {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// What a walked request carries.
#[derive(Debug, Clone)]
enum Payload {
    Json(Value),
    Multipart,
}

/// A documented operation as the walk sees it.
struct Op {
    method: Method,
    path: String,
    permission: Option<Permission>,
    signed_in: bool,
    operation: Value,
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            let Some(operation) = item.get(name) else { continue };
            let scopes: Vec<String> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|req| req["bearer"].as_array())
                .flatten()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            let signed_in = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            let permission = scopes
                .first()
                .map(|s| s.parse::<Permission>().expect("a known permission"));
            ops.push(Op {
                method,
                path: path.clone(),
                permission,
                signed_in,
                operation: operation.clone(),
            });
        }
    }
    ops
}

/// A JSON value that fits `schema`: every required property, plus every
/// property that holds ids (filled from `world`, so foreign ids are
/// offered wherever a body can carry one).
/// What example bodies are made from.
struct Gen<'a> {
    doc: &'a Value,
    world: &'a World,
    path: &'a str,
    /// Also fill optional id fields (to offer foreign ids); off when a
    /// field rule (e.g. assigning) would refuse the caller anyway.
    optional_ids: bool,
}

fn example(g: &Gen, schema: &Value, field: &str, depth: usize) -> Value {
    let doc = g.doc;
    if depth > 8 {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return example(g, &doc["components"]["schemas"][name], field, depth + 1);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            if key == "allOf" {
                let mut merged = Map::new();
                for option in options {
                    if let Value::Object(part) = example(g, option, field, depth + 1) {
                        merged.extend(part);
                    }
                }
                return Value::Object(merged);
            }
            // The first option that is not null.
            let option = options
                .iter()
                .find(|o| o["type"] != "null")
                .unwrap_or(&options[0]);
            return example(g, option, field, depth + 1);
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null);
    }
    let ty = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match ty.as_str().unwrap_or(if schema.get("properties").is_some() {
        "object"
    } else {
        ""
    }) {
        "object" => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut out = Map::new();
            for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                if required.contains(&name.as_str()) || (g.optional_ids && holds_ids(doc, prop)) {
                    out.insert(name.clone(), example(g, prop, name, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => json!([example(g, &schema["items"], field, depth + 1)]),
        "integer" => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        "number" => json!(1.5),
        "boolean" => json!(false),
        "string" => match schema["format"].as_str() {
            Some("uuid") => json!(g.world.id(segment_of_field(field), g.path)),
            Some("date-time") => json!((Utc::now() + Duration::days(1)).to_rfc3339()),
            Some("date") => json!(Utc::now().date_naive().to_string()),
            _ => match field {
                "email" => json!(format!("walker-{}@walk.example", uuid::Uuid::new_v4().simple())),
                "password" => json!("a long password"),
                "url" => json!("https://93.184.216.34/hook"),
                "secret" => json!("s".repeat(32)),
                _ => json!(format!("walk {field}")),
            },
        },
        _ => Value::Null,
    }
}

fn holds_ids(doc: &Value, schema: &Value) -> bool {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    };
    schema["format"] == "uuid"
        || schema["items"]["format"] == "uuid"
        || schema["oneOf"]
            .as_array()
            .is_some_and(|o| o.iter().any(|s| s["format"] == "uuid"))
}

/// The request for `op` with `world`'s ids: (uri, body, whether the body offers ids).
fn request_for(doc: &Value, op: &Op, world: &World, optional_ids: bool) -> (String, Option<Payload>, bool) {
    let g = Gen {
        doc,
        world,
        path: &op.path,
        optional_ids,
    };
    let mut uri = String::new();
    let mut previous = "";
    for segment in op.path.split('/').filter(|s| !s.is_empty()) {
        uri.push('/');
        if segment.starts_with('{') {
            uri.push_str(&world.id(previous, &op.path));
        } else {
            uri.push_str(segment);
            previous = segment;
        }
    }
    let required_query: Vec<(String, String)> = op.operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_owned();
            let value = example(&g, &p["schema"], &name, 0);
            (
                name,
                value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string()),
            )
        })
        .collect();
    if !required_query.is_empty() {
        let query: Vec<String> = required_query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        uri = format!("{uri}?{}", query.join("&"));
    }
    let content = &op.operation["requestBody"]["content"];
    if content.get("multipart/form-data").is_some() {
        return (uri, Some(Payload::Multipart), false);
    }
    let schema = &content["application/json"]["schema"];
    if schema.is_null() {
        return (uri, None, false);
    }
    let body = example(&g, schema, "", 0);
    let offers_ids = world
        .ids
        .values()
        .any(|id| body.to_string().contains(id.as_str()));
    (uri, Some(Payload::Json(body)), offers_ids)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a 403 names a permission `role` lacks: a rule about a body
/// field (setting assignees needs `work_orders:assign`), which the walk
/// triggers by offering every id field.
fn refuses_a_field(text: &str, role: Role) -> bool {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    body["error"]["message"]
        .as_str()
        .and_then(|m| m.strip_prefix("missing permission "))
        .and_then(|p| p.parse::<Permission>().ok())
        .is_some_and(|p| !role.can(p))
}

/// Sends a request and returns the status and the raw answer (JSON or CSV).
async fn send(app: &Router, method: Method, uri: &str, token: &str, body: Option<Payload>) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let req = match body {
        Some(Payload::Json(b)) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        Some(Payload::Multipart) => req
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(multipart_png())),
        None => req.header("content-length", "0").body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn every_operation_obeys_roles_and_tenancy() {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let app = app(&db);
    let own_org = seed_org(&db, "walk-own", &["temp"]).await;
    let foreign_org = seed_org(&db, "walk-foreign", &["temp"]).await;
    let own = build_world(&app, &db, &own_org, "own").await;
    let foreign = build_world(&app, &db, &foreign_org, "foreign").await;

    let mut callers = vec![(Role::Admin, login(&app, &own_org.admin.email).await)];
    for role in [Role::Manager, Role::Technician, Role::Requester] {
        let email = format!("{role}@walk-own.example");
        add_user(&db, &own_org, &email, role).await;
        callers.push((role, login(&app, &email).await));
    }

    let (_, doc) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    let ops = operations(&doc);
    assert!(ops.len() > 60, "the document lists the whole API");

    let mut failures = Vec::new();
    let mut walked = 0;
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &ops {
        let name = format!("{} {}", op.method, op.path);
        if NOT_WALKED
            .iter()
            .any(|(m, p, _)| *m == op.method.as_str() && *p == op.path)
            || !op.signed_in
        {
            continue;
        }
        walked += 1;
        // Foreign ids first, so the own pass's writes (deactivating a user,
        // deleting a webhook) cannot hide anything from it.
        for (pass, world) in [("foreign", &foreign), ("own", &own)] {
            for (role, token) in &callers {
                let allowed = op.permission.is_none_or(|p| role.can(p));
                let mut request = request_for(&doc, op, world, true);
                let (mut status, mut text) =
                    send(&app, op.method.clone(), &request.0, token, request.1.clone()).await;
                if allowed && status == 403 && request.2 && refuses_a_field(&text, *role) {
                    // A field rule refused an optional id field the role may
                    // not set: fine, and walk on without such fields.
                    request = request_for(&doc, op, world, false);
                    (status, text) =
                        send(&app, op.method.clone(), &request.0, token, request.1.clone()).await;
                }
                let (uri, _, offers_ids) = request;
                let who = format!("{name} as {role} with {pass} ids ({uri})");
                let mut fail =
                    |why: String| failures.push(format!("{who}: {why} — got {status} {text:.300}"));
                if let Some(leak) = foreign.secrets.iter().find(|s| text.contains(s.as_str())) {
                    fail(format!("the answer holds the foreign organization's {leak}"));
                }
                if status >= 500 {
                    fail("server error".into());
                } else if !allowed {
                    if status != 403 {
                        fail("expected 403: the role lacks the permission".into());
                    }
                } else if status == 403 {
                    fail("403 although the role holds the permission".into());
                } else if pass == "foreign" && op.path.contains('{') && status != 404 {
                    fail("expected 404 for another organization's id".into());
                } else if pass == "foreign" && offers_ids && (200..300).contains(&status) {
                    fail("accepted another organization's id in the body".into());
                }
                *tally
                    .entry(if allowed { "allowed" } else { "refused" })
                    .or_default() += 1;
            }
        }
    }
    println!(
        "walked {walked} operations × {} roles × 2 organizations: {tally:?}",
        callers.len()
    );
    assert!(
        failures.is_empty(),
        "{} access failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    tdb.cleanup().await;
}

/// The operation → permission → roles matrix, as documented in
/// docs/permissions.md. A change to who may do what shows up in review as a
/// change to that file; regenerate it with
/// `UPDATE_PERMISSIONS_DOC=1 cargo test -p maintainpro-api --test access`.
#[test]
fn the_permission_matrix_is_documented() {
    use maintainpro_api::access::{operations, Access};

    let mut ops = operations(&maintainpro_api::openapi::openapi()).unwrap();
    ops.sort_by(|a, b| (a.path.as_str(), a.method.as_str()).cmp(&(b.path.as_str(), b.method.as_str())));
    let mut doc = String::from(
        "# Who may do what\n\n\
         Generated from the OpenAPI document by `api/tests/access.rs`, which also walks every operation as \
         each role and fails when this file is out of date (regenerate it with \
         `UPDATE_PERMISSIONS_DOC=1 cargo test -p maintainpro-api --test access`). \
         The roles' permissions are `Role::can` in `models/src/auth.rs`; each operation names its permission \
         in its OpenAPI `security` requirement, enforced by `api/src/access.rs` before the handler runs. \
         Row rules come on top: a requester sees only the requests and work orders they filed, setting \
         assignees needs `work_orders:assign`, and another organization's ids answer 404.\n\n\
         | operation | permission | admin | manager | technician | requester |\n\
         |---|---|:-:|:-:|:-:|:-:|\n",
    );
    for op in &ops {
        let (permission, roles): (String, Vec<&str>) = match op.access {
            Access::Public => ("public".into(), vec!["✓"; 4]),
            Access::SignedIn => ("signed in".into(), vec!["✓"; 4]),
            Access::Permission(p) => (
                format!("`{p}`"),
                Role::ALL
                    .iter()
                    .map(|r| if r.can(p) { "✓" } else { "—" })
                    .collect(),
            ),
        };
        doc.push_str(&format!(
            "| `{} {}` | {permission} | {} |\n",
            op.method,
            op.path,
            roles.join(" | ")
        ));
    }
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/permissions.md");
    if std::env::var_os("UPDATE_PERMISSIONS_DOC").is_some() {
        std::fs::write(&file, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/permissions.md is out of date: regenerate it with \
         `UPDATE_PERMISSIONS_DOC=1 cargo test -p maintainpro-api --test access` and review the change"
    );
}
