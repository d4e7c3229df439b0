//! The reliability report against hand-computed figures.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use maintainpro_models::activity::{self, NewTimeLog};
use maintainpro_models::auth::Role;
use maintainpro_models::reports::{self, ReportRange};
use maintainpro_models::testkit::{seed_org, test_db};
use maintainpro_models::work_orders::{self, Kind, NewWorkOrder};
use maintainpro_models::{Actor, Tenant};

#[tokio::test]
async fn mtbf_mttr_availability_and_backlog() {
    let t = test_db().await;
    let org = seed_org(&t.db, "rel", &[]).await;
    let person = Tenant {
        org_id: org.tenant.org_id,
        actor: Actor::User {
            id: org.admin.id,
            role: Role::Admin,
        },
    };
    let to = Utc::now();
    let from = to - Duration::hours(100);
    let mut tx = t.db.tenant_for(&person).await.unwrap();
    let mut ids = Vec::new();
    for (kind, due) in [
        (Kind::Corrective, None),
        (Kind::Emergency, None),
        (Kind::Preventive, Some(to - Duration::hours(1))),
    ] {
        let new = NewWorkOrder {
            title: "job".into(),
            description: String::new(),
            kind: Some(kind),
            priority: None,
            equipment_id: Some(org.equipment.id),
            sensor_id: None,
            assigned_to: None,
            due_at: due,
        };
        ids.push(work_orders::create(&mut tx, &person, new).await.unwrap().id);
    }
    // Two failures: one repaired in 4 h, one in 6 h (set the times directly).
    for (id, created_h, repair_h) in [(ids[0], 90, 4), (ids[1], 50, 6)] {
        sqlx::query(
            "UPDATE work_orders SET status = 'completed', created_at = $2, completed_at = $2 + make_interval(hours => $3)
             WHERE id = $1",
        )
        .bind(id)
        .bind(to - Duration::hours(created_h))
        .bind(repair_h)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let log = NewTimeLog {
        minutes: 90,
        performed_on: None,
        note: String::new(),
        user_id: None,
    };
    activity::log_time(&mut tx, &person, ids[2], log).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let r = reports::reliability(
        &mut tx,
        &ReportRange {
            from: Some(from),
            to: Some(to),
        },
    )
    .await
    .unwrap();
    let a = r
        .assets
        .iter()
        .find(|a| a.equipment_id == org.equipment.id)
        .unwrap();
    assert_eq!(a.failures, 2);
    let mttr = a.mttr_hours.unwrap();
    assert!((mttr - 5.0).abs() < 1e-6, "{mttr}");
    // (100 h − 10 h repair) / 2 failures = 45 h; availability 45 / 50.
    let mtbf = a.mtbf_hours.unwrap();
    assert!((mtbf - 45.0).abs() < 1e-3, "{mtbf}");
    assert!((a.availability - 0.9).abs() < 1e-4, "{}", a.availability);
    assert_eq!((a.open_work_orders, a.overdue_work_orders), (1, 1));
    assert_eq!(a.labour_minutes, 90);
    assert_eq!(r.total_failures, 2);
    assert!(reports::reliability(
        &mut tx,
        &ReportRange {
            from: Some(to),
            to: Some(from)
        }
    )
    .await
    .is_err());
    drop(tx);
    t.cleanup().await;
}
