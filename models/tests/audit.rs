//! The audit log trigger: every write to a tenant table is recorded with
//! its actor and the row before/after, secrets are left out, and the log
//! is append-only and tenant-scoped.
#![allow(clippy::unwrap_used)]

use maintainpro_models::audit::{self, AuditFilter};
use maintainpro_models::auth::Role;
use maintainpro_models::equipment::{self, EquipmentUpdate};
use maintainpro_models::testkit::{seed_org, test_db};
use maintainpro_models::work_orders::{self, NewWorkOrder, Status};
use maintainpro_models::{Actor, Tenant};

#[tokio::test]
async fn writes_are_audited_with_actor_and_before_after() {
    let t = test_db().await;
    let a = seed_org(&t.db, "audit-a", &["temp"]).await;
    let b = seed_org(&t.db, "audit-b", &["temp"]).await;
    let person = Tenant {
        org_id: a.tenant.org_id,
        actor: Actor::User {
            id: a.admin.id,
            role: Role::Admin,
        },
    };
    let mut tx = t.db.tenant_for(&person).await.unwrap();
    let wo = work_orders::create(
        &mut tx,
        &person,
        NewWorkOrder {
            title: "Audit me".into(),
            description: String::new(),
            kind: None,
            priority: None,
            equipment_id: None,
            sensor_id: None,
            assigned_to: None,
            due_at: None,
        },
    )
    .await
    .unwrap();
    work_orders::transition(&mut tx, &person, wo.id, Status::InProgress, "")
        .await
        .unwrap();
    let rename = EquipmentUpdate {
        name: Some("Renamed pump".into()),
        ..Default::default()
    };
    equipment::update(&mut tx, &person, a.equipment.id, rename)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    let filter = AuditFilter {
        table: Some("work_orders".into()),
        row_id: Some(wo.id.to_string()),
        ..Default::default()
    };
    let entries = audit::list(&mut tx, &filter).await.unwrap().items;
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["insert", "update"], "{entries:?}");
    let update = &entries[0];
    assert_eq!(update.actor_user_id, Some(a.admin.id));
    assert_eq!(update.actor, "user:admin");
    assert_eq!(update.before.as_ref().unwrap()["status"], "open");
    assert_eq!(update.after.as_ref().unwrap()["status"], "in_progress");
    assert!(update.after.as_ref().unwrap().get("search").is_none());

    let eq = audit::list(
        &mut tx,
        &AuditFilter {
            table: Some("equipment".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items;
    assert_eq!(eq[0].before.as_ref().unwrap()["name"], "Cooling pump");
    assert_eq!(eq[0].after.as_ref().unwrap()["name"], "Renamed pump");

    // Seeding wrote users and devices: audited, with their secrets left out.
    let users = audit::list(
        &mut tx,
        &AuditFilter {
            table: Some("users".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items;
    assert!(!users.is_empty());
    for e in &users {
        assert!(e.after.as_ref().unwrap().get("password_hash").is_none(), "{e:?}");
    }
    let devices = audit::list(
        &mut tx,
        &AuditFilter {
            table: Some("devices".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items;
    assert!(devices[0].after.as_ref().unwrap().get("secret_hash").is_none());

    // Append-only for the services.
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    let mut tx = t.db.tenant(a.tenant.org_id).await.unwrap();
    let err = sqlx::query("UPDATE audit_log SET actor = 'x'")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);

    // B sees only B's history.
    let mut tx = t.db.tenant(b.tenant.org_id).await.unwrap();
    let all = audit::list(
        &mut tx,
        &AuditFilter {
            limit: Some(500),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items;
    assert!(!all.is_empty());
    assert!(all
        .iter()
        .all(|e| e.row_id.as_deref() != Some(&wo.id.to_string())));
    drop(tx);
    t.cleanup().await;
}
