//! The auto-work-order policy and its closed loop against a real
//! PostgreSQL: priority from severity and criticality, suppression
//! (cooldown, flapping, an ancestor's alarm of the same family), verdicts
//! that tune the detector, the quiet period before verification, refit
//! requests after repairs, and the evidence helpers.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use maintainpro_models::anomalies::{self, NewAnomaly};
use maintainpro_models::auto_policy::{self, AutoPolicy, SuppressReason};
use maintainpro_models::devices::{self, NewSensor};
use maintainpro_models::equipment::{self, NewEquipment};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::tuning;
use maintainpro_models::work_orders::{
    self, AutoRaise, Kind, NewWorkOrder, Priority, Raised, Status, Verdict, WorkOrder, WorkOrderPatch,
};
use maintainpro_models::{activity, Db, ModelError, Tenant, Tx};
use uuid::Uuid;

const DETECTOR: &str = "robust_z";

/// A pump (criticality high, sensor `temp`) with a motor under it
/// (criticality low, sensor `vib`) and a bearing under the motor (sensor `flow`).
struct Plant {
    org: SeededOrg,
    pump: Uuid,
    motor: Uuid,
    bearing: Uuid,
    temp: Uuid,
    vib: Uuid,
    flow: Uuid,
}

impl Plant {
    fn tenant(&self) -> Tenant {
        self.org.tenant
    }
}

async fn plant(db: &Db, slug: &str) -> Plant {
    let org = seed_org(db, slug, &["temp"]).await;
    let t = org.tenant;
    let mut tx = db.tenant(t.org_id).await.unwrap();
    let child = |name: &str, tag: &str, parent: Uuid, criticality: &str| NewEquipment {
        name: name.into(),
        asset_tag: tag.into(),
        parent_id: Some(parent),
        description: String::new(),
        location: "Hall 1".into(),
        criticality: Some(criticality.into()),
    };
    let motor = equipment::create(&mut tx, &t, child("Motor", "M-1", org.equipment.id, "low"))
        .await
        .unwrap();
    let bearing = equipment::create(&mut tx, &t, child("Bearing", "B-1", motor.id, "medium"))
        .await
        .unwrap();
    let sensor = |metric: &str, equipment_id: Uuid| NewSensor {
        device_id: org.device.id,
        equipment_id,
        metric: metric.into(),
        name: None,
        unit: String::new(),
        min_value: None,
        max_value: None,
    };
    let vib = devices::create_sensor(&mut tx, &t, sensor("vib", motor.id))
        .await
        .unwrap();
    let flow = devices::create_sensor(&mut tx, &t, sensor("flow", bearing.id))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Plant {
        pump: org.equipment.id,
        temp: org.sensors[0].id,
        motor: motor.id,
        bearing: bearing.id,
        vib: vib.id,
        flow: flow.id,
        org,
    }
}

async fn anomaly_at(
    tx: &mut Tx,
    t: &Tenant,
    equipment_id: Uuid,
    sensor_id: Uuid,
    kind: &str,
    at: DateTime<Utc>,
) -> Uuid {
    let new = NewAnomaly {
        sensor_id,
        equipment_id,
        kind: kind.into(),
        detector: DETECTOR.into(),
        severity: "high".into(),
        score: 9.0,
        started_at: at,
        peak_value: 99.0,
        baseline: Some(50.0),
        details: serde_json::json!({"z": 9.0}),
    };
    anomalies::open(tx, t, new).await.unwrap().id
}

fn auto(
    anomaly_id: Uuid,
    equipment_id: Uuid,
    sensor_id: Uuid,
    failure_mode: &str,
    severity: &str,
) -> AutoRaise {
    let kind = if auto_policy::family(failure_mode) == auto_policy::SENSOR_HEALTH {
        Kind::Inspection
    } else {
        Kind::Corrective
    };
    AutoRaise {
        anomaly_id,
        equipment_id,
        sensor_id,
        failure_mode: failure_mode.into(),
        severity: severity.into(),
        evidence: serde_json::json!({"failureMode": failure_mode}),
        title: format!("auto: {failure_mode}"),
        description: String::new(),
        kind,
    }
}

/// A new anomaly (started at `at`) of `failure_mode`, raised.
#[allow(clippy::too_many_arguments)]
async fn raise_at(
    tx: &mut Tx,
    t: &Tenant,
    equipment_id: Uuid,
    sensor_id: Uuid,
    failure_mode: &str,
    at: DateTime<Utc>,
    policy: &AutoPolicy,
) -> (Uuid, Raised) {
    let a = anomaly_at(tx, t, equipment_id, sensor_id, "high", at).await;
    let r = work_orders::raise_auto(
        tx,
        t,
        auto(a, equipment_id, sensor_id, failure_mode, "high"),
        policy,
    )
    .await
    .unwrap();
    (a, r)
}

async fn raise(
    tx: &mut Tx,
    t: &Tenant,
    equipment_id: Uuid,
    sensor_id: Uuid,
    failure_mode: &str,
    policy: &AutoPolicy,
) -> (Uuid, Raised) {
    raise_at(tx, t, equipment_id, sensor_id, failure_mode, Utc::now(), policy).await
}

fn created(r: &Raised) -> WorkOrder {
    match r {
        Raised::Created(wo) => wo.clone(),
        other => panic!("expected a created work order, got {other:?}"),
    }
}

fn no_cooldown() -> AutoPolicy {
    AutoPolicy {
        cooldown: Duration::zero(),
        ..AutoPolicy::default()
    }
}

/// Starts a work order and completes it with `verdict` (a true alarm gets
/// failure codes first, as corrective work needs them).
async fn complete(tx: &mut Tx, t: &Tenant, id: Uuid, verdict: Verdict) -> WorkOrder {
    if verdict == Verdict::TrueAlarm {
        let codes = WorkOrderPatch {
            problem_code: Some(Some("OHE".into())),
            cause_code: Some(Some("WEA".into())),
            remedy_code: Some(Some("REP".into())),
            ..Default::default()
        };
        work_orders::update(tx, t, id, codes).await.unwrap();
    }
    work_orders::transition(tx, t, id, Status::InProgress, "")
        .await
        .unwrap();
    work_orders::transition_with(
        tx,
        t,
        id,
        Status::Completed,
        "done",
        Some(verdict),
        &AutoPolicy::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn priority_comes_from_severity_and_criticality() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "prio").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = AutoPolicy::default();
    // The pump is critical-ish (high): medium severity is bumped to high.
    let a = anomaly_at(&mut tx, &t, p.pump, p.temp, "high", Utc::now()).await;
    let r = work_orders::raise_auto(
        &mut tx,
        &t,
        auto(a, p.pump, p.temp, "process:temp", "medium"),
        &policy,
    )
    .await
    .unwrap();
    let wo = created(&r);
    assert_eq!(wo.priority, Priority::High);
    assert_eq!(wo.failure_mode.as_deref(), Some("process:temp"));
    assert_eq!(
        wo.evidence,
        Some(serde_json::json!({"failureMode": "process:temp"}))
    );
    assert_eq!(wo.anomaly_id, Some(a));
    // The motor is low: medium stays medium; low stays low.
    let a = anomaly_at(&mut tx, &t, p.motor, p.vib, "high", Utc::now()).await;
    let r = work_orders::raise_auto(
        &mut tx,
        &t,
        auto(a, p.motor, p.vib, "predicted:vib", "medium"),
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(created(&r).priority, Priority::Medium);
    let a = anomaly_at(&mut tx, &t, p.motor, p.vib, "high", Utc::now()).await;
    let r = work_orders::raise_auto(
        &mut tx,
        &t,
        auto(a, p.motor, p.vib, "sensor_health:vib", "low"),
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(created(&r).priority, Priority::Low);
    // A severity outside the scale is refused, naming the field.
    let a = anomaly_at(&mut tx, &t, p.motor, p.vib, "high", Utc::now()).await;
    let err = work_orders::raise_auto(
        &mut tx,
        &t,
        auto(a, p.motor, p.vib, "process:x", "urgent"),
        &policy,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ModelError::Validation(f) if f[0].field == "severity"),
        "{err:?}"
    );
    let err = work_orders::raise_auto(&mut tx, &t, auto(a, p.motor, p.vib, ":x", "low"), &policy)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::Validation(f) if f[0].field == "failureMode"),
        "{err:?}"
    );
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn open_work_order_collects_occurrences_and_cooldown_suppresses_after_close() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "cool").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = AutoPolicy::default();
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    let wo = created(&r);
    let (a2, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    match r {
        Raised::Added(w) => {
            assert_eq!(w.id, wo.id);
            assert_eq!(w.occurrence_count, 2);
        }
        other => panic!("expected Added, got {other:?}"),
    }
    assert_eq!(
        anomalies::get(&mut tx, a2).await.unwrap().work_order_id,
        Some(wo.id)
    );

    // Completed: a new occurrence within the hour is suppressed, and the
    // anomaly says why and until when.
    let done = complete(&mut tx, &t, wo.id, Verdict::FalseAlarm).await;
    let (a3, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    let until = match r {
        Raised::Suppressed {
            reason: SuppressReason::Cooldown { until },
        } => until,
        other => panic!("expected a cooldown, got {other:?}"),
    };
    assert_eq!(until, done.completed_at.unwrap() + Duration::hours(1));
    let a3 = anomalies::get(&mut tx, a3).await.unwrap();
    assert_eq!(a3.suppressed_reason.as_deref(), Some("cooldown"));
    assert_eq!(a3.suppressed_until, Some(until));
    assert_eq!(a3.failure_mode.as_deref(), Some("process:temp"));
    assert_eq!(a3.work_order_id, None);
    // Another key of the same equipment is not affected.
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp-low", &policy).await;
    let other = created(&r);
    // Without a cooldown, the next anomaly raises a new work order.
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &no_cooldown()).await;
    assert_ne!(created(&r).id, wo.id);

    // Cancelled counts as closed too.
    work_orders::transition(&mut tx, &t, other.id, Status::Cancelled, "noise")
        .await
        .unwrap();
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp-low", &policy).await;
    assert!(
        matches!(
            r,
            Raised::Suppressed {
                reason: SuppressReason::Cooldown { .. }
            }
        ),
        "{r:?}"
    );
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn flapping_key_is_suppressed_within_the_window() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "flap").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = no_cooldown(); // 3 in 6 h
    let t0 = Utc::now();
    // Three raises that each get cancelled at once: no work order stays open.
    for i in 0..3 {
        let (_, r) = raise_at(
            &mut tx,
            &t,
            p.pump,
            p.temp,
            "process:temp",
            t0 + Duration::minutes(i),
            &policy,
        )
        .await;
        let wo = created(&r);
        work_orders::transition(&mut tx, &t, wo.id, Status::Cancelled, "")
            .await
            .unwrap();
    }
    // The fourth within 6 h is flapping, and so is the fifth.
    for i in 3..5 {
        let (a, r) = raise_at(
            &mut tx,
            &t,
            p.pump,
            p.temp,
            "process:temp",
            t0 + Duration::minutes(i),
            &policy,
        )
        .await;
        assert!(
            matches!(
                r,
                Raised::Suppressed {
                    reason: SuppressReason::Flapping
                }
            ),
            "{r:?}"
        );
        let a = anomalies::get(&mut tx, a).await.unwrap();
        assert_eq!(a.suppressed_reason.as_deref(), Some("flapping"));
    }
    // A higher limit lets it through.
    let lenient = AutoPolicy {
        flap_limit: 10,
        ..no_cooldown()
    };
    let (_, r) = raise_at(
        &mut tx,
        &t,
        p.pump,
        p.temp,
        "process:temp",
        t0 + Duration::minutes(5),
        &lenient,
    )
    .await;
    let wo = created(&r);
    work_orders::transition(&mut tx, &t, wo.id, Status::Cancelled, "")
        .await
        .unwrap();
    // Past the window, the earlier episodes no longer count.
    let (_, r) = raise_at(
        &mut tx,
        &t,
        p.pump,
        p.temp,
        "process:temp",
        t0 + Duration::hours(7),
        &policy,
    )
    .await;
    created(&r);
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn parent_alarm_silences_children_of_the_same_family() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "parent").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = AutoPolicy::default();
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp-high", &policy).await;
    let pump_wo = created(&r);

    // The motor's process alarm is recorded on the pump's work order.
    let (a, r) = raise(&mut tx, &t, p.motor, p.vib, "process:vib-high", &policy).await;
    match r {
        Raised::Suppressed {
            reason: SuppressReason::ParentAlarm { work_order_id },
        } => assert_eq!(work_order_id, pump_wo.id),
        other => panic!("expected a parent alarm, got {other:?}"),
    }
    let a = anomalies::get(&mut tx, a).await.unwrap();
    assert_eq!(a.work_order_id, Some(pump_wo.id));
    assert_eq!(a.suppressed_reason.as_deref(), Some("parent_alarm"));
    assert_eq!(
        work_orders::get(&mut tx, pump_wo.id)
            .await
            .unwrap()
            .occurrence_count,
        2
    );
    // So is the bearing's, two levels down.
    let (_, r) = raise(&mut tx, &t, p.bearing, p.flow, "process:flow-low", &policy).await;
    assert!(
        matches!(r, Raised::Suppressed { reason: SuppressReason::ParentAlarm { work_order_id } } if work_order_id == pump_wo.id),
        "{r:?}"
    );
    assert_eq!(
        work_orders::get(&mut tx, pump_wo.id)
            .await
            .unwrap()
            .occurrence_count,
        3
    );

    // Another family is not silenced; an instrument fault never is.
    let (_, r) = raise(&mut tx, &t, p.motor, p.vib, "predicted:vib-high", &policy).await;
    created(&r);
    let (_, r) = raise(&mut tx, &t, p.motor, p.vib, "sensor_health:vib", &policy).await;
    let motor_sh = created(&r);
    assert_eq!(motor_sh.kind, Kind::Inspection);
    // Not even by the parent's own instrument fault.
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "sensor_health:temp", &policy).await;
    created(&r);
    let (_, r) = raise(&mut tx, &t, p.bearing, p.flow, "sensor_health:flow", &policy).await;
    created(&r);
    // A parent's alarm does not silence the parent itself (other key: new work order).
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp-low", &policy).await;
    let pump_low = created(&r);

    // Once the pump's process work orders are closed, the motor raises its own.
    for id in [pump_wo.id, pump_low.id] {
        work_orders::transition(&mut tx, &t, id, Status::Cancelled, "")
            .await
            .unwrap();
    }
    let (_, r) = raise(&mut tx, &t, p.motor, p.vib, "process:vib-high", &policy).await;
    assert_eq!(created(&r).equipment_id, Some(p.motor));
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn verdicts_are_required_and_false_alarms_widen_thresholds() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "verdict").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = no_cooldown();
    assert_eq!(
        tuning::threshold_scale(&mut tx, p.temp, DETECTOR).await.unwrap(),
        1.0
    );

    // Completing an auto work order without a verdict is refused, naming it.
    let (a, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    let wo = created(&r);
    work_orders::transition(&mut tx, &t, wo.id, Status::InProgress, "")
        .await
        .unwrap();
    let err = work_orders::transition(&mut tx, &t, wo.id, Status::Completed, "")
        .await
        .unwrap_err();
    let ModelError::Validation(fields) = &err else {
        panic!("{err:?}")
    };
    assert!(fields.iter().any(|f| f.field == "verdict"), "{fields:?}");
    assert_eq!(
        work_orders::get(&mut tx, wo.id).await.unwrap().status,
        Status::InProgress
    );
    // A true alarm still needs the failure codes …
    let err = work_orders::transition_with(
        &mut tx,
        &t,
        wo.id,
        Status::Completed,
        "",
        Some(Verdict::TrueAlarm),
        &policy,
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, ModelError::Validation(f) if f.iter().any(|f| f.field == "problemCode")));
    // … a false alarm only the verdict.
    let done = work_orders::transition_with(
        &mut tx,
        &t,
        wo.id,
        Status::Completed,
        "",
        Some(Verdict::FalseAlarm),
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(done.verdict, Some(Verdict::FalseAlarm));
    assert_eq!(done.problem_code, None);
    let a = anomalies::get(&mut tx, a).await.unwrap();
    assert_eq!(a.verdict.as_deref(), Some("false_alarm"));
    let first = tuning::threshold_scale(&mut tx, p.temp, DETECTOR).await.unwrap();
    assert!((first - tuning::FALSE_ALARM_FACTOR).abs() < 1e-9, "{first}");
    // Other sensors and detectors are untouched.
    assert_eq!(
        tuning::threshold_scale(&mut tx, p.vib, DETECTOR).await.unwrap(),
        1.0
    );
    assert_eq!(
        tuning::threshold_scale(&mut tx, p.temp, "other").await.unwrap(),
        1.0
    );
    // The verdict of a completed work order is final.
    let patch = WorkOrderPatch {
        verdict: Some(Verdict::TrueAlarm),
        ..Default::default()
    };
    let err = work_orders::update(&mut tx, &t, wo.id, patch).await.unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");

    // A second false alarm: higher again.
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    complete(&mut tx, &t, created(&r).id, Verdict::FalseAlarm).await;
    let second = tuning::threshold_scale(&mut tx, p.temp, DETECTOR).await.unwrap();
    assert!(
        second > first && (second - first * tuning::FALSE_ALARM_FACTOR).abs() < 1e-9,
        "{second}"
    );
    // Many more: capped.
    for _ in 0..8 {
        let (_, r) = raise(
            &mut tx,
            &t,
            p.pump,
            p.temp,
            "process:temp",
            &AutoPolicy {
                flap_limit: 100,
                ..policy
            },
        )
        .await;
        complete(&mut tx, &t, created(&r).id, Verdict::FalseAlarm).await;
    }
    let capped = tuning::threshold_scale(&mut tx, p.temp, DETECTOR).await.unwrap();
    assert_eq!(capped, tuning::MAX_THRESHOLD_SCALE);
    let all = tuning::all(&mut tx).await.unwrap();
    assert_eq!(all.get(&(p.temp, DETECTOR.to_string())), Some(&capped));
    assert_eq!(all.len(), 1);

    // A true alarm (set with PATCH before completing) nudges it back toward 1.
    let (_, r) = raise(
        &mut tx,
        &t,
        p.pump,
        p.temp,
        "process:temp",
        &AutoPolicy {
            flap_limit: 100,
            ..policy
        },
    )
    .await;
    let wo = created(&r);
    let patch = WorkOrderPatch {
        verdict: Some(Verdict::TrueAlarm),
        problem_code: Some(Some("OHE".into())),
        cause_code: Some(Some("WEA".into())),
        remedy_code: Some(Some("REP".into())),
        ..Default::default()
    };
    work_orders::update(&mut tx, &t, wo.id, patch).await.unwrap();
    work_orders::transition(&mut tx, &t, wo.id, Status::InProgress, "")
        .await
        .unwrap();
    let done = work_orders::transition(&mut tx, &t, wo.id, Status::Completed, "")
        .await
        .unwrap();
    assert_eq!(done.verdict, Some(Verdict::TrueAlarm));
    let rows = tuning::for_sensor(&mut tx, p.temp).await.unwrap();
    assert_eq!((rows[0].false_alarms, rows[0].true_alarms), (10, 1));
    assert!((rows[0].threshold_scale - capped / tuning::TRUE_ALARM_FACTOR).abs() < 1e-9);

    // Manual work orders take no verdict.
    let manual = work_orders::create(
        &mut tx,
        &t,
        NewWorkOrder {
            title: "Paint the fence".into(),
            kind: Some(Kind::Preventive),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let patch = WorkOrderPatch {
        verdict: Some(Verdict::FalseAlarm),
        ..Default::default()
    };
    let err = work_orders::update(&mut tx, &t, manual.id, patch)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::Validation(f) if f[0].field == "verdict"),
        "{err:?}"
    );
    tx.commit().await.unwrap();

    // Tuning rows are the organization's own.
    let other = seed_org(&tdb.db, "verdict-b", &["temp"]).await;
    let mut tx = tdb.db.tenant(other.tenant.org_id).await.unwrap();
    assert!(tuning::all(&mut tx).await.unwrap().is_empty());
    assert_eq!(
        tuning::threshold_scale(&mut tx, p.temp, DETECTOR).await.unwrap(),
        1.0
    );
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn true_alarms_are_verified_after_a_quiet_period_and_recurrences_reported() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "quiet").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = AutoPolicy::default();
    let quiet = policy.verify_quiet;
    let started = Utc::now() - Duration::minutes(10);
    let (a, r) = raise_at(&mut tx, &t, p.pump, p.temp, "process:temp", started, &policy).await;
    let wo = created(&r);
    anomalies::close(&mut tx, &t, a, started + Duration::minutes(5))
        .await
        .unwrap();
    let done = complete(&mut tx, &t, wo.id, Verdict::TrueAlarm).await;
    let completed_at = done.completed_at.unwrap();

    // Verifying by hand before the quiet period: 409 with a clear message.
    let err = work_orders::transition(&mut tx, &t, wo.id, Status::Verified, "")
        .await
        .unwrap_err();
    let ModelError::Conflict(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("stayed normal for 2 h"), "{msg}");
    // Not before the quiet period either, automatically.
    let v = work_orders::verify_quiet_auto(&mut tx, &t, completed_at + quiet - Duration::minutes(1), quiet)
        .await
        .unwrap();
    assert!(v.verified.is_empty() && v.recurred.is_empty());
    assert_eq!(
        work_orders::get(&mut tx, wo.id).await.unwrap().status,
        Status::Completed
    );
    // After it: verified, with a note in the history.
    let v = work_orders::verify_quiet_auto(&mut tx, &t, completed_at + quiet + Duration::minutes(1), quiet)
        .await
        .unwrap();
    assert_eq!(v.verified.iter().map(|w| w.id).collect::<Vec<_>>(), vec![wo.id]);
    assert_eq!(v.verified[0].status, Status::Verified);
    let note: String = sqlx::query_scalar(
        "SELECT note FROM work_order_status_history WHERE work_order_id = $1 AND to_status = 'verified'",
    )
    .bind(wo.id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(note.starts_with("signal normal for 2 h"), "{note}");

    // Another key: completed as a true alarm, but the failure mode comes
    // back (suppressed by the cooldown): reported once, left completed.
    let (a, r) = raise_at(&mut tx, &t, p.motor, p.vib, "process:vib", started, &policy).await;
    let wo = created(&r);
    anomalies::close(&mut tx, &t, a, started + Duration::minutes(5))
        .await
        .unwrap();
    let done = complete(&mut tx, &t, wo.id, Verdict::TrueAlarm).await;
    let completed_at = done.completed_at.unwrap();
    let (again, r) = raise_at(
        &mut tx,
        &t,
        p.motor,
        p.vib,
        "process:vib",
        completed_at + Duration::seconds(30),
        &policy,
    )
    .await;
    assert!(
        matches!(
            r,
            Raised::Suppressed {
                reason: SuppressReason::Cooldown { .. }
            }
        ),
        "{r:?}"
    );
    anomalies::close(&mut tx, &t, again, completed_at + Duration::minutes(1))
        .await
        .unwrap();
    let later = completed_at + quiet + Duration::hours(1);
    let v = work_orders::verify_quiet_auto(&mut tx, &t, later, quiet)
        .await
        .unwrap();
    assert!(v.verified.is_empty(), "{:?}", v.verified);
    assert_eq!(v.recurred.iter().map(|w| w.id).collect::<Vec<_>>(), vec![wo.id]);
    assert_eq!(v.recurred[0].status, Status::Completed);
    let comments = activity::comments(&mut tx, &t, wo.id).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("came back"), "{}", comments[0].body);
    let v = work_orders::verify_quiet_auto(&mut tx, &t, later, quiet)
        .await
        .unwrap();
    assert!(v.recurred.is_empty() && v.verified.is_empty());
    // A person may still verify it once the quiet period is over (not here:
    // the transaction's clock is at completion).
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn repairs_request_baseline_refits() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "refit").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let policy = AutoPolicy::default();
    // A process true alarm: a refit of that sensor's baseline.
    let (_, r) = raise(&mut tx, &t, p.pump, p.temp, "process:temp", &policy).await;
    let wo = complete(&mut tx, &t, created(&r).id, Verdict::TrueAlarm).await;
    // A false alarm, a sensor-health repair and a forecast: no refit.
    let (_, r) = raise(&mut tx, &t, p.motor, p.vib, "process:vib", &policy).await;
    complete(&mut tx, &t, created(&r).id, Verdict::FalseAlarm).await;
    let (_, r) = raise(&mut tx, &t, p.motor, p.vib, "sensor_health:vib", &policy).await;
    let sh = created(&r).id;
    let patch = WorkOrderPatch {
        remedy_code: Some(Some("CLE".into())),
        ..Default::default()
    };
    work_orders::update(&mut tx, &t, sh, patch).await.unwrap();
    work_orders::transition(&mut tx, &t, sh, Status::InProgress, "")
        .await
        .unwrap();
    work_orders::transition_with(
        &mut tx,
        &t,
        sh,
        Status::Completed,
        "",
        Some(Verdict::TrueAlarm),
        &policy,
    )
    .await
    .unwrap();
    let (_, r) = raise(&mut tx, &t, p.bearing, p.flow, "predicted:flow", &policy).await;
    complete(&mut tx, &t, created(&r).id, Verdict::TrueAlarm).await;
    // A multivariate repair: a refit of the whole asset (no sensor).
    let (_, r) = raise(&mut tx, &t, p.bearing, p.flow, "multivariate:bearing", &policy).await;
    let mv = complete(&mut tx, &t, created(&r).id, Verdict::TrueAlarm).await;

    let pending = tuning::pending_refits(&mut tx).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    let pump = pending.iter().find(|r| r.equipment_id == p.pump).unwrap();
    assert_eq!((pump.sensor_id, pump.work_order_id), (Some(p.temp), Some(wo.id)));
    assert!(pump.reason.contains(&wo.code), "{}", pump.reason);
    let bearing = pending.iter().find(|r| r.equipment_id == p.bearing).unwrap();
    assert_eq!((bearing.sensor_id, bearing.work_order_id), (None, Some(mv.id)));
    tuning::mark_refit_done(&mut tx, pump.id).await.unwrap();
    let err = tuning::mark_refit_done(&mut tx, pump.id).await.unwrap_err();
    assert!(matches!(err, ModelError::NotFound(_)));
    let left = tuning::pending_refits(&mut tx).await.unwrap();
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), vec![bearing.id]);
    drop(tx);
    tdb.cleanup().await;
}

#[tokio::test]
async fn evidence_helpers_show_history_and_readings() {
    let tdb = test_db().await;
    let p = plant(&tdb.db, "evidence").await;
    let t = p.tenant();
    let mut tx = tdb.db.tenant(t.org_id).await.unwrap();
    let t0 = Utc::now() - Duration::hours(3);
    // Two past spikes on the pump (one judged a false alarm), a still-open
    // one, and a past stuck episode.
    let policy = no_cooldown();
    let (old, r) = raise_at(&mut tx, &t, p.pump, p.temp, "process:temp", t0, &policy).await;
    anomalies::close(&mut tx, &t, old, t0 + Duration::minutes(1))
        .await
        .unwrap();
    let judged = complete(&mut tx, &t, created(&r).id, Verdict::FalseAlarm).await;
    let newer = anomaly_at(&mut tx, &t, p.pump, p.temp, "high", t0 + Duration::hours(1)).await;
    anomalies::close(&mut tx, &t, newer, t0 + Duration::hours(1) + Duration::minutes(1))
        .await
        .unwrap();
    let stuck = anomaly_at(&mut tx, &t, p.pump, p.temp, "stuck", t0).await;
    anomalies::close(&mut tx, &t, stuck, t0 + Duration::minutes(9))
        .await
        .unwrap();
    anomaly_at(&mut tx, &t, p.pump, p.temp, "high", Utc::now()).await;
    anomaly_at(&mut tx, &t, p.motor, p.vib, "high", t0).await;

    let similar = auto_policy::similar_anomalies(&mut tx, p.pump, "high", 10)
        .await
        .unwrap();
    assert_eq!(similar.iter().map(|a| a.id).collect::<Vec<_>>(), vec![newer, old]);
    assert_eq!(similar[1].work_order_id, Some(judged.id));
    assert_eq!(similar[1].verdict.as_deref(), Some("false_alarm"));
    assert_eq!(similar[0].verdict, None);
    let one = auto_policy::similar_anomalies(&mut tx, p.pump, "high", 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);

    // Sixty readings a minute apart, in at most 6 buckets.
    for i in 0..60 {
        sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, $4)")
            .bind(t.org_id)
            .bind(p.temp)
            .bind(t0 + Duration::minutes(i))
            .bind(i as f64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let w = auto_policy::readings_window(&mut tx, p.temp, t0, t0 + Duration::hours(1), 6)
        .await
        .unwrap();
    assert!(!w.buckets.is_empty() && w.buckets.len() <= 6, "{:?}", w.buckets);
    assert_eq!(w.buckets.iter().map(|b| b.count).sum::<i64>(), 60);
    assert_eq!(w.buckets.iter().map(|b| b.max).fold(f64::MIN, f64::max), 59.0);
    drop(tx);
    tdb.cleanup().await;
}
