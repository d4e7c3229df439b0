//! Persistence rules against a real PostgreSQL: tenancy enforced by row-level
//! security as the app role, work-order numbering under concurrency, the
//! one-open-auto-work-order rule, and the status machine in SQL.
#![allow(clippy::unwrap_used)]

use maintainpro_models::anomalies::{self, NewAnomaly};
use maintainpro_models::auto_policy::AutoPolicy;
use maintainpro_models::equipment;
use maintainpro_models::testkit::{self, test_db};
use maintainpro_models::work_orders::{self, AutoRaise, Kind, NewWorkOrder, Status, Verdict, WorkOrderPatch};
use maintainpro_models::{Db, ModelError, Tenant};
use uuid::Uuid;

struct Org {
    tenant: Tenant,
    equipment: Uuid,
    sensor: Uuid,
    work_order: Uuid,
}

async fn seed(db: &Db, slug: &str) -> Org {
    let s = testkit::seed_org(db, slug, &["temp"]).await;
    let (tenant, sensor) = (s.tenant, s.sensors[0].id);
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, now(), 1.0)")
        .bind(tenant.org_id)
        .bind(sensor)
        .execute(&mut *tx)
        .await
        .unwrap();
    let wo = work_orders::create(&mut tx, &tenant, new_wo("Fix the pump", Some(s.equipment.id)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Org {
        tenant,
        equipment: s.equipment.id,
        sensor,
        work_order: wo.id,
    }
}

/// Records the failure codes corrective work needs before it may be
/// completed (see `work_orders::completion_requirements`).
async fn diagnose(tx: &mut maintainpro_models::Tx, tenant: &Tenant, id: Uuid) {
    let codes = WorkOrderPatch {
        problem_code: Some(Some("VIB".into())),
        cause_code: Some(Some("WEA".into())),
        remedy_code: Some(Some("REP".into())),
        ..Default::default()
    };
    work_orders::update(tx, tenant, id, codes).await.unwrap();
}

fn new_wo(title: &str, equipment_id: Option<Uuid>) -> NewWorkOrder {
    NewWorkOrder {
        title: title.into(),
        description: String::new(),
        kind: None,
        priority: None,
        equipment_id,
        sensor_id: None,
        assigned_to: None,
        due_at: None,
    }
}

/// Every table with an organization_id column.
async fn tenant_tables(db: &Db) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.column_name = 'organization_id' AND c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
         ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_app_role_sees_only_its_organization() {
    let t = test_db().await;
    let a = seed(&t.db, "org-a").await;
    let b = seed(&t.db, "org-b").await;

    // The runtime connection is the app role: no owner, no bypass.
    let (user, bypass): (String, bool) =
        sqlx::query_as("SELECT current_user::text, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert_eq!(user, "maintainpro_app");
    assert!(!bypass);

    let tables = tenant_tables(&t.db).await;
    assert!(tables.len() >= 10, "{tables:?}");
    for table in &tables {
        let (rls, force): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass",
        )
        .bind(table)
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert!(rls && force, "{table} must ENABLE and FORCE row-level security");
        // Acting for A, B's rows do not exist.
        let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
        let foreign: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE organization_id = $1"
        ))
        .bind(b.tenant.org_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(foreign, 0, "{table} leaks organization B's rows to A");
        // Acting for nobody, nothing exists.
        let mut none = t.db.system().await.unwrap();
        let any: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *none)
            .await
            .unwrap();
        assert_eq!(any, 0, "{table} is visible without an organization");
    }

    // B's work order and equipment by id, acting for A: not found.
    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    assert!(matches!(
        work_orders::get(&mut tx, b.work_order).await,
        Err(ModelError::NotFound(_))
    ));
    assert!(matches!(
        equipment::get(&mut tx, b.equipment).await,
        Err(ModelError::NotFound(_))
    ));
    let hits: i64 = sqlx::query_scalar("SELECT count(*) FROM work_orders WHERE id = $1")
        .bind(b.work_order)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(hits, 0);
    // A cannot write rows for B, even naming B explicitly.
    let err =
        sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, now(), 2)")
            .bind(b.tenant.org_id)
            .bind(b.sensor)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);
    // Nor update B's rows.
    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    let changed = sqlx::query("UPDATE work_orders SET title = 'pwned' WHERE id = $1")
        .bind(b.work_order)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    // A work order in A cannot reference B's equipment.
    let err = work_orders::create(&mut tx, &a.tenant, new_wo("x", Some(b.equipment)))
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Validation(_)), "{err:?}");
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn concurrent_creations_get_consecutive_numbers() {
    let t = test_db().await;
    let a = seed(&t.db, "numbers").await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let db = t.db.clone();
        let tenant = a.tenant;
        handles.push(tokio::spawn(async move {
            let mut tx = db.tenant(tenant.org_id).await.unwrap();
            let wo = work_orders::create(&mut tx, &tenant, new_wo(&format!("job {i}"), None))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            wo.number
        }));
    }
    let mut numbers = Vec::new();
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    numbers.sort();
    // Number 1 went to the seeded work order.
    assert_eq!(numbers, (2..=51).collect::<Vec<i64>>());
    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    let wo = work_orders::get(&mut tx, a.work_order).await.unwrap();
    assert_eq!(wo.code, "WO-000001");
    drop(tx);
    t.cleanup().await;
}

async fn anomaly(db: &Db, org: &Org) -> Uuid {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let a = anomalies::open(
        &mut tx,
        &org.tenant,
        NewAnomaly {
            sensor_id: org.sensor,
            equipment_id: org.equipment,
            kind: "high".into(),
            detector: "test".into(),
            severity: "high".into(),
            score: 9.0,
            started_at: chrono::Utc::now(),
            peak_value: 99.0,
            baseline: Some(50.0),
            details: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    a.id
}

fn raise(org: &Org, anomaly_id: Uuid) -> AutoRaise {
    AutoRaise {
        anomaly_id,
        equipment_id: org.equipment,
        sensor_id: org.sensor,
        failure_mode: format!("process:{}", org.sensor),
        severity: "high".into(),
        evidence: serde_json::json!({}),
        title: "Pump: temp abnormally high".into(),
        description: String::new(),
        kind: Kind::Corrective,
    }
}

/// The default policy without the cooldown after a closed work order.
fn no_cooldown() -> AutoPolicy {
    AutoPolicy {
        cooldown: chrono::Duration::zero(),
        ..AutoPolicy::default()
    }
}

#[tokio::test]
async fn one_open_auto_work_order_per_equipment_and_key() {
    let t = test_db().await;
    let org = seed(&t.db, "dedup").await;

    // Concurrent raises for the same problem: one work order, N occurrences.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let a = anomaly(&t.db, &org).await;
        let (db, r, tenant) = (t.db.clone(), raise(&org, a), org.tenant);
        handles.push(tokio::spawn(async move {
            let mut tx = db.tenant(tenant.org_id).await.unwrap();
            let raised = work_orders::raise_auto(&mut tx, &tenant, r, &no_cooldown())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            raised
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let r = h.await.unwrap();
        created += usize::from(r.is_created());
        ids.insert(r.work_order().unwrap().id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let wo_id = *ids.iter().next().unwrap();
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let wo = work_orders::get(&mut tx, wo_id).await.unwrap();
    assert_eq!(wo.occurrence_count, 8);
    assert_eq!(wo.source, work_orders::Source::Auto);
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM anomalies WHERE work_order_id = $1")
        .bind(wo_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(linked, 8);

    // Once it is done, the next anomaly opens a new one.
    diagnose(&mut tx, &org.tenant, wo_id).await;
    work_orders::transition(&mut tx, &org.tenant, wo_id, Status::InProgress, "")
        .await
        .unwrap();
    work_orders::transition_with(
        &mut tx,
        &org.tenant,
        wo_id,
        Status::Completed,
        "",
        Some(Verdict::TrueAlarm),
        &no_cooldown(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let a = anomaly(&t.db, &org).await;
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let again = work_orders::raise_auto(&mut tx, &org.tenant, raise(&org, a), &no_cooldown())
        .await
        .unwrap();
    assert!(again.is_created());
    assert_ne!(again.work_order().unwrap().id, wo_id);
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn illegal_transitions_change_nothing() {
    let t = test_db().await;
    let org = seed(&t.db, "machine").await;
    for &from in Status::ALL {
        for &to in Status::ALL {
            // Put a fresh work order into `from` through legal steps.
            let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
            let wo = work_orders::create(&mut tx, &org.tenant, new_wo("walk", None))
                .await
                .unwrap();
            diagnose(&mut tx, &org.tenant, wo.id).await;
            let path: &[Status] = match from {
                Status::Open => &[],
                Status::InProgress => &[Status::InProgress],
                Status::OnHold => &[Status::InProgress, Status::OnHold],
                Status::Completed => &[Status::InProgress, Status::Completed],
                Status::Verified => &[Status::InProgress, Status::Completed, Status::Verified],
                Status::Cancelled => &[Status::Cancelled],
            };
            for s in path {
                work_orders::transition(&mut tx, &org.tenant, wo.id, *s, "")
                    .await
                    .unwrap();
            }
            let result = work_orders::transition(&mut tx, &org.tenant, wo.id, to, "").await;
            let now = work_orders::get(&mut tx, wo.id).await.unwrap().status;
            if from.can_become(to) {
                assert_eq!(result.unwrap().status, to);
                assert_eq!(now, to);
            } else {
                assert!(
                    matches!(result, Err(ModelError::InvalidTransition { .. })),
                    "{from} -> {to} should be refused"
                );
                assert_eq!(now, from, "{from} -> {to} changed the status");
            }
            tx.commit().await.unwrap();
        }
    }
    t.cleanup().await;
}
