//! Work-order details against a real PostgreSQL: several assignees (active
//! users of the organization only), the failure-code catalog every
//! organization starts with, downtime that never overlaps, checklists, and
//! the rule of what completing a work order needs — refused completions
//! change nothing. Also the preventive checklist template and downtime in
//! the reliability report.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use maintainpro_models::auth::{Permission, Role};
use maintainpro_models::checklists::{
    self, ChecklistEntry, ChecklistReplacement, ChecklistTemplateItem, ChecklistTick,
};
use maintainpro_models::downtime::{self, DowntimePatch, DowntimeReason, NewDowntime};
use maintainpro_models::failure_codes::{
    self, CodeKind, FailureCodeFilter, FailureCodePatch, NewFailureCode,
};
use maintainpro_models::pm::{self, NewPmSchedule};
use maintainpro_models::reports::{self, ReportRange};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::users::{self, NewUser, User};
use maintainpro_models::work_orders::{
    self, AssigneeSet, Kind, NewWorkOrder, Status, WorkOrder, WorkOrderDetails, WorkOrderFilter,
    WorkOrderPatch,
};
use maintainpro_models::{Actor, Db, FieldError, ModelError, Tenant, Tx};
use uuid::Uuid;

fn person(org: &SeededOrg) -> Tenant {
    Tenant {
        org_id: org.tenant.org_id,
        actor: Actor::User {
            id: org.admin.id,
            role: Role::Admin,
        },
    }
}

async fn add_user(db: &Db, org: &SeededOrg, email: &str, role: Role) -> User {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let new = NewUser {
        email: email.into(),
        name: email.into(),
        role,
        password: "a long password".into(),
    };
    let u = users::create(&mut tx, &org.tenant, new).await.unwrap();
    tx.commit().await.unwrap();
    u
}

fn new_wo(org: &SeededOrg, kind: Kind) -> NewWorkOrder {
    NewWorkOrder {
        title: format!("{kind} job"),
        kind: Some(kind),
        equipment_id: Some(org.equipment.id),
        ..Default::default()
    }
}

fn item(label: &str, required: bool) -> ChecklistTemplateItem {
    ChecklistTemplateItem {
        label: label.into(),
        required,
    }
}

fn fields(e: ModelError) -> Vec<String> {
    match e {
        ModelError::Validation(errors) => errors.into_iter().map(|FieldError { field, .. }| field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn codes(problem: &str, cause: &str, remedy: &str) -> WorkOrderPatch {
    WorkOrderPatch {
        problem_code: Some(Some(problem.into())),
        cause_code: Some(Some(cause.into())),
        remedy_code: Some(Some(remedy.into())),
        ..Default::default()
    }
}

async fn event_count(tx: &mut Tx, kind: &str, subject: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE kind = $1 AND subject_id = $2")
        .bind(kind)
        .bind(subject)
        .fetch_one(&mut **tx)
        .await
        .unwrap()
}

async fn history_len(tx: &mut Tx, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM work_order_status_history WHERE work_order_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .unwrap()
}

#[test]
fn only_admins_and_managers_manage_failure_codes() {
    assert_eq!(Permission::FailureCodesManage.as_str(), "failure_codes:manage");
    assert!(Permission::ALL.contains(&Permission::FailureCodesManage));
    assert_eq!(
        "failure_codes:manage".parse::<Permission>().ok(),
        Some(Permission::FailureCodesManage)
    );
    assert!(Role::Admin.can(Permission::FailureCodesManage));
    assert!(Role::Manager.can(Permission::FailureCodesManage));
    assert!(!Role::Technician.can(Permission::FailureCodesManage));
    assert!(!Role::Requester.can(Permission::FailureCodesManage));
}

#[tokio::test]
async fn every_organization_starts_with_its_own_catalog() {
    let t = test_db().await;
    let a = seed_org(&t.db, "fc-a", &[]).await;
    let b = seed_org(&t.db, "fc-b", &[]).await;
    let mut tx = t.db.tenant_for(&person(&a)).await.unwrap();
    let all = failure_codes::list(&mut tx, &FailureCodeFilter::default())
        .await
        .unwrap();
    let count = |k: CodeKind| all.iter().filter(|c| c.kind == k).count();
    assert_eq!(
        (
            count(CodeKind::Problem),
            count(CodeKind::Cause),
            count(CodeKind::Remedy)
        ),
        (9, 9, 8)
    );
    assert!(all.iter().all(|c| c.active));
    let problems: Vec<&str> = all
        .iter()
        .filter(|c| c.kind == CodeKind::Problem)
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(
        problems,
        ["BRD", "ELF", "LEK", "NOI", "OHE", "OTH", "PDE", "STP", "VIB"]
    );

    // Managing the catalog: add (normalized), refuse duplicates, deactivate.
    let new = NewFailureCode {
        kind: CodeKind::Cause,
        code: " cor ".into(),
        description: "Corrosion".into(),
    };
    let cor = failure_codes::create(&mut tx, &person(&a), new.clone())
        .await
        .unwrap();
    assert_eq!((cor.code.as_str(), cor.active), ("COR", true));
    tx.commit().await.unwrap();
    let mut tx = t.db.tenant_for(&person(&a)).await.unwrap();
    assert!(matches!(
        failure_codes::create(&mut tx, &person(&a), new).await,
        Err(ModelError::Conflict(_))
    ));
    drop(tx);
    let mut tx = t.db.tenant_for(&person(&a)).await.unwrap();
    // The same code as another kind is fine (LUB is a cause and a remedy).
    let lub = NewFailureCode {
        kind: CodeKind::Problem,
        code: "COR".into(),
        description: "Corroded".into(),
    };
    failure_codes::create(&mut tx, &person(&a), lub).await.unwrap();
    let bad = NewFailureCode {
        kind: CodeKind::Cause,
        code: "two words".into(),
        description: String::new(),
    };
    assert_eq!(
        fields(
            failure_codes::create(&mut tx, &person(&a), bad)
                .await
                .unwrap_err()
        ),
        ["code", "description"]
    );
    let off = FailureCodePatch {
        active: Some(false),
        ..Default::default()
    };
    let cor = failure_codes::update(&mut tx, &person(&a), cor.id, off)
        .await
        .unwrap();
    assert!(!cor.active);
    let inactive = FailureCodeFilter {
        active: Some(false),
        ..Default::default()
    };
    assert_eq!(failure_codes::list(&mut tx, &inactive).await.unwrap().len(), 1);
    assert_eq!(event_count(&mut tx, "failure_code.updated", cor.id).await, 1);
    tx.commit().await.unwrap();

    // B has its own 26 and cannot see or touch A's.
    let mut tx = t.db.tenant(b.tenant.org_id).await.unwrap();
    assert_eq!(
        failure_codes::list(&mut tx, &FailureCodeFilter::default())
            .await
            .unwrap()
            .len(),
        26
    );
    let patch = FailureCodePatch {
        description: Some("mine now".into()),
        ..Default::default()
    };
    assert!(matches!(
        failure_codes::update(&mut tx, &b.tenant, cor.id, patch).await,
        Err(ModelError::NotFound(_))
    ));
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn codes_on_a_work_order_must_be_active_codes_of_the_right_kind() {
    let t = test_db().await;
    let org = seed_org(&t.db, "fc-wo", &[]).await;
    let p = person(&org);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let details = WorkOrderDetails {
        problem_code: Some("vib".into()),
        ..Default::default()
    };
    let wo = work_orders::create_detailed(&mut tx, &p, new_wo(&org, Kind::Corrective), details)
        .await
        .unwrap();
    assert_eq!(wo.problem_code.as_deref(), Some("VIB"));

    // REP is a remedy, not a cause; XYZ does not exist.
    let err = work_orders::update(&mut tx, &p, wo.id, codes("XYZ", "REP", "REP"))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["problemCode", "causeCode"]);
    // A deactivated code cannot be given.
    let wea = failure_codes::list(
        &mut tx,
        &FailureCodeFilter {
            kind: Some(CodeKind::Cause),
            active: None,
        },
    )
    .await
    .unwrap()
    .into_iter()
    .find(|c| c.code == "WEA")
    .unwrap();
    let off = FailureCodePatch {
        active: Some(false),
        ..Default::default()
    };
    failure_codes::update(&mut tx, &p, wea.id, off).await.unwrap();
    let err = work_orders::update(&mut tx, &p, wo.id, codes("OHE", "WEA", "REP"))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["causeCode"]);
    let wo = work_orders::update(&mut tx, &p, wo.id, codes("OHE", "MIS", "REA"))
        .await
        .unwrap();
    assert_eq!(
        (
            wo.problem_code.as_deref(),
            wo.cause_code.as_deref(),
            wo.remedy_code.as_deref()
        ),
        (Some("OHE"), Some("MIS"), Some("REA"))
    );
    // null clears; absent leaves alone.
    let clear = WorkOrderPatch {
        cause_code: Some(None),
        title: Some("  Renamed  ".into()),
        ..Default::default()
    };
    let wo = work_orders::update(&mut tx, &p, wo.id, clear).await.unwrap();
    assert_eq!(
        (wo.title.as_str(), wo.problem_code.as_deref(), wo.cause_code),
        ("Renamed", Some("OHE"), None)
    );
    assert_eq!(event_count(&mut tx, "work_order.updated", wo.id).await, 2);
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn several_assignees_active_and_of_the_organization() {
    let t = test_db().await;
    let org = seed_org(&t.db, "assign", &[]).await;
    let other = seed_org(&t.db, "assign-other", &[]).await;
    let tech = add_user(&t.db, &org, "tech@assign.test", Role::Technician).await;
    let tech2 = add_user(&t.db, &org, "tech2@assign.test", Role::Technician).await;
    let gone = add_user(&t.db, &org, "gone@assign.test", Role::Technician).await;
    let p = person(&org);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    users::set_active(&mut tx, &p, gone.id, false).await.unwrap();

    // Creating with a lead and further assignees (the lead listed once).
    let new = NewWorkOrder {
        assigned_to: Some(tech.id),
        ..new_wo(&org, Kind::Corrective)
    };
    let details = WorkOrderDetails {
        assignees: vec![tech2.id, tech.id],
        ..Default::default()
    };
    let wo = work_orders::create_detailed(&mut tx, &p, new, details)
        .await
        .unwrap();
    assert_eq!(wo.assigned_to, Some(tech.id));
    assert_eq!(wo.assignees, [tech.id, tech2.id]);

    // Replacing: unknown, foreign and inactive users are named.
    let set = AssigneeSet {
        user_ids: vec![tech2.id, Uuid::new_v4(), other.admin.id, gone.id],
    };
    let err = work_orders::set_assignees(&mut tx, &p, wo.id, set)
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["userIds[1]", "userIds[2]", "userIds[3]"]);
    assert_eq!(
        work_orders::get(&mut tx, wo.id).await.unwrap().assignees,
        [tech.id, tech2.id]
    );

    // A new lead; tech stays, the admin joins.
    let set = AssigneeSet {
        user_ids: vec![tech2.id, org.admin.id, tech.id, tech2.id],
    };
    let wo = work_orders::set_assignees(&mut tx, &p, wo.id, set).await.unwrap();
    assert_eq!(wo.assigned_to, Some(tech2.id));
    assert_eq!(wo.assignees.len(), 3);
    assert_eq!(wo.assignees[0], tech2.id);
    assert_eq!(event_count(&mut tx, "work_order.updated", wo.id).await, 1);

    // The list filter matches any assignee, not only the lead.
    let assigned_to = |u: Uuid| WorkOrderFilter {
        assigned_to: Some(u),
        ..Default::default()
    };
    for u in [tech.id, tech2.id, org.admin.id] {
        let page = work_orders::list(&mut tx, &p, &assigned_to(u)).await.unwrap();
        assert_eq!(page.items.len(), 1, "assigned to {u}");
    }
    // Nobody.
    let wo = work_orders::set_assignees(&mut tx, &p, wo.id, AssigneeSet { user_ids: vec![] })
        .await
        .unwrap();
    assert_eq!((wo.assigned_to, wo.assignees.len()), (None, 0));
    assert!(work_orders::list(&mut tx, &p, &assigned_to(tech.id))
        .await
        .unwrap()
        .items
        .is_empty());

    // The assignment rows are audited like every tenant write.
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE table_name = 'work_order_assignees'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert!(audited >= 4, "{audited}");

    // An inactive lead on creation is refused too; requesters assign nobody.
    let new = NewWorkOrder {
        assigned_to: Some(gone.id),
        ..new_wo(&org, Kind::Corrective)
    };
    assert_eq!(
        fields(work_orders::create(&mut tx, &p, new).await.unwrap_err()),
        ["assignedTo"]
    );
    let requester = Tenant {
        org_id: org.tenant.org_id,
        actor: Actor::User {
            id: tech.id,
            role: Role::Requester,
        },
    };
    let details = WorkOrderDetails {
        assignees: vec![tech.id],
        ..Default::default()
    };
    assert!(matches!(
        work_orders::create_detailed(&mut tx, &requester, new_wo(&org, Kind::Corrective), details).await,
        Err(ModelError::Forbidden(_))
    ));
    drop(tx);
    t.cleanup().await;
}

/// Puts a work order in progress and returns it.
async fn started(tx: &mut Tx, p: &Tenant, new: NewWorkOrder, details: WorkOrderDetails) -> WorkOrder {
    let wo = work_orders::create_detailed(tx, p, new, details).await.unwrap();
    work_orders::transition(tx, p, wo.id, Status::InProgress, "")
        .await
        .unwrap()
}

#[tokio::test]
async fn completion_needs_what_the_kind_requires_and_a_refusal_changes_nothing() {
    let t = test_db().await;
    let org = seed_org(&t.db, "complete", &[]).await;
    let p = person(&org);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let details = WorkOrderDetails {
        checklist: vec![item("Isolate the pump", true), item("Photograph the seal", false)],
        ..Default::default()
    };
    let wo = started(&mut tx, &p, new_wo(&org, Kind::Corrective), details).await;
    let running = NewDowntime {
        started_at: Some(Utc::now() - Duration::hours(2)),
        ended_at: None,
        reason: DowntimeReason::Breakdown,
        note: String::new(),
    };
    let down = downtime::record(&mut tx, &p, wo.id, running).await.unwrap();
    let history = history_len(&mut tx, wo.id).await;
    let updates = event_count(&mut tx, "work_order.updated", wo.id).await;

    let err = work_orders::transition(&mut tx, &p, wo.id, Status::Completed, "done")
        .await
        .unwrap_err();
    assert_eq!(
        fields(err),
        [
            "checklist[0]",
            "downtime[0]",
            "problemCode",
            "causeCode",
            "remedyCode"
        ]
    );
    let same = work_orders::get(&mut tx, wo.id).await.unwrap();
    assert_eq!((same.status, same.completed_at), (Status::InProgress, None));
    assert_eq!(history_len(&mut tx, wo.id).await, history);
    assert_eq!(event_count(&mut tx, "work_order.updated", wo.id).await, updates);

    // Fulfil the rule step by step; the optional item may stay open.
    work_orders::update(&mut tx, &p, wo.id, codes("LEK", "WEA", "REP"))
        .await
        .unwrap();
    let items = checklists::list(&mut tx, &p, wo.id).await.unwrap();
    let tick = ChecklistTick {
        done: true,
        note: Some("locked out".into()),
    };
    checklists::tick(&mut tx, &p, wo.id, items[0].id, tick)
        .await
        .unwrap();
    let err = work_orders::transition(&mut tx, &p, wo.id, Status::Completed, "")
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["downtime[0]"]);
    let end = DowntimePatch {
        ended_at: Some(Some(Utc::now())),
        ..Default::default()
    };
    downtime::update(&mut tx, &p, wo.id, down.id, end).await.unwrap();
    let done = work_orders::transition(&mut tx, &p, wo.id, Status::Completed, "fixed")
        .await
        .unwrap();
    assert_eq!(done.status, Status::Completed);
    assert!(done.completed_at.is_some());

    // A completed work order keeps meeting the rule: no clearing its codes,
    // no new running downtime, no checklist changes.
    let clear = WorkOrderPatch {
        remedy_code: Some(None),
        ..Default::default()
    };
    assert_eq!(
        fields(work_orders::update(&mut tx, &p, wo.id, clear).await.unwrap_err()),
        ["remedyCode"]
    );
    let again = NewDowntime {
        started_at: Some(Utc::now() - Duration::minutes(10)),
        ended_at: None,
        reason: DowntimeReason::Other,
        note: String::new(),
    };
    assert_eq!(
        fields(downtime::record(&mut tx, &p, wo.id, again).await.unwrap_err()),
        ["endedAt"]
    );
    let replacement = ChecklistReplacement { items: vec![] };
    assert!(matches!(
        checklists::replace(&mut tx, &p, wo.id, replacement).await,
        Err(ModelError::Conflict(_))
    ));
    // Turning it into preventive work is fine (it needs less), verifying
    // makes it final.
    let preventive = WorkOrderPatch {
        kind: Some(Kind::Preventive),
        ..Default::default()
    };
    work_orders::update(&mut tx, &p, wo.id, preventive).await.unwrap();
    work_orders::transition(&mut tx, &p, wo.id, Status::Verified, "")
        .await
        .unwrap();
    let title = WorkOrderPatch {
        title: Some("late".into()),
        ..Default::default()
    };
    assert!(matches!(
        work_orders::update(&mut tx, &p, wo.id, title).await,
        Err(ModelError::Conflict(_))
    ));

    // An inspection: every item, optional ones too, and the outcome.
    let details = WorkOrderDetails {
        checklist: vec![
            item("Check the coupling", true),
            item("Listen to the bearings", false),
        ],
        ..Default::default()
    };
    let insp = started(&mut tx, &p, new_wo(&org, Kind::Inspection), details).await;
    for i in checklists::list(&mut tx, &p, insp.id)
        .await
        .unwrap()
        .into_iter()
        .take(1)
    {
        let tick = ChecklistTick {
            done: true,
            note: None,
        };
        checklists::tick(&mut tx, &p, insp.id, i.id, tick).await.unwrap();
    }
    let err = work_orders::transition(&mut tx, &p, insp.id, Status::Completed, "")
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["checklist[1]", "remedyCode"]);

    // Preventive work without a checklist needs nothing more.
    let pm = started(
        &mut tx,
        &p,
        new_wo(&org, Kind::Preventive),
        WorkOrderDetails::default(),
    )
    .await;
    work_orders::transition(&mut tx, &p, pm.id, Status::Completed, "")
        .await
        .unwrap();
    // An illegal move is still INVALID_TRANSITION, whatever is missing.
    let open = work_orders::create(&mut tx, &p, new_wo(&org, Kind::Emergency))
        .await
        .unwrap();
    assert!(matches!(
        work_orders::transition(&mut tx, &p, open.id, Status::Completed, "").await,
        Err(ModelError::InvalidTransition { .. })
    ));
    tx.commit().await.unwrap();
    t.cleanup().await;
}

#[tokio::test]
async fn downtime_is_checked_and_never_overlaps() {
    let t = test_db().await;
    let org = seed_org(&t.db, "down", &[]).await;
    let p = person(&org);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let wo = work_orders::create(&mut tx, &p, new_wo(&org, Kind::Corrective))
        .await
        .unwrap();
    let now = Utc::now();
    let entry = |from_h: i64, to_h: Option<i64>| NewDowntime {
        started_at: Some(now - Duration::hours(from_h)),
        ended_at: to_h.map(|h| now - Duration::hours(h)),
        reason: DowntimeReason::WaitingParts,
        note: "no seal kit".into(),
    };
    let first = downtime::record(&mut tx, &p, wo.id, entry(10, Some(8)))
        .await
        .unwrap();
    assert_eq!(
        (first.equipment_id, first.recorded_by, first.reason),
        (org.equipment.id, Some(org.admin.id), DowntimeReason::WaitingParts)
    );
    // Overlapping, backwards and future entries are refused; touching is fine.
    assert_eq!(
        fields(
            downtime::record(&mut tx, &p, wo.id, entry(9, Some(7)))
                .await
                .unwrap_err()
        ),
        ["startedAt"]
    );
    assert_eq!(
        fields(
            downtime::record(&mut tx, &p, wo.id, entry(5, Some(6)))
                .await
                .unwrap_err()
        ),
        ["endedAt"]
    );
    let future = NewDowntime {
        started_at: Some(now + Duration::hours(1)),
        ..entry(0, None)
    };
    assert_eq!(
        fields(downtime::record(&mut tx, &p, wo.id, future).await.unwrap_err()),
        ["startedAt"]
    );
    downtime::record(&mut tx, &p, wo.id, entry(8, Some(6)))
        .await
        .unwrap();
    // One running entry; a second one (or one before it that reaches into it) overlaps.
    let running = downtime::record(&mut tx, &p, wo.id, entry(2, None))
        .await
        .unwrap();
    assert!(running.is_running());
    assert!(downtime::record(&mut tx, &p, wo.id, entry(1, None))
        .await
        .is_err());
    assert!(downtime::record(&mut tx, &p, wo.id, entry(3, Some(1)))
        .await
        .is_err());
    // Moving an entry onto another is refused too; ending it works.
    let onto = DowntimePatch {
        started_at: Some(now - Duration::hours(9)),
        ..Default::default()
    };
    assert!(downtime::update(&mut tx, &p, wo.id, running.id, onto)
        .await
        .is_err());
    let end = DowntimePatch {
        ended_at: Some(Some(now - Duration::hours(1))),
        reason: Some(DowntimeReason::Breakdown),
        ..Default::default()
    };
    let ended = downtime::update(&mut tx, &p, wo.id, running.id, end)
        .await
        .unwrap();
    assert_eq!(ended.reason, DowntimeReason::Breakdown);
    assert_eq!(downtime::list(&mut tx, &p, wo.id).await.unwrap().len(), 3);
    assert_eq!(
        event_count(&mut tx, "work_order.downtime_recorded", wo.id).await,
        3
    );
    assert_eq!(
        event_count(&mut tx, "work_order.downtime_updated", wo.id).await,
        1
    );
    // An entry of another work order is not this one's.
    let other = work_orders::create(&mut tx, &p, new_wo(&org, Kind::Corrective))
        .await
        .unwrap();
    let patch = DowntimePatch {
        note: Some("x".into()),
        ..Default::default()
    };
    assert!(matches!(
        downtime::update(&mut tx, &p, other.id, first.id, patch).await,
        Err(ModelError::NotFound(_))
    ));
    // Without equipment there is nothing to be down.
    let bare = NewWorkOrder {
        equipment_id: None,
        ..new_wo(&org, Kind::Corrective)
    };
    let bare = work_orders::create(&mut tx, &p, bare).await.unwrap();
    assert!(matches!(
        downtime::record(&mut tx, &p, bare.id, entry(1, None)).await,
        Err(ModelError::Conflict(_))
    ));
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn checklists_are_replaced_keeping_done_items_and_ticked() {
    let t = test_db().await;
    let org = seed_org(&t.db, "check", &[]).await;
    let tech = add_user(&t.db, &org, "tech@check.test", Role::Technician).await;
    let p = person(&org);
    let as_tech = Tenant {
        org_id: org.tenant.org_id,
        actor: Actor::User {
            id: tech.id,
            role: Role::Technician,
        },
    };
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let details = WorkOrderDetails {
        checklist: vec![item("A", true), item("B", true)],
        ..Default::default()
    };
    let wo = work_orders::create_detailed(&mut tx, &p, new_wo(&org, Kind::Preventive), details)
        .await
        .unwrap();
    let items = checklists::list(&mut tx, &p, wo.id).await.unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| (i.position, i.label.as_str(), i.done))
            .collect::<Vec<_>>(),
        [(0, "A", false), (1, "B", false)]
    );
    let tick = ChecklistTick {
        done: true,
        note: Some("  61 °C ".into()),
    };
    let b = checklists::tick(&mut tx, &as_tech, wo.id, items[1].id, tick)
        .await
        .unwrap();
    assert_eq!(
        (b.done, b.done_by, b.note.as_str()),
        (true, Some(tech.id), "61 °C")
    );
    assert!(b.done_at.is_some());

    // Reorder: B (kept, still done) first, a new C, A dropped.
    let replacement = ChecklistReplacement {
        items: vec![
            ChecklistEntry {
                id: Some(items[1].id),
                label: "B, renamed".into(),
                required: false,
            },
            ChecklistEntry {
                id: None,
                label: "C".into(),
                required: true,
            },
        ],
    };
    let list = checklists::replace(&mut tx, &p, wo.id, replacement)
        .await
        .unwrap();
    assert_eq!(
        list.iter()
            .map(|i| (i.position, i.label.as_str(), i.required, i.done))
            .collect::<Vec<_>>(),
        [(0, "B, renamed", false, true), (1, "C", true, false)]
    );
    assert_eq!(list[0].id, items[1].id);
    assert_eq!(list[0].done_by, Some(tech.id));
    // Another work order's item, or one listed twice, is refused.
    let bad = ChecklistReplacement {
        items: vec![
            ChecklistEntry {
                id: Some(items[0].id),
                label: "A".into(),
                required: true,
            },
            ChecklistEntry {
                id: Some(list[1].id),
                label: String::new(),
                required: true,
            },
        ],
    };
    assert_eq!(
        fields(checklists::replace(&mut tx, &p, wo.id, bad).await.unwrap_err()),
        ["items[1].label"]
    );
    let bad = ChecklistReplacement {
        items: vec![
            ChecklistEntry {
                id: Some(items[0].id),
                label: "A".into(),
                required: true,
            },
            ChecklistEntry {
                id: Some(list[1].id),
                label: "C".into(),
                required: true,
            },
            ChecklistEntry {
                id: Some(list[1].id),
                label: "C".into(),
                required: true,
            },
        ],
    };
    assert_eq!(
        fields(checklists::replace(&mut tx, &p, wo.id, bad).await.unwrap_err()),
        ["items[0].id", "items[2].id"]
    );
    // Unticking clears who and when.
    let untick = ChecklistTick {
        done: false,
        note: None,
    };
    let b = checklists::tick(&mut tx, &p, wo.id, list[0].id, untick)
        .await
        .unwrap();
    assert_eq!(
        (b.done, b.done_by, b.done_at, b.note.as_str()),
        (false, None, None, "61 °C")
    );
    assert!(matches!(
        checklists::tick(
            &mut tx,
            &p,
            wo.id,
            Uuid::new_v4(),
            ChecklistTick {
                done: true,
                note: None
            }
        )
        .await,
        Err(ModelError::NotFound(_))
    ));
    assert_eq!(
        event_count(&mut tx, "work_order.checklist_updated", wo.id).await,
        1
    );
    assert_eq!(
        event_count(&mut tx, "work_order.checklist_item_updated", wo.id).await,
        2
    );
    tx.commit().await.unwrap();
    // The renumbering is consistent at commit (deferred uniqueness).
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    assert_eq!(checklists::list(&mut tx, &p, wo.id).await.unwrap().len(), 2);
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn a_preventive_schedule_copies_its_checklist_to_each_work_order() {
    let t = test_db().await;
    let org = seed_org(&t.db, "pm-check", &[]).await;
    let gone = add_user(&t.db, &org, "gone@pm-check.test", Role::Technician).await;
    let p = person(&org);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let new = NewPmSchedule {
        title: "Grease bearings".into(),
        description: String::new(),
        equipment_id: org.equipment.id,
        priority: None,
        assigned_to: Some(gone.id),
        trigger: "calendar".into(),
        interval_count: Some(1),
        interval_unit: Some("week".into()),
        anchor: None,
        first_due_at: Some(Utc::now() - Duration::hours(1)),
        sensor_id: None,
        condition: None,
        threshold_low: None,
        threshold_high: None,
        checklist: vec![item("Grease DE bearing", true), item("Grease NDE bearing", true)],
    };
    let s = pm::create(&mut tx, &p, new).await.unwrap();
    assert_eq!(s.checklist.len(), 2);
    // The scheduled assignee leaves before the work falls due.
    users::set_active(&mut tx, &p, gone.id, false).await.unwrap();
    tx.commit().await.unwrap();

    let made = pm::run_due(&t.db, org.tenant.org_id, Utc::now()).await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].assigned_to, None, "generated unassigned, not failed");
    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let items = checklists::list(&mut tx, &p, made[0].id).await.unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| (i.label.as_str(), i.required))
            .collect::<Vec<_>>(),
        [("Grease DE bearing", true), ("Grease NDE bearing", true)]
    );
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn recorded_downtime_drives_availability_and_repair_time() {
    let t = test_db().await;
    let org = seed_org(&t.db, "rel-down", &[]).await;
    let p = person(&org);
    let to = Utc::now();
    let from = to - Duration::hours(100);
    let mut tx = t.db.tenant_for(&p).await.unwrap();
    let wo = work_orders::create(&mut tx, &p, new_wo(&org, Kind::Corrective))
        .await
        .unwrap();
    // Down 30 h before the range (10 h of it inside) and 5 h more inside,
    // plus an entry of another work order overlapping the second (counted once).
    for (start_h, end_h) in [(110, 90), (50, 45)] {
        let new = NewDowntime {
            started_at: Some(to - Duration::hours(start_h)),
            ended_at: Some(to - Duration::hours(end_h)),
            reason: DowntimeReason::Breakdown,
            note: String::new(),
        };
        downtime::record(&mut tx, &p, wo.id, new).await.unwrap();
    }
    let planned = work_orders::create(&mut tx, &p, new_wo(&org, Kind::Preventive))
        .await
        .unwrap();
    let new = NewDowntime {
        started_at: Some(to - Duration::hours(48)),
        ended_at: Some(to - Duration::hours(46)),
        reason: DowntimeReason::PlannedMaintenance,
        note: String::new(),
    };
    downtime::record(&mut tx, &p, planned.id, new).await.unwrap();
    // The failure was completed, created 60 h ago, but the asset was down 25 h for it.
    work_orders::update(&mut tx, &p, wo.id, codes("BRD", "WEA", "REP"))
        .await
        .unwrap();
    work_orders::transition(&mut tx, &p, wo.id, Status::InProgress, "")
        .await
        .unwrap();
    work_orders::transition(&mut tx, &p, wo.id, Status::Completed, "")
        .await
        .unwrap();
    sqlx::query("UPDATE work_orders SET created_at = $2 WHERE id = $1")
        .bind(wo.id)
        .bind(to - Duration::hours(60))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let range = ReportRange {
        from: Some(from),
        to: Some(to),
    };
    let r = reports::reliability(&mut tx, &range).await.unwrap();
    let a = r
        .assets
        .iter()
        .find(|a| a.equipment_id == org.equipment.id)
        .unwrap();
    assert_eq!(a.failures, 1);
    let mttr = a.mttr_hours.unwrap();
    assert!((mttr - 25.0).abs() < 1e-6, "{mttr}");
    // Down 10 h + 5 h within the 100 h range.
    assert!((a.availability - 0.85).abs() < 1e-6, "{}", a.availability);
    drop(tx);
    t.cleanup().await;
}
