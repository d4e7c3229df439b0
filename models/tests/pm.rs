//! Preventive maintenance against a real PostgreSQL: a schedule that fell
//! due while the service was down generates its work order once — also with
//! two workers racing — completion-anchored schedules wait for the work,
//! and condition schedules fire once per open work order.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use maintainpro_models::pm::{self, NewPmSchedule};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::work_orders::{self, Status};
use maintainpro_models::Db;
use uuid::Uuid;

fn schedule(org: &SeededOrg, trigger: &str) -> NewPmSchedule {
    NewPmSchedule {
        title: "Grease bearings".into(),
        description: String::new(),
        equipment_id: org.equipment.id,
        priority: None,
        assigned_to: None,
        trigger: trigger.into(),
        interval_count: None,
        interval_unit: None,
        anchor: None,
        first_due_at: None,
        sensor_id: None,
        condition: None,
        threshold_low: None,
        threshold_high: None,
        checklist: Vec::new(),
    }
}

async fn create(db: &Db, org: &SeededOrg, new: NewPmSchedule) -> pm::PmSchedule {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let s = pm::create(&mut tx, &org.tenant, new).await.unwrap();
    tx.commit().await.unwrap();
    s
}

async fn finish(db: &Db, org: &SeededOrg, wo: Uuid) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    for s in [Status::InProgress, Status::Completed] {
        work_orders::transition(&mut tx, &org.tenant, wo, s, "")
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_missed_occurrence_is_generated_once_even_with_two_workers() {
    let t = test_db().await;
    let org = seed_org(&t.db, "pm-cal", &[]).await;
    // Weekly, first due three and a half weeks ago: the service was down.
    let s = create(
        &t.db,
        &org,
        NewPmSchedule {
            interval_count: Some(1),
            interval_unit: Some("week".into()),
            first_due_at: Some(Utc::now() - Duration::days(25)),
            ..schedule(&org, "calendar")
        },
    )
    .await;
    let now = Utc::now();
    let (a, b) = tokio::join!(
        pm::run_due(&t.db, org.tenant.org_id, now),
        pm::run_due(&t.db, org.tenant.org_id, now)
    );
    let made = a.unwrap().len() + b.unwrap().len();
    assert_eq!(
        made, 1,
        "one work order for the missed occurrence, not one per worker or per missed week"
    );
    // Restart: nothing more until the next due date, which is in the future.
    assert!(pm::run_due(&t.db, org.tenant.org_id, Utc::now())
        .await
        .unwrap()
        .is_empty());
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let s = pm::get(&mut tx, s.id).await.unwrap();
    let next = s.next_due_at.unwrap();
    assert!(next > now && next <= now + Duration::weeks(1), "{next}");
    let wos = sqlx::query_scalar::<_, String>("SELECT kind FROM work_orders")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(wos, vec!["preventive"]);
    drop(tx);
    // When the next one falls due, exactly one more.
    assert_eq!(
        pm::run_due(&t.db, org.tenant.org_id, next + Duration::seconds(1))
            .await
            .unwrap()
            .len(),
        1
    );
    t.cleanup().await;
}

#[tokio::test]
async fn completion_anchored_schedules_wait_for_the_work() {
    let t = test_db().await;
    let org = seed_org(&t.db, "pm-done", &[]).await;
    let s = create(
        &t.db,
        &org,
        NewPmSchedule {
            interval_count: Some(10),
            interval_unit: Some("day".into()),
            anchor: Some("completion".into()),
            first_due_at: Some(Utc::now() - Duration::hours(1)),
            ..schedule(&org, "calendar")
        },
    )
    .await;
    let made = pm::run_due(&t.db, org.tenant.org_id, Utc::now()).await.unwrap();
    assert_eq!(made.len(), 1);
    // Not done yet: no next due date, nothing generated even far later.
    assert!(
        pm::run_due(&t.db, org.tenant.org_id, Utc::now() + Duration::days(60))
            .await
            .unwrap()
            .is_empty()
    );
    finish(&t.db, &org, made[0].id).await;
    assert!(pm::run_due(&t.db, org.tenant.org_id, Utc::now())
        .await
        .unwrap()
        .is_empty());
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let next = pm::get(&mut tx, s.id).await.unwrap().next_due_at.unwrap();
    drop(tx);
    let expected = Utc::now() + Duration::days(10);
    assert!(
        (next - expected).num_seconds().abs() < 60,
        "next due {next}, expected about {expected}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn condition_schedules_fire_once_per_open_work_order() {
    let t = test_db().await;
    let org = seed_org(&t.db, "pm-cond", &["temp"]).await;
    let sensor = org.sensors[0].id;
    create(
        &t.db,
        &org,
        NewPmSchedule {
            sensor_id: Some(sensor),
            condition: Some("above".into()),
            threshold_high: Some(80.0),
            ..schedule(&org, "condition")
        },
    )
    .await;
    let reading = |v: f64, secs: i64| {
        let db = t.db.clone();
        let org_id = org.tenant.org_id;
        async move {
            let mut tx = db.tenant(org_id).await.unwrap();
            sqlx::query(
                "INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, $4)",
            )
            .bind(org_id)
            .bind(sensor)
            .bind(Utc::now() + Duration::seconds(secs))
            .bind(v)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    };
    reading(70.0, 0).await;
    assert!(pm::run_due(&t.db, org.tenant.org_id, Utc::now())
        .await
        .unwrap()
        .is_empty());
    reading(85.0, 1).await;
    let made = pm::run_due(&t.db, org.tenant.org_id, Utc::now()).await.unwrap();
    assert_eq!(made.len(), 1);
    reading(90.0, 2).await;
    assert!(
        pm::run_due(&t.db, org.tenant.org_id, Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "one open at a time"
    );
    finish(&t.db, &org, made[0].id).await;
    reading(91.0, 3).await;
    assert_eq!(
        pm::run_due(&t.db, org.tenant.org_id, Utc::now())
            .await
            .unwrap()
            .len(),
        1
    );
    t.cleanup().await;
}

#[tokio::test]
async fn invalid_schedules_are_refused_with_fields() {
    let t = test_db().await;
    let org = seed_org(&t.db, "pm-bad", &[]).await;
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let err = pm::create(&mut tx, &org.tenant, schedule(&org, "calendar"))
        .await
        .unwrap_err();
    let maintainpro_models::ModelError::Validation(fields) = err else {
        panic!("{err:?}")
    };
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, vec!["intervalCount", "intervalUnit"]);
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn overdue_work_is_escalated_step_by_step() {
    let t = test_db().await;
    let org = seed_org(&t.db, "escalate", &[]).await;
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let new = work_orders::NewWorkOrder {
        title: "Overdue job".into(),
        description: String::new(),
        kind: None,
        priority: Some(work_orders::Priority::Low),
        equipment_id: None,
        sensor_id: None,
        assigned_to: None,
        due_at: Some(Utc::now() - Duration::hours(30)),
    };
    let wo = work_orders::create(&mut tx, &org.tenant, new).await.unwrap();
    tx.commit().await.unwrap();
    let every = Duration::hours(24);
    let now = Utc::now();
    let first = work_orders::escalate_overdue(&t.db, org.tenant.org_id, now, every)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].priority, work_orders::Priority::Medium);
    // Not again until another period has passed.
    assert!(
        work_orders::escalate_overdue(&t.db, org.tenant.org_id, now + Duration::hours(1), every)
            .await
            .unwrap()
            .is_empty()
    );
    let later = work_orders::escalate_overdue(&t.db, org.tenant.org_id, now + Duration::hours(25), every)
        .await
        .unwrap();
    assert_eq!(later[0].priority, work_orders::Priority::High);
    // Done work is left alone. (Corrective work is completed with its
    // failure codes: work_orders::completion_requirements.)
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let codes = work_orders::WorkOrderPatch {
        problem_code: Some(Some("PDE".into())),
        cause_code: Some(Some("UNK".into())),
        remedy_code: Some(Some("ADJ".into())),
        ..Default::default()
    };
    work_orders::update(&mut tx, &org.tenant, wo.id, codes)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    finish(&t.db, &org, wo.id).await;
    assert!(
        work_orders::escalate_overdue(&t.db, org.tenant.org_id, now + Duration::days(9), every)
            .await
            .unwrap()
            .is_empty()
    );
    t.cleanup().await;
}
