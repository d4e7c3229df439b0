//! Equipment hierarchy rules against a real PostgreSQL: moves refuse cycles
//! (also when two moves race), retirement cascades down, and subtree/path
//! queries follow the hierarchy.
#![allow(clippy::unwrap_used)]

use maintainpro_models::equipment::{self, EquipmentUpdate, NewEquipment};
use maintainpro_models::testkit::{seed_org, test_db};
use maintainpro_models::{Db, ModelError, Tenant};
use uuid::Uuid;

async fn add(db: &Db, tenant: &Tenant, tag: &str, parent: Option<Uuid>) -> Uuid {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    let new = NewEquipment {
        name: tag.into(),
        asset_tag: tag.into(),
        parent_id: parent,
        description: String::new(),
        location: String::new(),
        criticality: None,
    };
    let e = equipment::create(&mut tx, tenant, new).await.unwrap();
    tx.commit().await.unwrap();
    e.id
}

async fn update(
    db: &Db,
    tenant: &Tenant,
    id: Uuid,
    change: EquipmentUpdate,
) -> Result<equipment::Equipment, ModelError> {
    let mut tx = db.tenant(tenant.org_id).await.unwrap();
    let r = equipment::update(&mut tx, tenant, id, change).await;
    if r.is_ok() {
        tx.commit().await.unwrap();
    }
    r
}

fn move_under(parent: Uuid) -> EquipmentUpdate {
    EquipmentUpdate {
        parent_id: Some(parent),
        ..Default::default()
    }
}

fn status(s: &str) -> EquipmentUpdate {
    EquipmentUpdate {
        status: Some(s.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn hierarchy_moves_cascades_and_queries() {
    let t = test_db().await;
    let org = seed_org(&t.db, "tree", &[]).await;
    let tn = org.tenant;
    let site = add(&t.db, &tn, "SITE", None).await;
    let line = add(&t.db, &tn, "LINE", Some(site)).await;
    let pump = add(&t.db, &tn, "PUMP", Some(line)).await;
    let motor = add(&t.db, &tn, "MOTOR", Some(pump)).await;

    // Path from the top down, and the subtree below the line.
    let mut tx = t.db.tenant(tn.org_id).await.unwrap();
    let path: Vec<String> = equipment::path(&mut tx, motor)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.asset_tag)
        .collect();
    assert_eq!(path, vec!["SITE", "LINE", "PUMP", "MOTOR"]);
    let sub = equipment::subtree(&mut tx, line).await.unwrap();
    assert_eq!(sub.children.len(), 1);
    assert_eq!(sub.children[0].children[0].equipment.id, motor);
    drop(tx);

    // Cycles are refused: under itself, under a descendant.
    for target in [site, motor] {
        let err = update(&t.db, &tn, site, move_under(target)).await.unwrap_err();
        assert!(matches!(err, ModelError::Validation(_)), "{err:?}");
    }
    // A legal move, then make it a root again.
    assert_eq!(
        update(&t.db, &tn, pump, move_under(site))
            .await
            .unwrap()
            .parent_id,
        Some(site)
    );
    let root = EquipmentUpdate {
        move_to_root: true,
        ..Default::default()
    };
    assert_eq!(update(&t.db, &tn, pump, root).await.unwrap().parent_id, None);
    update(&t.db, &tn, pump, move_under(line)).await.unwrap();

    // Retiring the line retires everything below it.
    update(&t.db, &tn, line, status("retired")).await.unwrap();
    let mut tx = t.db.tenant(tn.org_id).await.unwrap();
    for id in [pump, motor] {
        assert_eq!(equipment::get(&mut tx, id).await.unwrap().status, "retired");
    }
    assert_eq!(equipment::get(&mut tx, site).await.unwrap().status, "active");
    drop(tx);
    // A child cannot come back into service under a retired parent.
    let err = update(&t.db, &tn, motor, status("active")).await.unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    // Nor can in-service equipment be moved under it.
    let err = update(&t.db, &tn, site, move_under(line)).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Validation(_) | ModelError::Conflict(_)),
        "{err:?}"
    );
    let fresh = add(&t.db, &tn, "FRESH", None).await;
    let err = update(&t.db, &tn, fresh, move_under(line)).await.unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    t.cleanup().await;
}

/// X under Y and Y under X at the same moment: only one may win.
#[tokio::test]
async fn racing_moves_cannot_build_a_cycle() {
    let t = test_db().await;
    let org = seed_org(&t.db, "race", &[]).await;
    let tn = org.tenant;
    for round in 0..5 {
        let x = add(&t.db, &tn, &format!("X{round}"), None).await;
        let y = add(&t.db, &tn, &format!("Y{round}"), None).await;
        let (a, b) = tokio::join!(
            update(&t.db, &tn, x, move_under(y)),
            update(&t.db, &tn, y, move_under(x))
        );
        assert!(a.is_ok() != b.is_ok(), "exactly one move succeeds: {a:?} / {b:?}");
    }
    t.cleanup().await;
}
