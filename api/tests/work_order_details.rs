//! Work-order details over HTTP: assignees, the failure-code catalog and
//! its permission, checklists, downtime, edits, and completion refused with
//! a 422 naming what is missing (and nothing changed) until the work order
//! has what its kind needs; the status history and who may read it.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::Method;
use axum::Router;
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::users;
use serde_json::{json, Value};

use common::{add_user, app, call, login};

/// Calls and asserts the status, returning `data` (or `error` when failing).
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

fn error_fields(error: &Value) -> Vec<String> {
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_string())
        .collect()
}

async fn user_id(db: &maintainpro_models::Db, org: &SeededOrg, email: &str) -> String {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let u = users::find_by_email(&mut tx, email).await.unwrap().unwrap();
    u.id.to_string()
}

#[tokio::test]
async fn completion_is_refused_until_the_work_order_has_what_its_kind_needs() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "wod", &[]).await;
    add_user(&t.db, &org, "tech@wod.test", Role::Technician).await;
    let tech = login(&app, "tech@wod.test").await;

    // A technician files corrective work with a checklist and the symptom.
    let wo = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &tech,
        Some(json!({
            "title": "Pump leaks", "equipmentId": org.equipment.id, "problemCode": "lek",
            "checklist": [{"label": "Isolate and drain"}, {"label": "Photograph the seal", "required": false}]
        })),
        201,
    )
    .await;
    let id = wo["id"].as_str().unwrap().to_string();
    assert_eq!(wo["problemCode"], "LEK");
    assert_eq!(wo["equipmentId"], org.equipment.id.to_string());
    let uri = |rest: &str| format!("/api/v1/work-orders/{id}{rest}");
    expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "in_progress"})),
        200,
    )
    .await;
    let down = expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &tech,
        Some(json!({"reason": "breakdown", "note": "seal blown",
                    "startedAt": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()})),
        201,
    )
    .await;
    assert_eq!(down["endedAt"], Value::Null);
    assert_eq!(down["equipmentId"], org.equipment.id.to_string());

    // Refused: 422 naming every missing field, and nothing changes.
    let err = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "completed", "note": "done"})),
        422,
    )
    .await;
    assert_eq!(err["code"], "VALIDATION_ERROR");
    assert_eq!(
        error_fields(&err),
        ["checklist[0]", "downtime[0]", "causeCode", "remedyCode"]
    );
    let now = expect(&app, Method::GET, &uri(""), &tech, None, 200).await;
    assert_eq!(
        (now["status"].as_str(), &now["completedAt"]),
        (Some("in_progress"), &Value::Null)
    );

    // Supply it: codes by PATCH, the required item ticked, the downtime ended.
    let patched = expect(
        &app,
        Method::PATCH,
        &uri(""),
        &tech,
        Some(json!({"causeCode": "WEA", "remedyCode": "REP", "dueAt": null})),
        200,
    )
    .await;
    assert_eq!(
        (&patched["causeCode"], &patched["remedyCode"]),
        (&json!("WEA"), &json!("REP"))
    );
    let items = expect(&app, Method::GET, &uri("/checklist"), &tech, None, 200).await;
    let first = items[0]["id"].as_str().unwrap();
    let ticked = expect(
        &app,
        Method::POST,
        &uri(&format!("/checklist/{first}")),
        &tech,
        Some(json!({"done": true, "note": "drained 4 l"})),
        200,
    )
    .await;
    assert_eq!(
        (&ticked["done"], &ticked["note"]),
        (&json!(true), &json!("drained 4 l"))
    );
    assert!(ticked["doneBy"].is_string() && ticked["doneAt"].is_string());
    let down_id = down["id"].as_str().unwrap();
    let ended_at = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    expect(
        &app,
        Method::PATCH,
        &uri(&format!("/downtime/{down_id}")),
        &tech,
        Some(json!({"endedAt": ended_at})),
        200,
    )
    .await;
    let done = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &tech,
        Some(json!({"status": "completed"})),
        200,
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert!(done["completedAt"].is_string());

    // Completed: the checklist is frozen and codes may not be cleared.
    expect(
        &app,
        Method::PUT,
        &uri("/checklist"),
        &tech,
        Some(json!({"items": []})),
        409,
    )
    .await;
    let err = expect(
        &app,
        Method::PATCH,
        &uri(""),
        &tech,
        Some(json!({"problemCode": null})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["problemCode"]);
    t.cleanup().await;
}

#[tokio::test]
async fn assignees_are_active_users_of_the_organization_and_filter_the_list() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "asg", &[]).await;
    let other = seed_org(&t.db, "asg-other", &[]).await;
    let admin = login(&app, &org.admin.email).await;
    for (email, role) in [
        ("t1@asg.test", Role::Technician),
        ("t2@asg.test", Role::Technician),
        ("gone@asg.test", Role::Technician),
        ("req@asg.test", Role::Requester),
    ] {
        add_user(&t.db, &org, email, role).await;
    }
    let (t1, t2, gone) = (
        user_id(&t.db, &org, "t1@asg.test").await,
        user_id(&t.db, &org, "t2@asg.test").await,
        user_id(&t.db, &org, "gone@asg.test").await,
    );
    let tech = login(&app, "t1@asg.test").await;
    let requester = login(&app, "req@asg.test").await;
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    users::set_active(&mut tx, &org.tenant, gone.parse().unwrap(), false)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let wo = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &admin,
        Some(json!({"title": "Align the motor", "assignees": [t1]})),
        201,
    )
    .await;
    assert_eq!((&wo["assignedTo"], &wo["assignees"]), (&json!(t1), &json!([t1])));
    let id = wo["id"].as_str().unwrap();
    let uri = format!("/api/v1/work-orders/{id}/assignees");

    // Unknown, foreign and inactive users: 422 naming each.
    let err = expect(
        &app,
        Method::PUT,
        &uri,
        &admin,
        Some(json!({"userIds": [t2, uuid::Uuid::new_v4(), other.admin.id, gone]})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["userIds[1]", "userIds[2]", "userIds[3]"]);
    // Technicians may not assign; requesters may not even create with an assignee.
    expect(
        &app,
        Method::PUT,
        &uri,
        &tech,
        Some(json!({"userIds": [t2]})),
        403,
    )
    .await;
    expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &requester,
        Some(json!({"title": "x", "assignees": [t1]})),
        403,
    )
    .await;

    let wo = expect(
        &app,
        Method::PUT,
        &uri,
        &admin,
        Some(json!({"userIds": [t2, t1]})),
        200,
    )
    .await;
    assert_eq!(
        (&wo["assignedTo"], &wo["assignees"]),
        (&json!(t2), &json!([t2, t1]))
    );
    // Both spellings of the filter match any assignee, lead or not.
    for q in [
        format!("assigned_to={t1}"),
        format!("assignedTo={t1}"),
        format!("assigned_to={t2}"),
    ] {
        let list = expect(
            &app,
            Method::GET,
            &format!("/api/v1/work-orders?{q}"),
            &admin,
            None,
            200,
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{q}");
    }
    let list = expect(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders?assignedTo={gone}"),
        &admin,
        None,
        200,
    )
    .await;
    assert!(list.as_array().unwrap().is_empty());

    // Another organization's work order is not found.
    let other_admin = login(&app, &other.admin.email).await;
    expect(
        &app,
        Method::PUT,
        &uri,
        &other_admin,
        Some(json!({"userIds": []})),
        404,
    )
    .await;
    t.cleanup().await;
}

#[tokio::test]
async fn failure_codes_are_read_by_everyone_and_managed_by_managers() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "fca", &[]).await;
    let other = seed_org(&t.db, "fca-other", &[]).await;
    for (email, role) in [
        ("m@fca.test", Role::Manager),
        ("t@fca.test", Role::Technician),
        ("r@fca.test", Role::Requester),
    ] {
        add_user(&t.db, &org, email, role).await;
    }
    let manager = login(&app, "m@fca.test").await;
    let tech = login(&app, "t@fca.test").await;
    let requester = login(&app, "r@fca.test").await;

    let all = expect(&app, Method::GET, "/api/v1/failure-codes", &requester, None, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 26);
    let remedies = expect(
        &app,
        Method::GET,
        "/api/v1/failure-codes?kind=remedy",
        &tech,
        None,
        200,
    )
    .await;
    let codes: Vec<&str> = remedies
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ADJ", "CLE", "LUB", "NON", "REA", "REP", "RPR", "TIG"]);

    let new = json!({"kind": "problem", "code": "cor", "description": "Corrosion"});
    expect(
        &app,
        Method::POST,
        "/api/v1/failure-codes",
        &tech,
        Some(new.clone()),
        403,
    )
    .await;
    let cor = expect(
        &app,
        Method::POST,
        "/api/v1/failure-codes",
        &manager,
        Some(new.clone()),
        201,
    )
    .await;
    assert_eq!((&cor["code"], &cor["active"]), (&json!("COR"), &json!(true)));
    expect(
        &app,
        Method::POST,
        "/api/v1/failure-codes",
        &manager,
        Some(new),
        409,
    )
    .await;
    let cor_uri = format!("/api/v1/failure-codes/{}", cor["id"].as_str().unwrap());
    expect(
        &app,
        Method::PATCH,
        &cor_uri,
        &tech,
        Some(json!({"active": false})),
        403,
    )
    .await;
    let off = expect(
        &app,
        Method::PATCH,
        &cor_uri,
        &manager,
        Some(json!({"active": false})),
        200,
    )
    .await;
    assert_eq!(off["active"], false);
    let other_admin = login(&app, &other.admin.email).await;
    expect(
        &app,
        Method::PATCH,
        &cor_uri,
        &other_admin,
        Some(json!({"active": true})),
        404,
    )
    .await;

    // A deactivated or unknown code cannot be given to a work order.
    let err = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &tech,
        Some(json!({"title": "Rusty", "problemCode": "COR", "remedyCode": "WEA"})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["problemCode", "remedyCode"]);
    // The new permission is in the manager's token, not the technician's.
    let me = expect(&app, Method::GET, "/api/v1/me", &manager, None, 200).await;
    assert!(me.to_string().contains("failure_codes:manage"), "{me}");
    let me = expect(&app, Method::GET, "/api/v1/me", &tech, None, 200).await;
    assert!(!me.to_string().contains("failure_codes:manage"), "{me}");
    t.cleanup().await;
}

#[tokio::test]
async fn downtime_and_checklists_over_http() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "dtc", &[]).await;
    let other = seed_org(&t.db, "dtc-other", &[]).await;
    add_user(&t.db, &org, "r@dtc.test", Role::Requester).await;
    let admin = login(&app, &org.admin.email).await;
    let requester = login(&app, "r@dtc.test").await;
    let wo = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &admin,
        Some(
            json!({"title": "Inspect fan", "kind": "inspection", "equipmentId": org.equipment.id,
                    "checklist": [{"label": "Blades", "required": true}]}),
        ),
        201,
    )
    .await;
    let id = wo["id"].as_str().unwrap();
    let uri = |rest: &str| format!("/api/v1/work-orders/{id}{rest}");
    let now = chrono::Utc::now();
    let at = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339();

    expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &admin,
        Some(json!({"startedAt": at(5), "endedAt": at(4), "reason": "inspection"})),
        201,
    )
    .await;
    let err = expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &admin,
        Some(json!({"startedAt": at(6), "endedAt": at(3), "reason": "other"})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["startedAt"]);
    let err = expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &admin,
        Some(json!({"startedAt": at(2), "endedAt": at(3), "reason": "other"})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["endedAt"]);
    expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &admin,
        Some(json!({"reason": "coffee"})),
        422,
    )
    .await;
    let list = expect(&app, Method::GET, &uri("/downtime"), &admin, None, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["reason"], "inspection");

    // Replace the checklist: keep "Blades" (by id), add an optional item.
    let items = expect(&app, Method::GET, &uri("/checklist"), &admin, None, 200).await;
    let blades = items[0]["id"].clone();
    let list = expect(
        &app,
        Method::PUT,
        &uri("/checklist"),
        &admin,
        Some(json!({"items": [{"label": "Guard", "required": false}, {"id": blades, "label": "Blades"}]})),
        200,
    )
    .await;
    assert_eq!(list[1]["id"], blades);
    assert_eq!(
        (&list[0]["position"], &list[1]["position"]),
        (&json!(0), &json!(1))
    );

    // Requesters may read their own work only and change nothing here.
    expect(&app, Method::GET, &uri("/checklist"), &requester, None, 404).await;
    expect(
        &app,
        Method::POST,
        &uri("/downtime"),
        &requester,
        Some(json!({"reason": "other"})),
        403,
    )
    .await;
    expect(
        &app,
        Method::PATCH,
        &uri(""),
        &requester,
        Some(json!({"title": "mine"})),
        403,
    )
    .await;
    // Another organization sees none of it.
    let other_admin = login(&app, &other.admin.email).await;
    expect(&app, Method::GET, &uri("/downtime"), &other_admin, None, 404).await;
    expect(&app, Method::GET, &uri("/checklist"), &other_admin, None, 404).await;
    let item = list[0]["id"].as_str().unwrap();
    expect(
        &app,
        Method::POST,
        &uri(&format!("/checklist/{item}")),
        &other_admin,
        Some(json!({"done": true})),
        404,
    )
    .await;

    // The inspection completes once every item is done and its outcome recorded.
    expect(
        &app,
        Method::POST,
        &uri("/status"),
        &admin,
        Some(json!({"status": "in_progress"})),
        200,
    )
    .await;
    let err = expect(
        &app,
        Method::POST,
        &uri("/status"),
        &admin,
        Some(json!({"status": "completed"})),
        422,
    )
    .await;
    assert_eq!(error_fields(&err), ["checklist[0]", "checklist[1]", "remedyCode"]);
    for item in list.as_array().unwrap() {
        let item_uri = uri(&format!("/checklist/{}", item["id"].as_str().unwrap()));
        expect(
            &app,
            Method::POST,
            &item_uri,
            &admin,
            Some(json!({"done": true})),
            200,
        )
        .await;
    }
    expect(
        &app,
        Method::PATCH,
        &uri(""),
        &admin,
        Some(json!({"remedyCode": "NON"})),
        200,
    )
    .await;
    expect(
        &app,
        Method::POST,
        &uri("/status"),
        &admin,
        Some(json!({"status": "completed"})),
        200,
    )
    .await;

    // Every new operation is documented with its permission.
    let (_, doc) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    for (path, method, permission) in [
        ("/api/v1/work-orders/{id}", "patch", "work_orders:update"),
        ("/api/v1/work-orders/{id}/assignees", "put", "work_orders:assign"),
        ("/api/v1/failure-codes", "get", "work_orders:view"),
        ("/api/v1/failure-codes", "post", "failure_codes:manage"),
        ("/api/v1/failure-codes/{id}", "patch", "failure_codes:manage"),
        ("/api/v1/work-orders/{id}/checklist", "get", "work_orders:view"),
        ("/api/v1/work-orders/{id}/checklist", "put", "work_orders:update"),
        (
            "/api/v1/work-orders/{id}/checklist/{itemId}",
            "post",
            "work_orders:update",
        ),
        ("/api/v1/work-orders/{id}/downtime", "get", "work_orders:view"),
        ("/api/v1/work-orders/{id}/downtime", "post", "work_orders:update"),
        (
            "/api/v1/work-orders/{id}/downtime/{downtimeId}",
            "patch",
            "work_orders:update",
        ),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"][0]["bearer"][0], permission,
            "{method} {path}"
        );
    }
    t.cleanup().await;
}

#[tokio::test]
async fn status_history_lists_the_steps_with_notes_to_those_who_may_see_the_work_order() {
    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "woh", &[]).await;
    let other = seed_org(&t.db, "woh-other", &[]).await;
    add_user(&t.db, &org, "tech@woh.test", Role::Technician).await;
    add_user(&t.db, &org, "ann@woh.test", Role::Requester).await;
    add_user(&t.db, &org, "bob@woh.test", Role::Requester).await;
    add_user(&t.db, &other, "tech@woh-other.test", Role::Technician).await;
    let tech = login(&app, "tech@woh.test").await;
    let ann = login(&app, "ann@woh.test").await;
    let bob = login(&app, "bob@woh.test").await;
    let foreign = login(&app, "tech@woh-other.test").await;
    let tech_id = user_id(&t.db, &org, "tech@woh.test").await;
    let ann_id = user_id(&t.db, &org, "ann@woh.test").await;

    let wo = expect(
        &app,
        Method::POST,
        "/api/v1/work-orders",
        &ann,
        Some(json!({"title": "Door sticks"})),
        201,
    )
    .await;
    let id = wo["id"].as_str().unwrap().to_string();
    let uri = |rest: &str| format!("/api/v1/work-orders/{id}{rest}");
    for (status, note) in [("in_progress", "on my way"), ("on_hold", "waiting for a hinge")] {
        expect(
            &app,
            Method::POST,
            &uri("/status"),
            &tech,
            Some(json!({"status": status, "note": note})),
            200,
        )
        .await;
    }

    let steps = expect(&app, Method::GET, &uri("/history"), &tech, None, 200).await;
    let steps = steps.as_array().unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0]["fromStatus"], Value::Null);
    assert_eq!(steps[0]["toStatus"], "open");
    assert_eq!(steps[0]["changedBy"], ann_id);
    assert_eq!(steps[0]["changedByName"], "ann@woh.test");
    assert_eq!(steps[1]["fromStatus"], "open");
    assert_eq!(steps[1]["toStatus"], "in_progress");
    assert_eq!(steps[1]["note"], "on my way");
    assert_eq!(steps[1]["changedBy"], tech_id);
    assert_eq!(steps[2]["fromStatus"], "in_progress");
    assert_eq!(steps[2]["toStatus"], "on_hold");
    assert_eq!(steps[2]["note"], "waiting for a hinge");
    assert!(steps[2]["createdAt"].as_str().unwrap() >= steps[1]["createdAt"].as_str().unwrap());

    // The requester who filed it sees it; another requester and another
    // organization get a 404, as for the work order itself.
    let mine = expect(&app, Method::GET, &uri("/history"), &ann, None, 200).await;
    assert_eq!(mine.as_array().unwrap().len(), 3);
    expect(&app, Method::GET, &uri("/history"), &bob, None, 404).await;
    expect(&app, Method::GET, &uri("/history"), &foreign, None, 404).await;
    expect(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders/{}/history", uuid::Uuid::new_v4()),
        &tech,
        None,
        404,
    )
    .await;
    t.cleanup().await;
}
