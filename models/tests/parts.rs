//! The stock ledger against a real PostgreSQL: refusals change nothing, the
//! on-hand figure always equals the ledger sum (property test), concurrent
//! issues never oversell, the ledger is append-only for the app role,
//! reservations, returns, costs and low-stock events.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use maintainpro_models::parts::{
    self, AdjustStock, IssueStock, NewPart, NewReservation, NewStockLocation, ReceiveStock, ReturnStock,
};
use maintainpro_models::testkit::{self, test_db};
use maintainpro_models::work_orders::{self, NewWorkOrder};
use maintainpro_models::{Db, ModelError, Tenant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use uuid::Uuid;

struct Org {
    tenant: Tenant,
    locations: Vec<(Uuid, String)>,
    work_order: Uuid,
}

async fn seed(db: &Db, slug: &str) -> Org {
    let s = testkit::seed_org(db, slug, &[]).await;
    let tenant = s.tenant;
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    let mut locations = Vec::new();
    for name in ["Main store", "Van 2"] {
        let loc = parts::create_location(
            &mut tx,
            &tenant,
            NewStockLocation {
                name: name.into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
        locations.push((loc.id, loc.name));
    }
    let work_order = new_work_order(&mut tx, &tenant, "Replace bearings").await;
    tx.commit().await.unwrap();
    Org {
        tenant,
        locations,
        work_order,
    }
}

async fn new_work_order(tx: &mut maintainpro_models::Tx, tenant: &Tenant, title: &str) -> Uuid {
    let new: NewWorkOrder = serde_json::from_value(serde_json::json!({ "title": title })).unwrap();
    work_orders::create(tx, tenant, new).await.unwrap().id
}

async fn new_part(db: &Db, tenant: &Tenant, sku: &str, cost: i64, reorder_point: i64) -> Uuid {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    let part = parts::create_part(
        &mut tx,
        tenant,
        NewPart {
            sku: sku.into(),
            name: format!("part {sku}"),
            description: String::new(),
            unit: None,
            unit_cost_cents: Some(cost),
            reorder_point: Some(reorder_point),
            reorder_qty: Some(10),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    part.id
}

async fn receive(db: &Db, tenant: &Tenant, part: Uuid, location: Uuid, quantity: i64) {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    parts::receive(
        &mut tx,
        tenant,
        part,
        ReceiveStock {
            location_id: location,
            quantity,
            unit_cost_cents: None,
            note: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn issue(
    db: &Db,
    tenant: &Tenant,
    part: Uuid,
    location: Uuid,
    quantity: i64,
    work_order: Uuid,
) -> Result<(), ModelError> {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    parts::issue(
        &mut tx,
        tenant,
        part,
        IssueStock {
            location_id: location,
            quantity,
            work_order_id: work_order,
            note: None,
        },
    )
    .await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn count(db: &Db, tenant: &Tenant, sql: &str, id: Uuid) -> i64 {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

async fn low_stock_events(db: &Db, tenant: &Tenant, part: Uuid) -> i64 {
    count(
        db,
        tenant,
        "SELECT count(*) FROM events WHERE kind = 'part.low_stock' AND subject_id = $1",
        part,
    )
    .await
}

#[tokio::test]
async fn issuing_more_than_on_hand_is_refused_and_changes_nothing() {
    let t = test_db().await;
    let o = seed(&t.db, "stock-a").await;
    let (main, _) = o.locations[0];
    let part = new_part(&t.db, &o.tenant, "BRG-6204", 450, 0).await;
    receive(&t.db, &o.tenant, part, main, 3).await;
    let moved_before = count(
        &t.db,
        &o.tenant,
        "SELECT count(*) FROM events WHERE kind = 'stock.moved' AND subject_id = $1",
        part,
    )
    .await;
    assert_eq!(moved_before, 1, "every movement emits stock.moved");

    let err = issue(&t.db, &o.tenant, part, main, 5, o.work_order)
        .await
        .unwrap_err();
    match err {
        ModelError::Conflict(msg) => assert_eq!(msg, "only 3 on hand at Main store"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nowhere else either: the other location has none.
    let (van, _) = o.locations[1];
    let err = issue(&t.db, &o.tenant, part, van, 1, o.work_order)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m == "only 0 on hand at Van 2"),
        "{err:?}"
    );

    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let detail = parts::part_detail(&mut tx, part).await.unwrap();
    assert_eq!(detail.part.on_hand, 3);
    assert_eq!(detail.part.available, 3);
    assert_eq!(detail.locations.len(), 1);
    assert_eq!(detail.locations[0].on_hand, 3);
    let movements: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_movements WHERE part_id = $1")
        .bind(part)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(movements, 1);
    assert_eq!(parts::work_order_cost(&mut tx, o.work_order).await.unwrap(), 0);
    drop(tx);
    let moved_after = count(
        &t.db,
        &o.tenant,
        "SELECT count(*) FROM events WHERE kind = 'stock.moved' AND subject_id = $1",
        part,
    )
    .await;
    assert_eq!(moved_after, 1);

    // Adjusting away more than is there is refused the same way.
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let err = parts::adjust(
        &mut tx,
        &o.tenant,
        part,
        AdjustStock {
            location_id: main,
            quantity: -4,
            note: "cycle count".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m == "only 3 on hand at Main store"),
        "{err:?}"
    );
    // And an adjustment without a reason is invalid.
    let err = parts::adjust(
        &mut tx,
        &o.tenant,
        part,
        AdjustStock {
            location_id: main,
            quantity: -1,
            note: " ".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ModelError::Validation(f) if f[0].field == "note"),
        "{err:?}"
    );
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issues_never_oversell() {
    let t = test_db().await;
    let o = seed(&t.db, "stock-b").await;
    let (main, _) = o.locations[0];
    let part = new_part(&t.db, &o.tenant, "FLT-10", 1200, 0).await;
    receive(&t.db, &o.tenant, part, main, 5).await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (db, tenant, wo) = (t.db.clone(), o.tenant, o.work_order);
        tasks.spawn(async move { issue(&db, &tenant, part, main, 1, wo).await });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        match res.unwrap() {
            Ok(()) => ok += 1,
            Err(ModelError::Conflict(m)) => {
                assert_eq!(m, "only 0 on hand at Main store");
                refused += 1;
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!((ok, refused), (5, 5));
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let part_now = parts::get_part(&mut tx, part).await.unwrap();
    assert_eq!(part_now.on_hand, 0);
    assert_eq!(
        parts::work_order_cost(&mut tx, o.work_order).await.unwrap(),
        5 * 1200
    );
    let balances: Vec<i64> = sqlx::query_scalar(
        "SELECT on_hand_after FROM stock_movements WHERE part_id = $1 ORDER BY on_hand_after DESC",
    )
    .bind(part)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(balances, [5, 4, 3, 2, 1, 0], "each issue saw the one before it");
    t.cleanup().await;
}

#[tokio::test]
async fn the_ledger_is_append_only_for_the_app_role() {
    let t = test_db().await;
    let o = seed(&t.db, "stock-c").await;
    let (main, _) = o.locations[0];
    let part = new_part(&t.db, &o.tenant, "OIL-5L", 3000, 0).await;
    receive(&t.db, &o.tenant, part, main, 2).await;

    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let err = sqlx::query("UPDATE stock_movements SET quantity = 100 WHERE part_id = $1")
        .bind(part)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let err = sqlx::query("DELETE FROM stock_movements WHERE part_id = $1")
        .bind(part)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    // Not even the owner may rewrite history.
    let owner = sqlx::PgPool::connect(&t.url).await.unwrap();
    let mut otx = owner.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.org_id', $1, true)")
        .bind(o.tenant.org_id.to_string())
        .execute(&mut *otx)
        .await
        .unwrap();
    let err = sqlx::query("UPDATE stock_movements SET note = 'edited' WHERE part_id = $1")
        .bind(part)
        .execute(&mut *otx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    drop(otx);
    owner.close().await;
    // And the stock level refuses to go negative, whoever writes it.
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let err = sqlx::query("UPDATE stock_levels SET on_hand = -1 WHERE part_id = $1")
        .bind(part)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stock_levels_on_hand_check"), "{err}");
    drop(tx);
    assert_eq!(
        count(
            &t.db,
            &o.tenant,
            "SELECT sum(quantity)::bigint FROM stock_movements WHERE part_id = $1",
            part
        )
        .await,
        2
    );
    t.cleanup().await;
}

#[tokio::test]
async fn reservations_returns_and_costs() {
    let t = test_db().await;
    let o = seed(&t.db, "stock-d").await;
    let b = seed(&t.db, "stock-d-other").await;
    let (main, _) = o.locations[0];
    let part = new_part(&t.db, &o.tenant, "BLT-A42", 250, 0).await;
    receive(&t.db, &o.tenant, part, main, 5).await;
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let other_wo = new_work_order(&mut tx, &o.tenant, "Belt check").await;
    tx.commit().await.unwrap();

    let reserve = |wo: Uuid, quantity: i64| {
        let (db, tenant) = (t.db.clone(), o.tenant);
        async move {
            let mut tx = db.tenant(tenant.org_id).await.unwrap();
            let r = parts::reserve(
                &mut tx,
                &tenant,
                wo,
                NewReservation {
                    part_id: part,
                    location_id: main,
                    quantity,
                },
            )
            .await?;
            tx.commit().await.unwrap();
            Ok::<_, ModelError>(r)
        }
    };
    let r = reserve(o.work_order, 2).await.unwrap();
    assert_eq!(r.quantity, 2);
    let r = reserve(o.work_order, 1).await.unwrap();
    assert_eq!(r.quantity, 3, "a second reservation adds to the first");
    let err = reserve(other_wo, 3).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m == "only 2 available at Main store (5 on hand, 3 reserved)"),
        "{err:?}"
    );
    // The other work order cannot take stock reserved for the first.
    let err = issue(&t.db, &o.tenant, part, main, 3, other_wo)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m == "only 2 available at Main store: 3 reserved for other work orders"),
        "{err:?}"
    );
    issue(&t.db, &o.tenant, part, main, 2, other_wo).await.unwrap();

    // Issuing to the first consumes its reservation.
    issue(&t.db, &o.tenant, part, main, 2, o.work_order)
        .await
        .unwrap();
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let p = parts::get_part(&mut tx, part).await.unwrap();
    assert_eq!((p.on_hand, p.reserved, p.available), (1, 1, 0));
    drop(tx);
    issue(&t.db, &o.tenant, part, main, 1, o.work_order)
        .await
        .unwrap();
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let summary = parts::work_order_parts(&mut tx, o.work_order).await.unwrap();
    assert!(
        summary.reserved.is_empty(),
        "fully consumed: {:?}",
        summary.reserved
    );
    assert_eq!(summary.issued.len(), 1);
    assert_eq!(summary.issued[0].net_quantity, 3);
    assert_eq!(summary.total_cost_cents, 3 * 250);

    // Returns credit the work order; no more than it holds.
    let m = return_in(&mut tx, &o, part, 1).await.unwrap();
    assert_eq!((m.quantity, m.unit_cost_cents, m.on_hand_after), (1, 250, 1));
    let err = return_in(&mut tx, &o, part, 3).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m.starts_with("only 2 of this part issued to WO-")),
        "{err:?}"
    );
    assert_eq!(
        parts::work_order_cost(&mut tx, o.work_order).await.unwrap(),
        2 * 250
    );
    assert_eq!(parts::work_order_cost(&mut tx, other_wo).await.unwrap(), 2 * 250);
    tx.commit().await.unwrap();

    // A cancelled work order reserves nothing, and its old reservations stop counting.
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    receive_in(&mut tx, &o.tenant, part, main, 4).await;
    parts::reserve(
        &mut tx,
        &o.tenant,
        other_wo,
        NewReservation {
            part_id: part,
            location_id: main,
            quantity: 4,
        },
    )
    .await
    .unwrap();
    assert_eq!(parts::get_part(&mut tx, part).await.unwrap().available, 1);
    sqlx::query("UPDATE work_orders SET status = 'cancelled' WHERE id = $1")
        .bind(other_wo)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(parts::get_part(&mut tx, part).await.unwrap().available, 5);
    let err = parts::reserve(
        &mut tx,
        &o.tenant,
        other_wo,
        NewReservation {
            part_id: part,
            location_id: main,
            quantity: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ModelError::Conflict(m) if m.contains("is cancelled")),
        "{err:?}"
    );
    drop(tx);

    // Another organization's part and work order do not exist here.
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    assert!(matches!(
        parts::get_part(&mut tx, part).await.map(|p| p.id),
        Ok(id) if id == part
    ));
    let err = parts::reserve(
        &mut tx,
        &o.tenant,
        b.work_order,
        NewReservation {
            part_id: part,
            location_id: main,
            quantity: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ModelError::NotFound(_)), "{err:?}");
    drop(tx);
    let mut tx = t.db.tenant(b.tenant.org_id).await.unwrap();
    assert!(matches!(
        parts::get_part(&mut tx, part).await,
        Err(ModelError::NotFound(_))
    ));
    let err = parts::issue(
        &mut tx,
        &b.tenant,
        part,
        IssueStock {
            location_id: b.locations[0].0,
            quantity: 1,
            work_order_id: b.work_order,
            note: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ModelError::NotFound(_)), "{err:?}");
    t.cleanup().await;
}

/// Returns `quantity` from the org's work order to its second location.
async fn return_in(
    tx: &mut maintainpro_models::Tx,
    o: &Org,
    part: Uuid,
    quantity: i64,
) -> Result<parts::StockMovement, ModelError> {
    parts::return_stock(
        tx,
        &o.tenant,
        part,
        ReturnStock {
            location_id: o.locations[1].0,
            quantity,
            work_order_id: o.work_order,
            note: Some("not needed".into()),
        },
    )
    .await
}

async fn receive_in(
    tx: &mut maintainpro_models::Tx,
    tenant: &Tenant,
    part: Uuid,
    location: Uuid,
    quantity: i64,
) {
    parts::receive(
        tx,
        tenant,
        part,
        ReceiveStock {
            location_id: location,
            quantity,
            unit_cost_cents: Some(999),
            note: None,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn low_stock_fires_once_per_crossing() {
    let t = test_db().await;
    let o = seed(&t.db, "stock-e").await;
    let (main, _) = o.locations[0];
    let part = new_part(&t.db, &o.tenant, "GSK-12", 80, 5).await;
    // Starts at 0 < 5: a new part with a reorder point is low at once.
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 1);
    receive(&t.db, &o.tenant, part, main, 10).await;
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 1);
    issue(&t.db, &o.tenant, part, main, 5, o.work_order)
        .await
        .unwrap(); // 5: not below
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 1);
    issue(&t.db, &o.tenant, part, main, 1, o.work_order)
        .await
        .unwrap(); // 4: crossed
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 2);
    issue(&t.db, &o.tenant, part, main, 1, o.work_order)
        .await
        .unwrap(); // 3: still below
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 2);
    receive(&t.db, &o.tenant, part, main, 7).await; // 10: re-armed
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 2);
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    parts::adjust(
        &mut tx,
        &o.tenant,
        part,
        AdjustStock {
            location_id: main,
            quantity: -6,
            note: "damaged".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(low_stock_events(&t.db, &o.tenant, part).await, 3);
    let mut tx = t.db.tenant(o.tenant.org_id).await.unwrap();
    let payload: serde_json::Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE kind = 'part.low_stock' AND subject_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(part)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(payload["available"], 4);
    assert_eq!(payload["reorderPoint"], 5);
    assert_eq!(payload["sku"], "GSK-12");
    let low = parts::list_parts(
        &mut tx,
        &parts::PartFilter {
            low_stock: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(low.items.iter().map(|p| p.id).collect::<Vec<_>>(), [part]);
    t.cleanup().await;
}

/// One step of a random stock history.
#[derive(Debug, Clone)]
enum Op {
    Receive { part: usize, loc: usize, qty: i64 },
    Issue { part: usize, loc: usize, qty: i64 },
    Adjust { part: usize, loc: usize, qty: i64 },
    Return { part: usize, loc: usize, qty: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    (0usize..4, 0usize..2, 0usize..2, 1i64..15, any::<bool>()).prop_map(|(k, part, loc, qty, neg)| match k {
        0 => Op::Receive { part, loc, qty },
        1 => Op::Issue { part, loc, qty },
        2 => Op::Adjust {
            part,
            loc,
            qty: if neg { -qty } else { qty },
        },
        _ => Op::Return { part, loc, qty },
    })
}

/// Random receive/issue/adjust/return sequences over 2 parts × 2 locations,
/// through the models' functions: each step succeeds exactly when a simple
/// in-memory model says the stock covers it, and afterwards every on-hand
/// figure equals the sum of its ledger rows, is never negative, and the work
/// order's parts cost is what it holds times the unit cost.
#[test]
fn on_hand_always_equals_the_ledger_sum() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (t, o) = rt.block_on(async {
        let t = test_db().await;
        let o = seed(&t.db, "stock-prop").await;
        (t, o)
    });
    let case = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        case.set(case.get() + 1);
        let outcome = rt.block_on(run_case(&t.db, &o, case.get(), &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.err().unwrap_or_default());
        Ok(())
    });
    rt.block_on(t.cleanup());
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn run_case(db: &Db, o: &Org, case: u32, ops: &[Op]) -> Result<(), String> {
    let costs = [125i64, 40];
    let mut ids = Vec::new();
    for (i, cost) in costs.iter().enumerate() {
        ids.push(new_part(db, &o.tenant, &format!("P{case}-{i}"), *cost, 0).await);
    }
    let mut on_hand: HashMap<(usize, usize), i64> = HashMap::new();
    let mut held = [0i64; 2];
    for (step, op) in ops.iter().enumerate() {
        let mut tx = db.tenant(o.tenant.org_id).await.map_err(|e| e.to_string())?;
        let (part, loc, res, expect_ok) = match *op {
            Op::Receive { part, loc, qty } => {
                let r = ReceiveStock {
                    location_id: o.locations[loc].0,
                    quantity: qty,
                    unit_cost_cents: None,
                    note: None,
                };
                (
                    part,
                    loc,
                    parts::receive(&mut tx, &o.tenant, ids[part], r).await,
                    true,
                )
            }
            Op::Issue { part, loc, qty } => {
                let r = IssueStock {
                    location_id: o.locations[loc].0,
                    quantity: qty,
                    work_order_id: o.work_order,
                    note: None,
                };
                let ok = on_hand.get(&(part, loc)).copied().unwrap_or(0) >= qty;
                (
                    part,
                    loc,
                    parts::issue(&mut tx, &o.tenant, ids[part], r).await,
                    ok,
                )
            }
            Op::Adjust { part, loc, qty } => {
                let r = AdjustStock {
                    location_id: o.locations[loc].0,
                    quantity: qty,
                    note: "count".into(),
                };
                let ok = on_hand.get(&(part, loc)).copied().unwrap_or(0) + qty >= 0;
                (
                    part,
                    loc,
                    parts::adjust(&mut tx, &o.tenant, ids[part], r).await,
                    ok,
                )
            }
            Op::Return { part, loc, qty } => {
                let r = ReturnStock {
                    location_id: o.locations[loc].0,
                    quantity: qty,
                    work_order_id: o.work_order,
                    note: None,
                };
                let ok = held[part] >= qty;
                (
                    part,
                    loc,
                    parts::return_stock(&mut tx, &o.tenant, ids[part], r).await,
                    ok,
                )
            }
        };
        match (res, expect_ok) {
            (Ok(m), true) => {
                tx.commit().await.map_err(|e| e.to_string())?;
                let level = on_hand.entry((part, loc)).or_insert(0);
                *level += m.quantity;
                if m.on_hand_after != *level {
                    return Err(format!(
                        "step {step} {op:?}: on_hand_after {} != {level}",
                        m.on_hand_after
                    ));
                }
                match op {
                    Op::Issue { qty, .. } => held[part] += qty,
                    Op::Return { qty, .. } => held[part] -= qty,
                    _ => {}
                }
            }
            (Err(ModelError::Conflict(_)), false) => drop(tx),
            (res, expected) => {
                return Err(format!(
                    "step {step} {op:?}: expected ok={expected}, got {:?}",
                    res.map(|m| m.quantity)
                ))
            }
        }
    }
    // The invariant, read back from the database.
    let mut tx = db.tenant(o.tenant.org_id).await.map_err(|e| e.to_string())?;
    for (p, part) in ids.iter().enumerate() {
        let rows = sqlx::query_as::<_, (Uuid, i64, Option<i64>)>(
            "SELECT loc.id, COALESCE(l.on_hand, 0),
                    (SELECT sum(m.quantity)::bigint FROM stock_movements m
                     WHERE m.part_id = $1 AND m.location_id = loc.id)
             FROM stock_locations loc
             LEFT JOIN stock_levels l ON l.part_id = $1 AND l.location_id = loc.id",
        )
        .bind(part)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        for (loc_id, level, ledger) in rows {
            let ledger = ledger.unwrap_or(0);
            if level != ledger || level < 0 {
                return Err(format!(
                    "part {p} at {loc_id}: on_hand {level}, ledger sum {ledger}"
                ));
            }
            let l = o
                .locations
                .iter()
                .position(|(id, _)| *id == loc_id)
                .unwrap_or(usize::MAX);
            let expected = on_hand.get(&(p, l)).copied().unwrap_or(0);
            if level != expected {
                return Err(format!(
                    "part {p} at location {l}: on_hand {level}, model {expected}"
                ));
            }
        }
    }
    let cost = sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(sum(-quantity * unit_cost_cents), 0)::bigint FROM stock_movements
         WHERE work_order_id = $1 AND part_id = ANY($2)",
    )
    .bind(o.work_order)
    .bind(&ids)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    let expected_cost = held[0] * costs[0] + held[1] * costs[1];
    if cost != expected_cost {
        return Err(format!(
            "work-order cost of this case {cost}, expected {expected_cost}"
        ));
    }
    Ok(())
}

#[test]
fn parts_permissions_by_role() {
    use maintainpro_models::auth::{Permission, Role};
    let parts_perms = [
        Permission::PartsView,
        Permission::PartsManage,
        Permission::PartsIssue,
    ];
    let names: Vec<&str> = parts_perms.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, ["parts:view", "parts:manage", "parts:issue"]);
    for p in parts_perms {
        assert!(Permission::ALL.contains(&p));
        assert!(Role::Admin.can(p) && Role::Manager.can(p), "{p}");
        assert!(!Role::Requester.can(p), "{p}");
    }
    assert!(Role::Technician.can(Permission::PartsView));
    assert!(Role::Technician.can(Permission::PartsIssue));
    assert!(!Role::Technician.can(Permission::PartsManage));
}
