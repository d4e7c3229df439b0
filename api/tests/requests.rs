//! Work requests and the requester's limits: file, see only one's own,
//! no priority or assignee; a manager approves into a work order credited
//! to the requester, or rejects with a reason.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use common::{add_user, app, call, login};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db};
use serde_json::json;

#[tokio::test]
async fn requests_flow_and_requester_scope() {
    let t = test_db().await;
    let a = seed_org(&t.db, "req-a", &[]).await;
    let b = seed_org(&t.db, "req-b", &[]).await;
    for (email, role) in [
        ("ann@req-a.test", Role::Requester),
        ("bob@req-a.test", Role::Requester),
        ("mia@req-a.test", Role::Manager),
    ] {
        add_user(&t.db, &a, email, role).await;
    }
    let app = app(&t.db);
    let ann = login(&app, "ann@req-a.test").await;
    let bob = login(&app, "bob@req-a.test").await;
    let mia = login(&app, "mia@req-a.test").await;
    let other_org = login(&app, &b.admin.email).await;

    // Ann files a request from the pump's QR code.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        Some(&ann),
        Some(json!({"title": "Pump leaking", "description": "puddle under P-101", "equipmentId": a.equipment.id})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let req = body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["status"], "pending");

    // Bob (another requester) and another organization cannot see it.
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/requests/{req}"),
            Some(&bob),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/requests/{req}"),
            Some(&other_org),
            None
        )
        .await
        .0,
        404
    );
    let (_, list) = call(&app, Method::GET, "/api/v1/requests", Some(&bob), None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    // Requesters cannot decide.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{req}/approve"),
        Some(&ann),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);

    // The manager approves with a priority: a work order credited to Ann.
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{req}/approve"),
        Some(&mia),
        Some(json!({"priority": "high"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let wo = body["data"]["workOrder"].clone();
    assert_eq!(wo["priority"], "high");
    assert_eq!(
        wo["requestedBy"],
        json!(add_user_id(&t.db, &a, "ann@req-a.test").await)
    );
    assert_eq!(body["data"]["request"]["status"], "approved");
    // Deciding twice is refused.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{req}/reject"),
        Some(&mia),
        Some(json!({"reason": "dup"})),
    )
    .await;
    assert_eq!(status, 409);

    // Ann sees her work order (and only hers); Bob does not.
    let wo_id = wo["id"].as_str().unwrap();
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/work-orders/{wo_id}"),
            Some(&ann),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/work-orders/{wo_id}"),
            Some(&bob),
            None
        )
        .await
        .0,
        404
    );
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{wo_id}/comments"),
        Some(&bob),
        Some(json!({"body": "me too"})),
    )
    .await;
    assert_eq!(status, 404, "requesters comment only on their own work orders");
    let (_, mine) = call(&app, Method::GET, "/api/v1/work-orders", Some(&ann), None).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    let (_, bobs) = call(&app, Method::GET, "/api/v1/work-orders", Some(&bob), None).await;
    assert_eq!(bobs["data"].as_array().unwrap().len(), 0);
    let (_, all) = call(&app, Method::GET, "/api/v1/work-orders", Some(&mia), None).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);

    // Requesters may not prioritize or assign what they create.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        Some(&bob),
        Some(json!({"title": "Light out", "priority": "critical"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        Some(&bob),
        Some(json!({"title": "Light out"})),
    )
    .await;
    assert_eq!(status, 201);

    // Rejection needs a reason, and the requester sees it.
    let (_, body) = call(
        &app,
        Method::POST,
        "/api/v1/requests",
        Some(&bob),
        Some(json!({"title": "New chair"})),
    )
    .await;
    let req2 = body["data"]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{req2}/reject"),
        Some(&mia),
        Some(json!({"reason": " "})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{req2}/reject"),
        Some(&mia),
        Some(json!({"reason": "Not maintenance: ask facilities"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/requests/{req2}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(body["data"]["status"], "rejected");
    assert_eq!(body["data"]["rejectionReason"], "Not maintenance: ask facilities");
    t.cleanup().await;
}

async fn add_user_id(
    db: &maintainpro_models::Db,
    org: &maintainpro_models::testkit::SeededOrg,
    email: &str,
) -> uuid::Uuid {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let u = maintainpro_models::users::find_by_email(&mut tx, email)
        .await
        .unwrap()
        .unwrap();
    u.id
}

#[tokio::test]
async fn pm_schedules_over_http() {
    let t = test_db().await;
    let a = seed_org(&t.db, "pmh-a", &[]).await;
    let b = seed_org(&t.db, "pmh-b", &[]).await;
    add_user(&t.db, &a, "tech@pmh-a.test", Role::Technician).await;
    let app = app(&t.db);
    let admin = login(&app, &a.admin.email).await;
    let tech = login(&app, "tech@pmh-a.test").await;
    let other = login(&app, &b.admin.email).await;
    let body = json!({"title": "Monthly lube", "equipmentId": a.equipment.id, "trigger": "calendar",
                      "intervalCount": 1, "intervalUnit": "month"});
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/pm-schedules",
        Some(&tech),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403, "technicians do not plan maintenance");
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/v1/pm-schedules",
        Some(&admin),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap();
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/pm-schedules/{id}"),
            Some(&tech),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/pm-schedules/{id}"),
            Some(&other),
            None
        )
        .await
        .0,
        404
    );
    let (status, bad) = call(
        &app,
        Method::POST,
        "/api/v1/pm-schedules",
        Some(&admin),
        Some(json!({"title": "x", "equipmentId": a.equipment.id, "trigger": "condition"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    t.cleanup().await;
}

#[tokio::test]
async fn csv_exports() {
    let t = test_db().await;
    let a = seed_org(&t.db, "csv-a", &[]).await;
    let b = seed_org(&t.db, "csv-b", &[]).await;
    let app = app(&t.db);
    let admin = login(&app, &a.admin.email).await;
    let other = login(&app, &b.admin.email).await;
    for title in ["=cmd|' /C calc'!A0", "Replace seal, \"urgent\""] {
        let (status, _) = call(
            &app,
            Method::POST,
            "/api/v1/work-orders",
            Some(&admin),
            Some(json!({"title": title})),
        )
        .await;
        assert_eq!(status, 201);
    }
    call(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        Some(&other),
        Some(json!({"title": "B's job"})),
    )
    .await;
    let csv = common::raw(&app, "/api/v1/work-orders/export.csv", &admin).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("code,title,kind,status"));
    assert!(
        csv.contains(",'=cmd|' /C calc'!A0,"),
        "formula neutralized: {csv}"
    );
    assert!(csv.contains("\"Replace seal, \"\"urgent\"\"\""), "quoting: {csv}");
    assert!(!csv.contains("B's job"));
    let eq = common::raw(&app, "/api/v1/equipment/export.csv", &admin).await;
    assert!(
        eq.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("P-101,Cooling pump")),
        "{eq}"
    );
    t.cleanup().await;
}
