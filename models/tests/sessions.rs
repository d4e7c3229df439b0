//! Sign-in sessions and user administration against a real PostgreSQL:
//! refresh-token rotation, reuse revoking the whole family, expiry and the
//! family's absolute lifetime, logout, deactivation, invitations, and the
//! tenancy of all of it.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use maintainpro_models::auth::Role;
use maintainpro_models::sessions::{self, Refresh, RefreshToken, SessionPolicy, TokenHash, TokenRejection};
use maintainpro_models::testkit::{self, test_db, SeededOrg, SEED_PASSWORD};
use maintainpro_models::users::{self, InviteAcceptance, NewInvite, NewUser, User, UserUpdate};
use maintainpro_models::{Actor, Db, ModelError, Tenant};
use uuid::Uuid;

/// A fresh random token hash.
fn hash() -> TokenHash {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    h[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    h
}

fn as_admin(org: &SeededOrg) -> Tenant {
    Tenant {
        org_id: org.tenant.org_id,
        actor: Actor::User {
            id: org.admin.id,
            role: Role::Admin,
        },
    }
}

async fn technician(db: &Db, org: &SeededOrg) -> User {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let user = users::create(
        &mut tx,
        &org.tenant,
        NewUser {
            email: format!("tech-{}@{}.test", Uuid::new_v4().simple(), org.slug),
            name: "Tech".into(),
            role: Role::Technician,
            password: SEED_PASSWORD.into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    user
}

async fn start(db: &Db, org: &SeededOrg, user: &User, policy: &SessionPolicy) -> (TokenHash, RefreshToken) {
    let h = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let token = sessions::start(&mut tx, &org.tenant, user.id, &h, policy)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (h, token)
}

async fn family(db: &Db, org_id: Uuid, family_id: Uuid) -> Vec<RefreshToken> {
    let mut tx = db.tenant(org_id).await.unwrap();
    let rows = sessions::family(&mut tx, family_id).await.unwrap();
    tx.commit().await.unwrap();
    rows
}

fn rotated(r: Refresh) -> (User, RefreshToken) {
    match r {
        Refresh::Rotated { user, token } => (user, token),
        Refresh::Rejected(why) => panic!("expected a rotation, got {why:?}"),
    }
}

fn rejected(r: Refresh) -> TokenRejection {
    match r {
        Refresh::Rotated { token, .. } => panic!("expected a rejection, got token {}", token.id),
        Refresh::Rejected(why) => why,
    }
}

#[tokio::test]
async fn rotation_and_reuse_revokes_the_family() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;
    let policy = SessionPolicy::default();
    let (h1, first) = start(db, &org, &org.admin, &policy).await;
    assert_eq!(first.user_id, org.admin.id);
    assert!(first.expires_at <= first.family_expires_at);
    assert!(
        (first.expires_at - Utc::now() - Duration::days(14))
            .num_seconds()
            .abs()
            < 60
    );
    assert!(
        (first.family_expires_at - Utc::now() - Duration::days(30))
            .num_seconds()
            .abs()
            < 60
    );

    // h1 → h2 → h3: each rotation stays in the family and uses up its predecessor.
    let h2 = hash();
    let (user, second) = rotated(sessions::rotate(db, &h1, &h2, &policy).await.unwrap());
    assert_eq!(user.id, org.admin.id);
    assert_eq!(second.family_id, first.family_id);
    assert_eq!(second.family_expires_at, first.family_expires_at);
    let h3 = hash();
    let (_, third) = rotated(sessions::rotate(db, &h2, &h3, &policy).await.unwrap());
    let rows = family(db, org.tenant.org_id, first.family_id).await;
    assert_eq!(rows.len(), 3);
    assert!(rows[0].used_at.is_some() && rows[0].replaced_by == Some(second.id));
    assert!(rows[1].used_at.is_some() && rows[1].replaced_by == Some(third.id));
    assert!(rows[2].used_at.is_none() && rows.iter().all(|r| r.revoked_at.is_none()));

    // A second sign-in is a family of its own.
    let (other_h, other) = start(db, &org, &org.admin, &policy).await;

    // Presenting h1 again: reuse. The whole family is revoked, newest included.
    let why = rejected(sessions::rotate(db, &h1, &hash(), &policy).await.unwrap());
    assert_eq!(why, TokenRejection::Reused);
    let rows = family(db, org.tenant.org_id, first.family_id).await;
    assert_eq!(rows.len(), 3, "no token was issued for the reuse");
    assert!(rows.iter().all(|r| r.revoked_at.is_some()));
    let why = rejected(sessions::rotate(db, &h3, &hash(), &policy).await.unwrap());
    assert_eq!(why, TokenRejection::Revoked);
    // The event says so; the other family lives on.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let events = maintainpro_models::events::list_after(&mut tx, 0, 1000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "session.reuse_detected" && e.payload["familyId"] == first.family_id.to_string()));
    let (_, next) = rotated(sessions::rotate(db, &other_h, &hash(), &policy).await.unwrap());
    assert_eq!(next.family_id, other.family_id);

    // Unknown tokens are just unknown.
    assert_eq!(
        rejected(sessions::rotate(db, &hash(), &hash(), &policy).await.unwrap()),
        TokenRejection::Unknown
    );
    t.cleanup().await;
}

#[tokio::test]
async fn concurrent_reuse_leaves_no_live_token() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;
    let policy = SessionPolicy::default();
    let (h1, first) = start(db, &org, &org.admin, &policy).await;
    // The client and a thief present the same token at once: one rotation
    // wins, the other is a reuse, and nothing in the family survives.
    let (next_a, next_b) = (hash(), hash());
    let (a, b) = tokio::join!(
        sessions::rotate(db, &h1, &next_a, &policy),
        sessions::rotate(db, &h1, &next_b, &policy)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let wins = outcomes
        .iter()
        .filter(|r| matches!(r, Refresh::Rotated { .. }))
        .count();
    assert_eq!(wins, 1);
    assert!(outcomes
        .iter()
        .any(|r| matches!(r, Refresh::Rejected(TokenRejection::Reused))));
    let rows = family(db, org.tenant.org_id, first.family_id).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.revoked_at.is_some()));
    t.cleanup().await;
}

#[tokio::test]
async fn expiry_and_family_lifetime() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;

    // A token past its expiry is refused, and stays unused.
    let instant = SessionPolicy {
        token_ttl: Duration::zero(),
        family_ttl: Duration::days(30),
    };
    let (h, token) = start(db, &org, &org.admin, &instant).await;
    let why = rejected(sessions::rotate(db, &h, &hash(), &instant).await.unwrap());
    assert_eq!(why, TokenRejection::Expired);
    let rows = family(db, org.tenant.org_id, token.family_id).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].used_at.is_none());

    // Rotation never extends a session past the family's absolute end.
    let short_family = SessionPolicy {
        token_ttl: Duration::days(14),
        family_ttl: Duration::hours(1),
    };
    let (h, token) = start(db, &org, &org.admin, &short_family).await;
    assert_eq!(token.expires_at, token.family_expires_at);
    let (_, next) = rotated(
        sessions::rotate(db, &h, &hash(), &SessionPolicy::default())
            .await
            .unwrap(),
    );
    assert_eq!(next.family_expires_at, token.family_expires_at);
    assert_eq!(next.expires_at, token.family_expires_at);

    // Ended families are cleared away at the user's next sign-in; live ones stay.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 day',
                family_expires_at = now() - interval '1 day' WHERE family_id = $1",
    )
    .bind(token.family_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, fresh) = start(db, &org, &org.admin, &SessionPolicy::default()).await;
    assert!(family(db, org.tenant.org_id, token.family_id).await.is_empty());
    assert_eq!(family(db, org.tenant.org_id, fresh.family_id).await.len(), 1);
    t.cleanup().await;
}

#[tokio::test]
async fn logout_and_deactivation_end_sessions() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;
    let policy = SessionPolicy::default();
    let tech = technician(db, &org).await;

    // Logout revokes the family, also through an older (used) token.
    let (h1, _) = start(db, &org, &tech, &policy).await;
    let h2 = hash();
    rotated(sessions::rotate(db, &h1, &h2, &policy).await.unwrap());
    assert!(sessions::logout(db, &h2).await.unwrap());
    assert_eq!(
        rejected(sessions::rotate(db, &h2, &hash(), &policy).await.unwrap()),
        TokenRejection::Revoked
    );
    assert!(!sessions::logout(db, &hash()).await.unwrap());

    // Deactivation revokes every session; sign-in is refused.
    let (a, _) = start(db, &org, &tech, &policy).await;
    let (b, _) = start(db, &org, &tech, &policy).await;
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let off = users::set_active(&mut tx, &as_admin(&org), tech.id, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!off.active);
    for h in [a, b] {
        assert_eq!(
            rejected(sessions::rotate(db, &h, &hash(), &policy).await.unwrap()),
            TokenRejection::Revoked
        );
    }
    assert!(matches!(
        users::authenticate(db, &tech.email, SEED_PASSWORD).await,
        Err(ModelError::InvalidCredentials)
    ));

    // A live token of a user deactivated behind the model's back still
    // cannot refresh, and its family goes.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    users::set_active(&mut tx, &as_admin(&org), tech.id, true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (h, token) = start(db, &org, &tech, &policy).await;
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query("UPDATE users SET active = false WHERE id = $1")
        .bind(tech.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        rejected(sessions::rotate(db, &h, &hash(), &policy).await.unwrap()),
        TokenRejection::InactiveUser
    );
    assert!(family(db, org.tenant.org_id, token.family_id)
        .await
        .iter()
        .all(|r| r.revoked_at.is_some()));

    // Reactivated, the user signs in again.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let on = users::set_active(&mut tx, &as_admin(&org), tech.id, true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(on.active);
    assert_eq!(
        users::authenticate(db, &tech.email, SEED_PASSWORD)
            .await
            .unwrap()
            .id,
        tech.id
    );
    t.cleanup().await;
}

#[tokio::test]
async fn admins_cannot_lock_themselves_out() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;
    let me = as_admin(&org);
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let err = users::set_active(&mut tx, &me, org.admin.id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    let err = users::update(
        &mut tx,
        &me,
        org.admin.id,
        UserUpdate {
            name: None,
            role: Some(Role::Technician),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    // Renaming oneself (and restating one's own role) is fine.
    let renamed = users::update(
        &mut tx,
        &me,
        org.admin.id,
        UserUpdate {
            name: Some("  Boss ".into()),
            role: Some(Role::Admin),
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed.name, "Boss");
    let err = users::update(
        &mut tx,
        &me,
        org.admin.id,
        UserUpdate {
            name: Some(" ".into()),
            role: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ModelError::Validation(ref f) if f[0].field == "name"),
        "{err:?}"
    );
    tx.commit().await.unwrap();

    // Another user's role does change.
    let tech = technician(db, &org).await;
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let promoted = users::update(
        &mut tx,
        &me,
        tech.id,
        UserUpdate {
            name: None,
            role: Some(Role::Manager),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(promoted.role, Role::Manager);
    assert_eq!(promoted.name, "Tech");
    t.cleanup().await;
}

#[tokio::test]
async fn invitations_work_once() {
    let t = test_db().await;
    let db = &t.db;
    let org = testkit::seed_org(db, "acme", &[]).await;
    let me = as_admin(&org);
    let invite = |email: &str| NewInvite {
        email: email.into(),
        name: "New Hire".into(),
        role: Role::Technician,
    };

    let h = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let inv = users::invite(&mut tx, &me, invite("New@acme.test"), &h)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!inv.user.active);
    assert_eq!(inv.user.email, "new@acme.test");
    assert!(
        (inv.expires_at - Utc::now() - users::INVITE_TTL)
            .num_seconds()
            .abs()
            < 60
    );
    // Not yet: no password works for an invited user.
    assert!(users::authenticate(db, "new@acme.test", SEED_PASSWORD)
        .await
        .is_err());
    assert!(users::authenticate(db, "new@acme.test", "!invited")
        .await
        .is_err());

    // A weak password is refused before anything happens.
    let err = users::accept_invite(db, &h, "short").await.unwrap_err();
    assert!(matches!(err, ModelError::Validation(_)));
    match users::accept_invite(db, &h, "a good long password")
        .await
        .unwrap()
    {
        InviteAcceptance::Accepted(u) => assert!(u.active && u.id == inv.user.id),
        InviteAcceptance::Rejected(why) => panic!("refused: {why:?}"),
    }
    assert_eq!(
        users::authenticate(db, "new@acme.test", "a good long password")
            .await
            .unwrap()
            .id,
        inv.user.id
    );
    // Once only.
    assert!(matches!(
        users::accept_invite(db, &h, "another long password")
            .await
            .unwrap(),
        InviteAcceptance::Rejected(TokenRejection::Reused)
    ));
    assert!(users::authenticate(db, "new@acme.test", "another long password")
        .await
        .is_err());
    assert!(matches!(
        users::accept_invite(db, &hash(), "another long password")
            .await
            .unwrap(),
        InviteAcceptance::Rejected(TokenRejection::Unknown)
    ));
    // The e-mail is taken now.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let err = users::invite(&mut tx, &me, invite("new@acme.test"), &hash())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    drop(tx);

    // Expired invitations are refused.
    let late = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    users::invite(&mut tx, &me, invite("late@acme.test"), &late)
        .await
        .unwrap();
    sqlx::query("UPDATE user_invites SET expires_at = now() - interval '1 second' WHERE token_hash = $1")
        .bind(&late[..])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        users::accept_invite(db, &late, "a good long password")
            .await
            .unwrap(),
        InviteAcceptance::Rejected(TokenRejection::Expired)
    ));

    // Deactivating an invited user withdraws the invitation.
    let withdrawn = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let inv = users::invite(&mut tx, &me, invite("gone@acme.test"), &withdrawn)
        .await
        .unwrap();
    users::set_active(&mut tx, &me, inv.user.id, true).await.unwrap();
    users::set_active(&mut tx, &me, inv.user.id, false).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        users::accept_invite(db, &withdrawn, "a good long password")
            .await
            .unwrap(),
        InviteAcceptance::Rejected(TokenRejection::Revoked)
    ));
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let gone = users::get(&mut tx, inv.user.id).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!gone.active);

    // A new invitation replaces the old one, for users without a password only.
    let again = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let late_user = users::find_by_email(&mut tx, "late@acme.test")
        .await
        .unwrap()
        .unwrap();
    let re = users::reinvite(&mut tx, &me, late_user.id, &again).await.unwrap();
    assert!(re.expires_at > Utc::now() + Duration::days(6));
    let err = users::reinvite(&mut tx, &me, org.admin.id, &hash())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    drop(tx);
    let newer = hash();
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    users::reinvite(&mut tx, &me, late_user.id, &hash())
        .await
        .unwrap();
    users::reinvite(&mut tx, &me, late_user.id, &newer).await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(
        users::accept_invite(db, &late, "a good long password")
            .await
            .unwrap(),
        InviteAcceptance::Rejected(TokenRejection::Revoked)
    ));
    assert!(matches!(
        users::accept_invite(db, &newer, "a good long password")
            .await
            .unwrap(),
        InviteAcceptance::Accepted(_)
    ));
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let err = users::reinvite(&mut tx, &me, late_user.id, &hash())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Conflict(_)), "{err:?}");
    drop(tx);
    t.cleanup().await;
}

#[tokio::test]
async fn sessions_and_users_stay_in_their_organization() {
    let t = test_db().await;
    let db = &t.db;
    let a = testkit::seed_org(db, "acme", &[]).await;
    let b = testkit::seed_org(db, "globex", &[]).await;
    let (h, token) = start(db, &a, &a.admin, &SessionPolicy::default()).await;

    // B sees nothing of A's sessions and cannot touch A's users.
    assert!(family(db, b.tenant.org_id, token.family_id).await.is_empty());
    let mut tx = db.tenant(b.tenant.org_id).await.unwrap();
    assert_eq!(
        sessions::revoke_family(&mut tx, token.family_id).await.unwrap(),
        0
    );
    assert_eq!(sessions::revoke_user(&mut tx, a.admin.id).await.unwrap(), 0);
    let err = users::set_active(&mut tx, &as_admin(&b), a.admin.id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::NotFound(_)), "{err:?}");
    let err = users::update(&mut tx, &as_admin(&b), a.admin.id, UserUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::NotFound(_)), "{err:?}");
    // A session row for another organization's user cannot be written.
    let err = sessions::start(&mut tx, &b.tenant, a.admin.id, &hash(), &SessionPolicy::default())
        .await
        .unwrap_err();
    assert!(err.sqlstate().is_some(), "{err:?}");
    drop(tx);

    // A's token still rotates, as A's user.
    let (user, _) = rotated(
        sessions::rotate(db, &h, &hash(), &SessionPolicy::default())
            .await
            .unwrap(),
    );
    assert_eq!(user.organization_id, a.tenant.org_id);
    t.cleanup().await;
}
