//! The long lists — equipment (with full-text search), users, work
//! requests and anomalies (severity and kind filters) — against a real PostgreSQL: search hits, ranking and tenancy,
//! cursor pages that walk every row once while rows are being inserted,
//! filters, and invalid filters or cursors answered in the error envelope.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use axum::http::Method;
use axum::Router;
use common::{add_user, app, call, login};
use maintainpro_models::auth::Role;
use maintainpro_models::equipment::{self, Equipment, EquipmentUpdate, NewEquipment};
use maintainpro_models::requests::{self, NewWorkRequest};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::{Actor, Db, Tenant};
use serde_json::Value;
use uuid::Uuid;

async fn get(app: &Router, uri: &str, token: &str) -> (u16, Value) {
    call(app, Method::GET, uri, Some(token), None).await
}

/// A 200 list: the ids of `data` in order, and `meta.nextCursor`.
async fn page(app: &Router, uri: &str, token: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = get(app, uri, token).await;
    assert_eq!(status, 200, "{uri}: {body}");
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    (ids, body["meta"]["nextCursor"].as_str().map(String::from))
}

/// Asserts a 422 VALIDATION_ERROR naming `field`.
async fn invalid(app: &Router, uri: &str, token: &str, field: &str) {
    let (status, body) = get(app, uri, token).await;
    assert_eq!(status, 422, "{uri}: {body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{uri}: {body}");
}

/// Asserts a 400 BAD_REQUEST in the envelope.
async fn bad_request(app: &Router, uri: &str, token: &str) {
    let (status, body) = get(app, uri, token).await;
    assert_eq!(status, 400, "{uri}: {body}");
    assert_eq!(body["error"]["code"], "BAD_REQUEST", "{body}");
}

async fn add_equipment(
    db: &Db,
    org: &SeededOrg,
    tag: &str,
    name: &str,
    f: impl FnOnce(&mut NewEquipment),
) -> Equipment {
    let mut new = NewEquipment {
        name: name.into(),
        asset_tag: tag.into(),
        parent_id: None,
        description: String::new(),
        location: String::new(),
        criticality: None,
    };
    f(&mut new);
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let eq = equipment::create(&mut tx, &org.tenant, new).await.unwrap();
    tx.commit().await.unwrap();
    eq
}

fn id(e: &Equipment) -> String {
    e.id.to_string()
}

/// Signs in and returns the token and the user's id.
async fn sign_in(app: &Router, email: &str) -> (String, String) {
    let token = login(app, email).await;
    let (status, me) = get(app, "/api/v1/me", &token).await;
    assert_eq!(status, 200, "{me}");
    let id = me["data"]["user"]["id"].as_str().unwrap().to_string();
    (token, id)
}

#[tokio::test]
async fn equipment_search_finds_by_tag_word_and_prefix_ranks_exact_tag_first() {
    let t = test_db().await;
    let a = seed_org(&t.db, "search-a", &[]).await; // P-101 "Cooling pump", Hall 1, high
    let b = seed_org(&t.db, "search-b", &[]).await; // its own P-101
    let booster = add_equipment(&t.db, &a, "P-1010", "Booster pump", |e| {
        e.location = "Hall 2".into()
    })
    .await;
    let conveyor = add_equipment(&t.db, &a, "CV-1", "Conveyor belt", |e| {
        e.location = "Line-2".into();
        e.description = "Feeds the packer".into();
    })
    .await;
    // Mentions P-101 and "pump" more often than P-101's own record does.
    let handler = add_equipment(&t.db, &a, "AHU-3", "Air handler", |e| {
        e.location = "Roof".into();
        e.description = "Spare impeller from P-101: pump pump pump P-101".into();
    })
    .await;
    // Its tag is the word "pump": only as relevant as the names with "pump"
    // by text, and "Spare skid" sorts after them by name.
    let skid = add_equipment(&t.db, &a, "PUMP", "Spare skid", |_| {}).await;
    let b_pump = add_equipment(&t.db, &b, "B-7", "Pump of B", |_| {}).await;
    let app = app(&t.db);
    let token = login(&app, &a.admin.email).await;
    let token_b = login(&app, &b.admin.email).await;
    let p101 = id(&a.equipment);

    // The exact tag first (whatever the text rank), then tags starting
    // with it, then text matches; any case.
    for q in ["P-101", "p-101"] {
        let (ids, next) = page(&app, &format!("/api/v1/equipment?q={q}"), &token).await;
        assert_eq!(ids, vec![p101.clone(), id(&booster), id(&handler)], "q={q}");
        assert_eq!(next, None);
    }
    // A word of the name, a prefix of it, a prefix of a tag's parts.
    let search = |q: &'static str| {
        let (app, token) = (app.clone(), token.clone());
        async move { page(&app, &format!("/api/v1/equipment?q={q}"), &token).await.0 }
    };
    assert_eq!(search("conveyor").await, vec![id(&conveyor)]);
    assert_eq!(search("Conv").await, vec![id(&conveyor)]);
    assert_eq!(search("CV").await, vec![id(&conveyor)]);
    assert_eq!(search("P1010").await, vec![id(&booster)]);
    assert_eq!(search("packer").await, vec![id(&conveyor)], "description");
    assert_eq!(
        search("%22line%202%22").await,
        vec![id(&conveyor)],
        "phrase over Line-2"
    );
    let pum: HashSet<String> = search("pum").await.into_iter().collect();
    assert_eq!(
        pum,
        HashSet::from([p101.clone(), id(&booster), id(&handler), id(&skid)]),
        "prefix; never B's pump"
    );
    assert_eq!(
        search("pump%20-booster%20-impeller%20-skid").await,
        vec![p101.clone()],
        "negation"
    );
    assert_eq!(search("cooling%20hall").await, vec![p101.clone()], "words AND");
    assert!(search("nothing-like-this").await.is_empty());
    // The exact tag first, then names (equal rank: by name) above descriptions.
    assert_eq!(
        search("pump").await,
        vec![id(&skid), id(&booster), p101.clone(), id(&handler)]
    );
    // Search combines with the filters.
    let (ids, _) = page(&app, "/api/v1/equipment?q=pump&criticality=high", &token).await;
    assert_eq!(ids, vec![p101.clone()]);
    let (ids, _) = page(&app, "/api/v1/equipment?q=pump&location=hall%202", &token).await;
    assert_eq!(ids, vec![id(&booster)]);

    // The other organization finds only its own rows, its P-101 first.
    let (ids, _) = page(&app, "/api/v1/equipment?q=P-101", &token_b).await;
    assert_eq!(ids, vec![id(&b.equipment)]);
    let found: HashSet<String> = page(&app, "/api/v1/equipment?q=pump", &token_b)
        .await
        .0
        .into_iter()
        .collect();
    assert_eq!(found, HashSet::from([id(&b.equipment), id(&b_pump)]));

    // A search query is at most 200 characters.
    invalid(
        &app,
        &format!("/api/v1/equipment?q={}", "x".repeat(201)),
        &token,
        "q",
    )
    .await;
    t.cleanup().await;
}

#[tokio::test]
async fn equipment_pages_walk_every_row_once_while_rows_are_added() {
    let t = test_db().await;
    let a = seed_org(&t.db, "pages-a", &[]).await;
    // 25 units in Bay 9, created out of name order.
    let mut originals = HashSet::new();
    for i in 0..25 {
        let n = (i * 7) % 25 + 1;
        let e = add_equipment(&t.db, &a, &format!("U-{n:02}"), &format!("Unit {n:02}"), |e| {
            e.location = "Bay 9".into()
        })
        .await;
        originals.insert(id(&e));
    }
    let app = app(&t.db);
    let token = login(&app, &a.admin.email).await;

    // In name order, then ranked (all ranks equal: ordered by name, id).
    let mut rows = originals.clone();
    for base in [
        "/api/v1/equipment?location=bay%209&limit=10",
        "/api/v1/equipment?location=bay%209&limit=10&q=unit",
    ] {
        let mut expected = rows.clone();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                Some(c) => format!("{base}&cursor={c}"),
                None => base.to_string(),
            };
            let (ids, next) = page(&app, &uri, &token).await;
            sizes.push(ids.len());
            seen.extend(ids);
            if sizes.len() == 1 {
                // Between pages: one row sorting before the position reached
                // (never seen by this walk) and one after it (seen later).
                let tag = |s: &str| format!("{s}-{}", Uuid::new_v4().simple());
                let before =
                    add_equipment(&t.db, &a, &tag("A"), "Unit 00", |e| e.location = "Bay 9".into()).await;
                let after =
                    add_equipment(&t.db, &a, &tag("Z"), "Unit 99", |e| e.location = "Bay 9".into()).await;
                expected.insert(id(&after));
                rows.insert(id(&before));
                rows.insert(id(&after));
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(sizes.len() < 10, "runaway paging");
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{base}: a row came twice");
        assert_eq!(
            unique, expected,
            "{base}: a row was skipped (or the early insert seen)"
        );
        assert_eq!(sizes, vec![10, 10, expected.len() - 20], "{base}");
    }

    // Invalid values, limits and cursors are validation errors naming the field.
    let e = "/api/v1/equipment";
    invalid(&app, &format!("{e}?status=broken"), &token, "status").await;
    invalid(&app, &format!("{e}?criticality=extreme"), &token, "criticality").await;
    invalid(&app, &format!("{e}?limit=0"), &token, "limit").await;
    invalid(&app, &format!("{e}?limit=501"), &token, "limit").await;
    invalid(&app, &format!("{e}?cursor=not-a-cursor"), &token, "cursor").await;
    invalid(&app, &format!("{e}?cursor=5b2278222c22793e5d"), &token, "cursor").await;
    invalid(
        &app,
        &format!("{e}?parentId={}&root=true", a.equipment.id),
        &token,
        "root",
    )
    .await;
    // A cursor of the name order does not fit the ranked search, and a
    // tampered one does not decode.
    let (_, next) = page(&app, &format!("{e}?limit=1"), &token).await;
    let name_cursor = next.unwrap();
    invalid(
        &app,
        &format!("{e}?q=unit&cursor={name_cursor}"),
        &token,
        "cursor",
    )
    .await;
    let tampered = format!("{}0", &name_cursor[..name_cursor.len() - 1]);
    invalid(&app, &format!("{e}?cursor={tampered}"), &token, "cursor").await;
    // Values of the wrong type are rejected by the query parser.
    bad_request(&app, &format!("{e}?parentId=nope"), &token).await;
    bad_request(&app, &format!("{e}?root=maybe"), &token).await;
    bad_request(&app, &format!("{e}?limit=ten"), &token).await;
    t.cleanup().await;
}

#[tokio::test]
async fn equipment_filters_combine() {
    let t = test_db().await;
    let a = seed_org(&t.db, "filters-a", &[]).await; // P-101, Hall 1, high, root
    let line = add_equipment(&t.db, &a, "L-1", "Line one", |e| {
        e.criticality = Some("low".into());
        e.location = "Hall 50% north".into();
    })
    .await;
    let press = add_equipment(&t.db, &a, "PR-1", "Press", |e| {
        e.parent_id = Some(line.id);
        e.criticality = Some("critical".into());
    })
    .await;
    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    let change = EquipmentUpdate {
        status: Some("maintenance".into()),
        ..Default::default()
    };
    equipment::update(&mut tx, &a.tenant, press.id, change)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let app = app(&t.db);
    let token = login(&app, &a.admin.email).await;
    let list = |query: &'static str| {
        let (app, token) = (app.clone(), token.clone());
        async move { page(&app, &format!("/api/v1/equipment?{query}"), &token).await.0 }
    };
    // Name order: Cooling pump, Line one, Press.
    assert_eq!(list("").await, vec![id(&a.equipment), id(&line), id(&press)]);
    assert_eq!(list("root=true").await, vec![id(&a.equipment), id(&line)]);
    assert_eq!(list("root=false").await, vec![id(&press)]);
    assert_eq!(
        page(&app, &format!("/api/v1/equipment?parentId={}", line.id), &token)
            .await
            .0,
        vec![id(&press)]
    );
    assert_eq!(list("status=maintenance").await, vec![id(&press)]);
    assert_eq!(list("status=active").await, vec![id(&a.equipment), id(&line)]);
    assert_eq!(list("criticality=critical").await, vec![id(&press)]);
    assert_eq!(list("location=HALL").await, vec![id(&a.equipment), id(&line)]);
    assert_eq!(list("location=50%25").await, vec![id(&line)], "% is literal");
    assert_eq!(list("location=5_%25").await, Vec::<String>::new(), "_ is literal");
    assert_eq!(
        list("root=true&criticality=low&location=north").await,
        vec![id(&line)]
    );
    t.cleanup().await;
}

#[tokio::test]
async fn equipment_csv_and_tree_still_hold_everything() {
    let t = test_db().await;
    let a = seed_org(&t.db, "export-a", &[]).await;
    for i in 0..60 {
        add_equipment(&t.db, &a, &format!("X-{i:03}"), &format!("Extra {i:03}"), |_| {}).await;
    }
    let app = app(&t.db);
    let token = login(&app, &a.admin.email).await;
    // The list pages (default 50) …
    let (ids, next) = page(&app, "/api/v1/equipment", &token).await;
    assert_eq!(ids.len(), 50);
    assert!(next.is_some());
    // … the export and the tree do not.
    let csv = common::raw(&app, "/api/v1/equipment/export.csv", &token).await;
    assert_eq!(csv.lines().count(), 1 + 61, "header and every asset");
    assert!(csv.contains("X-059") && csv.contains("P-101"));
    let (status, tree) = get(&app, "/api/v1/equipment/tree", &token).await;
    assert_eq!(status, 200);
    assert_eq!(tree["data"].as_array().unwrap().len(), 61);
    t.cleanup().await;
}

#[tokio::test]
async fn users_list_searches_filters_and_pages() {
    let t = test_db().await;
    let a = seed_org(&t.db, "users-a", &[]).await;
    let b = seed_org(&t.db, "users-b", &[]).await;
    // Rows straight into the table: 25 password hashes would be slow.
    let insert = |name: String, email: String, role: &'static str, active: bool| {
        let db = t.db.clone();
        let org = a.tenant.org_id;
        async move {
            let mut tx = db.tenant(org).await.unwrap();
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO users (id, organization_id, email, name, role, password_hash, active)
                 VALUES ($1, $2, $3, $4, $5, '!test', $6)",
            )
            .bind(id)
            .bind(org)
            .bind(email)
            .bind(name)
            .bind(role)
            .bind(active)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            id.to_string()
        }
    };
    let mut walkers = HashSet::new();
    for i in 0..25 {
        let n = (i * 11) % 25 + 1;
        let role = if n % 5 == 0 { "requester" } else { "technician" };
        walkers.insert(insert(format!("Walker {n:02}"), format!("w{n}@walk.test"), role, n != 7).await);
    }
    let app = app(&t.db);
    let token = login(&app, &a.admin.email).await;

    let base = "/api/v1/users?q=walker&limit=10";
    let (mut seen, mut next) = page(&app, base, &token).await;
    let before = insert("Walker 00".into(), "w0@walk.test".into(), "technician", true).await;
    let after = insert("Walker 99".into(), "w99@walk.test".into(), "technician", true).await;
    let mut pages = 1;
    while let Some(c) = next {
        let (ids, n) = page(&app, &format!("{base}&cursor={c}"), &token).await;
        seen.extend(ids);
        next = n;
        pages += 1;
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(pages, 3);
    assert_eq!(unique.len(), seen.len(), "no repeats");
    assert!(walkers.is_subset(&unique), "no skips");
    assert!(unique.contains(&after) && !unique.contains(&before));

    // Search by e-mail, filters, and the organization boundary.
    let list = |query: String| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            let (status, body) = get(&app, &format!("/api/v1/users?limit=500&{query}"), &token).await;
            assert_eq!(status, 200, "{body}");
            body["data"].as_array().unwrap().clone()
        }
    };
    let found = list("q=W12%40WALK".into()).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], "Walker 12");
    let requesters = list("role=requester".into()).await;
    assert_eq!(requesters.len(), 5);
    assert!(requesters.iter().all(|u| u["role"] == "requester"));
    let inactive = list("active=false".into()).await;
    assert_eq!(inactive.len(), 1);
    assert_eq!(inactive[0]["name"], "Walker 07");
    assert_eq!(
        list("role=technician&active=true&q=walker".into()).await.len(),
        19 + 2
    );
    let everyone = list(String::new()).await;
    assert_eq!(everyone.len(), 1 + 27);
    assert!(everyone.iter().all(|u| u["id"] != serde_json::json!(b.admin.id)));
    assert_eq!(everyone[0]["name"], "Admin", "name order");

    invalid(&app, "/api/v1/users?role=boss", &token, "role").await;
    invalid(&app, "/api/v1/users?cursor=zz", &token, "cursor").await;
    invalid(&app, "/api/v1/users?limit=0", &token, "limit").await;
    bad_request(&app, "/api/v1/users?active=maybe", &token).await;
    t.cleanup().await;
}

#[tokio::test]
async fn requests_list_pages_filters_and_keeps_requesters_to_their_own() {
    let t = test_db().await;
    let a = seed_org(&t.db, "rq-a", &[]).await;
    for (email, role) in [
        ("ann@rq-a.test", Role::Requester),
        ("bob@rq-a.test", Role::Requester),
        ("mia@rq-a.test", Role::Manager),
    ] {
        add_user(&t.db, &a, email, role).await;
    }
    let app = app(&t.db);
    let (ann, ann_id) = sign_in(&app, "ann@rq-a.test").await;
    let (bob, bob_id) = sign_in(&app, "bob@rq-a.test").await;
    let (mia, _) = sign_in(&app, "mia@rq-a.test").await;
    let file = |who: &str, title: String, equipment_id: Option<Uuid>| {
        let db = t.db.clone();
        let tenant = Tenant {
            org_id: a.tenant.org_id,
            actor: Actor::User {
                id: who.parse().unwrap(),
                role: Role::Requester,
            },
        };
        async move {
            let mut tx = db.tenant_for(&tenant).await.unwrap();
            let new = NewWorkRequest {
                title,
                description: String::new(),
                equipment_id,
            };
            let r = requests::create(&mut tx, &tenant, new).await.unwrap();
            tx.commit().await.unwrap();
            r.id.to_string()
        }
    };
    let mut anns = HashSet::new();
    for i in 0..25 {
        let eq = (i % 5 == 0).then_some(a.equipment.id);
        anns.insert(file(&ann_id, format!("Ann's request {i}"), eq).await);
    }
    let mut bobs = HashSet::new();
    for i in 0..3 {
        bobs.insert(file(&bob_id, format!("Bob's request {i}"), None).await);
    }

    // The manager walks Ann's requests while she files another one: it is
    // newer than the position reached, so the walk neither sees it nor
    // repeats or skips anything.
    let base = format!("/api/v1/requests?requestedBy={ann_id}&limit=10");
    let (mut seen, mut next) = page(&app, &base, &mia).await;
    let late = file(&ann_id, "Late request".into(), None).await;
    let mut sizes = vec![seen.len()];
    while let Some(c) = next {
        let (ids, n) = page(&app, &format!("{base}&cursor={c}"), &mia).await;
        sizes.push(ids.len());
        seen.extend(ids);
        next = n;
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), 25);
    assert_eq!(unique, anns);
    assert!(!unique.contains(&late));
    // Newest first: the late one leads a fresh walk.
    assert_eq!(page(&app, &base, &mia).await.0[0], late);

    // Filters.
    let ids = |uri: String, token: String| {
        let app = app.clone();
        async move {
            page(&app, &uri, &token)
                .await
                .0
                .into_iter()
                .collect::<HashSet<_>>()
        }
    };
    let r = "/api/v1/requests?limit=500";
    assert_eq!(ids(format!("{r}&requestedBy={bob_id}"), mia.clone()).await, bobs);
    assert_eq!(
        ids(format!("{r}&equipmentId={}", a.equipment.id), mia.clone())
            .await
            .len(),
        5
    );
    assert_eq!(ids(format!("{r}&status=pending"), mia.clone()).await.len(), 29);
    let some = anns.iter().next().unwrap().clone();
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/requests/{some}/approve"),
        Some(&mia),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(format!("{r}&status=approved"), mia.clone()).await,
        HashSet::from([some])
    );
    assert_eq!(
        ids(format!("{r}&status=pending&requestedBy={ann_id}"), mia.clone())
            .await
            .len(),
        25
    );

    // A requester sees only their own, whatever requested_by says.
    let mut own = anns.clone();
    own.insert(late.clone());
    assert_eq!(ids(r.to_string(), ann.clone()).await, own);
    assert!(ids(format!("{r}&requestedBy={bob_id}"), ann.clone())
        .await
        .is_empty());
    assert_eq!(ids(r.to_string(), bob.clone()).await, bobs);

    invalid(&app, "/api/v1/requests?status=nope", &mia, "status").await;
    invalid(&app, "/api/v1/requests?cursor=garbage", &mia, "cursor").await;
    invalid(&app, "/api/v1/requests?cursor=123.notauuid", &mia, "cursor").await;
    invalid(&app, "/api/v1/requests?limit=1000", &mia, "limit").await;
    bad_request(&app, "/api/v1/requests?requestedBy=ann", &mia).await;
    t.cleanup().await;
}

#[tokio::test]
async fn openapi_documents_the_list_parameters() {
    let t = test_db().await;
    let app = app(&t.db);
    let (status, doc) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for (path, expected) in [
        (
            "/api/v1/equipment",
            &[
                "q",
                "status",
                "criticality",
                "parentId",
                "root",
                "location",
                "cursor",
                "limit",
            ][..],
        ),
        ("/api/v1/users", &["q", "role", "active", "cursor", "limit"][..]),
        (
            "/api/v1/requests",
            &["status", "equipmentId", "requestedBy", "cursor", "limit"][..],
        ),
    ] {
        let params: Vec<&str> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .map(|p| {
                assert_eq!(p["in"], "query");
                p["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(params, expected, "{path}");
    }
    t.cleanup().await;
}

#[tokio::test]
async fn anomalies_filter_by_severity_and_kind_on_the_server() {
    use maintainpro_models::anomalies::{self, NewAnomaly};

    let t = test_db().await;
    let app = app(&t.db);
    let org = seed_org(&t.db, "anom-f", &["temp"]).await;
    let other = seed_org(&t.db, "anom-f-other", &["temp"]).await;
    let mut ids = std::collections::HashMap::new();
    for (o, name, kind, severity, minutes) in [
        (&org, "a", "high", "critical", 50),
        (&org, "b", "stuck", "low", 40),
        (&org, "c", "high", "low", 30),
        (&org, "d", "drift", "critical", 20),
        (&other, "x", "high", "critical", 10),
    ] {
        let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
        let a = anomalies::open(
            &mut tx,
            &o.tenant,
            NewAnomaly {
                sensor_id: o.sensors[0].id,
                equipment_id: o.equipment.id,
                kind: kind.into(),
                detector: "robust_z".into(),
                severity: severity.into(),
                score: 5.0,
                started_at: chrono::Utc::now() - chrono::Duration::minutes(minutes),
                peak_value: 1.0,
                baseline: None,
                details: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        ids.insert(name, a.id.to_string());
    }
    add_user(&t.db, &org, "tech@anom-f.test", Role::Technician).await;
    let token = login(&app, "tech@anom-f.test").await;
    let names = |got: Vec<String>| -> Vec<&str> {
        got.iter()
            .map(|id| *ids.iter().find(|(_, v)| *v == id).unwrap().0)
            .collect()
    };

    let (got, _) = page(&app, "/api/v1/anomalies?severity=critical", &token).await;
    assert_eq!(names(got), ["d", "a"], "newest first, own organization only");
    let (got, _) = page(&app, "/api/v1/anomalies?kind=high", &token).await;
    assert_eq!(names(got), ["c", "a"]);
    let (got, _) = page(
        &app,
        "/api/v1/anomalies?kind=high&severity=low&status=open",
        &token,
    )
    .await;
    assert_eq!(names(got), ["c"]);
    let (got, _) = page(&app, "/api/v1/anomalies?kind=no_data", &token).await;
    assert!(got.is_empty());

    // Pages keep the filter.
    let (first, cursor) = page(&app, "/api/v1/anomalies?severity=critical&limit=1", &token).await;
    assert_eq!(names(first), ["d"]);
    let (second, cursor) = page(
        &app,
        &format!(
            "/api/v1/anomalies?severity=critical&limit=1&cursor={}",
            cursor.unwrap()
        ),
        &token,
    )
    .await;
    assert_eq!(names(second), ["a"]);
    assert!(cursor.is_none());

    invalid(&app, "/api/v1/anomalies?severity=urgent", &token, "severity").await;
    invalid(&app, "/api/v1/anomalies?kind=spike", &token, "kind").await;
    invalid(&app, "/api/v1/anomalies?kind=", &token, "kind").await;
    t.cleanup().await;
}
