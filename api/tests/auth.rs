//! Sign-in sessions and user administration over HTTP, against a real
//! PostgreSQL: refresh rotation and reuse detection, logout, expiry, access
//! token checks, the sign-in rate limit, invitations, activation, and
//! tenancy of the user endpoints.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use http_body_util::BodyExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{self, test_db, SeededOrg, TestDb, SEED_PASSWORD};
use maintainpro_models::users::{self, NewUser, User};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &str = "test-secret-test-secret-test-secret";

struct TestApp {
    tdb: TestDb,
    /// One router for the whole test, so the in-memory limiter persists.
    app: Router,
    a: SeededOrg,
    b: SeededOrg,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], false, "body: {}", self.body);
        let err = &self.body["error"];
        assert_eq!(err["code"], code, "body: {}", self.body);
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        let ts = err["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "timestamp {ts}");
        assert_eq!(
            err["requestId"].as_str(),
            self.headers.get("x-request-id").and_then(|v| v.to_str().ok())
        );
        err
    }

    fn data(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], true, "body: {}", self.body);
        &self.body["data"]
    }
}

impl TestApp {
    async fn request(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        peer: Option<[u8; 4]>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        if let Some(ip) = peer {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        }
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Resp {
        self.request(Method::POST, uri, token, Some(body), None).await
    }

    async fn login(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in; returns (access token, refresh token).
    async fn sign_in(&self, email: &str, password: &str) -> (String, String) {
        let r = self.login(email, password).await;
        let d = r.data(StatusCode::OK);
        (
            d["accessToken"].as_str().unwrap().to_string(),
            d["refreshToken"].as_str().unwrap().to_string(),
        )
    }

    async fn refresh(&self, refresh_token: &str) -> Resp {
        self.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refreshToken": refresh_token}),
        )
        .await
    }

    async fn user_in(&self, org: &SeededOrg, role: Role) -> User {
        let mut tx = self.tdb.db.tenant(org.tenant.org_id).await.unwrap();
        let user = users::create(
            &mut tx,
            &org.tenant,
            NewUser {
                email: format!("{role}-{}@{}.test", Uuid::new_v4().simple(), org.slug),
                name: format!("{role} user"),
                role,
                password: SEED_PASSWORD.into(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        user
    }
}

async fn spawn() -> TestApp {
    let tdb = test_db().await;
    let a = testkit::seed_org(&tdb.db, "acme", &[]).await;
    let b = testkit::seed_org(&tdb.db, "globex", &[]).await;
    let config = ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SECRET);
    let app = router(AppState::new(tdb.db.clone(), config));
    TestApp { tdb, app, a, b }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let t = spawn().await;
    let r = t.login("admin@acme.test", SEED_PASSWORD).await;
    let d = r.data(StatusCode::OK).clone();
    let first = d["refreshToken"].as_str().unwrap().to_string();
    assert_eq!(first.len(), 43, "32 random bytes, base64url");
    assert!(URL_SAFE_NO_PAD.decode(&first).is_ok());
    let expires = chrono::DateTime::parse_from_rfc3339(d["refreshTokenExpiresAt"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&Utc) - Utc::now()).num_hours();
    assert!((14 * 24 - 1..=14 * 24).contains(&days), "{days} h");
    // Only the hash is stored.
    let stored: Vec<Vec<u8>> = {
        let mut tx = t.tdb.db.tenant(t.a.tenant.org_id).await.unwrap();
        let rows = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        rows
    };
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], first.as_bytes());
    assert_eq!(stored[0].len(), 32);

    // Rotation: new access token and new refresh token.
    let r = t.refresh(&first).await;
    let d = r.data(StatusCode::OK);
    let second = d["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(d["tokenType"], "Bearer");
    assert_eq!(d["user"]["id"], json!(t.a.admin.id));
    let access = d["accessToken"].as_str().unwrap().to_string();
    let me = t
        .request(Method::GET, "/api/v1/me", Some(&access), None, None)
        .await;
    assert_eq!(me.data(StatusCode::OK)["user"]["id"], json!(t.a.admin.id));
    let third = t.refresh(&second).await.data(StatusCode::OK)["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();

    // Reusing a rotated token: 401, and the newest token of the family dies too.
    t.refresh(&first)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.refresh(&third)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.refresh(&second)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Garbage and missing tokens are refused the same way or as bad bodies.
    t.refresh("not-a-token")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.refresh("")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.refresh(&"x".repeat(10_000))
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.post("/api/v1/auth/refresh", None, json!({}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // A fresh sign-in is unaffected.
    let (_, fresh) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    t.refresh(&fresh).await.data(StatusCode::OK);
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn logout_revokes_and_expired_tokens_are_refused() {
    let t = spawn().await;
    let (_, refresh) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    let next = t.refresh(&refresh).await.data(StatusCode::OK)["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .post("/api/v1/auth/logout", None, json!({"refreshToken": next}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, Value::Null);
    t.refresh(&next)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Unknown tokens log out quietly too.
    let r = t
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refreshToken": "nothing-of-ours"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Expired refresh token (token lifetime and the family's).
    let (_, refresh) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    let (_, other) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    let mut tx = t.tdb.db.tenant(t.a.tenant.org_id).await.unwrap();
    sqlx::query(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 minute',
                family_expires_at = now() - interval '1 minute'
         WHERE revoked_at IS NULL AND token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&refresh)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    t.refresh(&refresh)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.refresh(&other).await.data(StatusCode::OK);
    t.tdb.cleanup().await;
}

fn mint(claims: &Value, alg: Algorithm) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn access_tokens_are_checked() {
    let t = spawn().await;
    let (access, refresh) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    // The issued token is HS256 with our issuer and audience.
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(access.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let refreshed = t.refresh(&refresh).await.data(StatusCode::OK)["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    let now = Utc::now().timestamp();
    let claims = |exp: i64, aud: &str| {
        json!({
            "sub": t.a.admin.id, "org": t.a.tenant.org_id, "role": "admin",
            "iat": now - 10, "exp": exp, "iss": "maintainpro", "aud": aud,
        })
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(now + 600, "maintainpro-api").to_string())
    );
    let refused = [
        ("alg none", alg_none),
        (
            "wrong audience",
            mint(&claims(now + 600, "another-api"), Algorithm::HS256),
        ),
        (
            "expired",
            mint(&claims(now - 3600, "maintainpro-api"), Algorithm::HS256),
        ),
        (
            "other algorithm",
            mint(&claims(now + 600, "maintainpro-api"), Algorithm::HS384),
        ),
        // A refresh token is not an access token.
        ("refresh token", refresh.clone()),
    ];
    for (name, token) in refused {
        let r = t
            .request(Method::GET, "/api/v1/me", Some(&token), None, None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        r.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    for token in [
        access,
        refreshed,
        mint(&claims(now + 600, "maintainpro-api"), Algorithm::HS256),
    ] {
        t.request(Method::GET, "/api/v1/me", Some(&token), None, None)
            .await
            .data(StatusCode::OK);
    }
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited() {
    let t = spawn().await;
    let attacker = Some([203, 0, 113, 7]);
    let attempt = |email: &'static str, password: &'static str, peer: Option<[u8; 4]>| {
        let t = &t;
        async move {
            t.request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
                peer,
            )
            .await
        }
    };
    for _ in 0..5 {
        attempt("admin@acme.test", "wrong password", attacker)
            .await
            .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    // The sixth is refused without looking at the password, even the right one.
    for password in ["wrong password", SEED_PASSWORD] {
        let r = attempt("admin@acme.test", password, attacker).await;
        r.error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        let retry: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((890..=900).contains(&retry), "Retry-After {retry}");
    }
    // The e-mail is case-insensitive for the limiter as for sign-in.
    attempt("ADMIN@acme.test ", SEED_PASSWORD, attacker)
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // The account from another address, and another account from the
    // attacker's address, are not locked out.
    attempt("admin@acme.test", SEED_PASSWORD, Some([198, 51, 100, 1]))
        .await
        .data(StatusCode::OK);
    attempt("admin@globex.test", SEED_PASSWORD, attacker)
        .await
        .data(StatusCode::OK);

    // A success clears the account's counter.
    let office = Some([192, 0, 2, 10]);
    for _ in 0..4 {
        attempt("admin@globex.test", "wrong password", office)
            .await
            .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    attempt("admin@globex.test", SEED_PASSWORD, office)
        .await
        .data(StatusCode::OK);
    for _ in 0..4 {
        attempt("admin@globex.test", "wrong password", office)
            .await
            .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    attempt("admin@globex.test", SEED_PASSWORD, office)
        .await
        .data(StatusCode::OK);

    // Without a known peer address the e-mail alone is the key.
    for _ in 0..5 {
        attempt("admin@globex.test", "wrong password", None)
            .await
            .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    attempt("admin@globex.test", SEED_PASSWORD, None)
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn invite_accept_then_sign_in() {
    let t = spawn().await;
    let (admin, _) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    let invite = json!({"email": "Hire@acme.test", "name": "New Hire", "role": "technician"});

    // Only users:manage may invite.
    let tech = t.user_in(&t.a, Role::Technician).await;
    let (tech_token, _) = t.sign_in(&tech.email, SEED_PASSWORD).await;
    t.post("/api/v1/users/invite", Some(&tech_token), invite.clone())
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");

    let r = t.post("/api/v1/users/invite", Some(&admin), invite.clone()).await;
    let d = r.data(StatusCode::CREATED).clone();
    assert_eq!(d["user"]["email"], "hire@acme.test");
    assert_eq!(d["user"]["active"], false);
    assert_eq!(d["user"]["role"], "technician");
    let token = d["inviteToken"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43);
    assert!(d["expiresAt"].as_str().is_some());
    t.post("/api/v1/users/invite", Some(&admin), invite.clone())
        .await
        .error(StatusCode::CONFLICT, "CONFLICT");
    t.post(
        "/api/v1/users/invite",
        Some(&admin),
        json!({"email": "nope", "name": "", "role": "admin"}),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");

    // Not before accepting.
    t.login("hire@acme.test", "a fine new password")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let accept = |token: &str, password: &str| {
        t.post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": password}),
        )
    };
    let err = accept(&token, "short").await;
    let err = err.error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(err["details"][0]["field"], "password");
    accept("made-up", "a fine new password")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let r = accept(&token, "a fine new password").await;
    let user = r.data(StatusCode::OK);
    assert_eq!(user["active"], true);
    assert_eq!(user["email"], "hire@acme.test");

    let (access, _) = t.sign_in("hire@acme.test", "a fine new password").await;
    let me = t
        .request(Method::GET, "/api/v1/me", Some(&access), None, None)
        .await;
    assert_eq!(me.data(StatusCode::OK)["user"]["role"], "technician");
    // One use only.
    accept(&token, "another new password")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let hire = user["id"].as_str().unwrap().to_string();
    t.post(&format!("/api/v1/users/{hire}/invite"), Some(&admin), json!({}))
        .await
        .error(StatusCode::CONFLICT, "CONFLICT");

    // A lost invitation is replaced by a new one; the old one stops working.
    let r = t
        .post(
            "/api/v1/users/invite",
            Some(&admin),
            json!({"email": "late@acme.test", "name": "Late", "role": "requester"}),
        )
        .await;
    let d = r.data(StatusCode::CREATED).clone();
    let (late_id, lost) = (
        d["user"]["id"].as_str().unwrap(),
        d["inviteToken"].as_str().unwrap(),
    );
    let r = t
        .request(
            Method::POST,
            &format!("/api/v1/users/{late_id}/invite"),
            Some(&admin),
            None,
            None,
        )
        .await;
    let renewed = r.data(StatusCode::CREATED)["inviteToken"]
        .as_str()
        .unwrap()
        .to_string();
    accept(lost, "a fine new password")
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    accept(&renewed, "a fine new password").await.data(StatusCode::OK);
    t.sign_in("late@acme.test", "a fine new password").await;
    // Another organization's admin cannot re-invite A's users.
    let (admin_b, _) = t.sign_in("admin@globex.test", SEED_PASSWORD).await;
    t.request(
        Method::POST,
        &format!("/api/v1/users/{late_id}/invite"),
        Some(&admin_b),
        None,
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn deactivation_ends_sign_in_and_refresh() {
    let t = spawn().await;
    let (admin, _) = t.sign_in("admin@acme.test", SEED_PASSWORD).await;
    let tech = t.user_in(&t.a, Role::Technician).await;
    let (_, tech_refresh) = t.sign_in(&tech.email, SEED_PASSWORD).await;

    let uri = format!("/api/v1/users/{}/deactivate", tech.id);
    let r = t.request(Method::POST, &uri, Some(&admin), None, None).await;
    assert_eq!(r.data(StatusCode::OK)["active"], false);
    t.refresh(&tech_refresh)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    t.login(&tech.email, SEED_PASSWORD)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Idempotent.
    let r = t.request(Method::POST, &uri, Some(&admin), None, None).await;
    assert_eq!(r.data(StatusCode::OK)["active"], false);

    // Nobody deactivates themself.
    let own = format!("/api/v1/users/{}/deactivate", t.a.admin.id);
    t.request(Method::POST, &own, Some(&admin), None, None)
        .await
        .error(StatusCode::CONFLICT, "CONFLICT");

    // Reactivated: sign-in works again, and a role change shows after refresh.
    let uri = format!("/api/v1/users/{}/activate", tech.id);
    let r = t.request(Method::POST, &uri, Some(&admin), None, None).await;
    assert_eq!(r.data(StatusCode::OK)["active"], true);
    let (_, tech_refresh) = t.sign_in(&tech.email, SEED_PASSWORD).await;
    let patch = format!("/api/v1/users/{}", tech.id);
    let r = t
        .request(
            Method::PATCH,
            &patch,
            Some(&admin),
            Some(json!({"role": "manager", "name": "Promoted"})),
            None,
        )
        .await;
    let d = r.data(StatusCode::OK);
    assert_eq!(
        (d["role"].as_str(), d["name"].as_str()),
        (Some("manager"), Some("Promoted"))
    );
    let r = t.refresh(&tech_refresh).await;
    let access = r.data(StatusCode::OK)["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let me = t
        .request(Method::GET, "/api/v1/me", Some(&access), None, None)
        .await;
    let perms = me.data(StatusCode::OK)["permissions"].as_array().unwrap().clone();
    assert!(perms.contains(&json!("work_orders:assign")));
    // Own role: refused; bad input: 422.
    let own = format!("/api/v1/users/{}", t.a.admin.id);
    t.request(
        Method::PATCH,
        &own,
        Some(&admin),
        Some(json!({"role": "technician"})),
        None,
    )
    .await
    .error(StatusCode::CONFLICT, "CONFLICT");
    t.request(
        Method::PATCH,
        &patch,
        Some(&admin),
        Some(json!({"role": "root"})),
        None,
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    let got = t.request(Method::GET, &patch, Some(&admin), None, None).await;
    assert_eq!(got.data(StatusCode::OK)["role"], "manager");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn user_administration_is_tenant_safe_and_needs_users_manage() {
    let t = spawn().await;
    let (admin_b, _) = t.sign_in("admin@globex.test", SEED_PASSWORD).await;
    let victim = t.user_in(&t.a, Role::Technician).await;
    let (_, victim_refresh) = t.sign_in(&victim.email, SEED_PASSWORD).await;

    // Org B's admin: every user endpoint answers 404 for A's user.
    let id = victim.id;
    let calls = [
        (Method::POST, format!("/api/v1/users/{id}/deactivate"), None),
        (Method::POST, format!("/api/v1/users/{id}/activate"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{id}"),
            Some(json!({"role": "admin"})),
        ),
        (Method::GET, format!("/api/v1/users/{id}"), None),
    ];
    for (method, uri, body) in calls.clone() {
        t.request(method, &uri, Some(&admin_b), body, None)
            .await
            .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // Nothing changed for the victim.
    let r = t.refresh(&victim_refresh).await;
    let d = r.data(StatusCode::OK);
    assert_eq!(
        (d["user"]["active"].as_bool(), d["user"]["role"].as_str()),
        (Some(true), Some("technician"))
    );
    let listed = t
        .request(Method::GET, "/api/v1/users", Some(&admin_b), None, None)
        .await;
    let listed = listed.data(StatusCode::OK).as_array().unwrap().clone();
    assert!(listed
        .iter()
        .all(|u| u["organizationId"] == json!(t.b.tenant.org_id)));

    // Roles without users:manage get 403, in their own organization too.
    for role in [Role::Manager, Role::Technician, Role::Requester] {
        let user = t.user_in(&t.a, role).await;
        let (token, _) = t.sign_in(&user.email, SEED_PASSWORD).await;
        for (method, uri, body) in calls.iter().take(3).cloned() {
            t.request(method, &uri, Some(&token), body, None)
                .await
                .error(StatusCode::FORBIDDEN, "FORBIDDEN");
        }
    }
    // Unauthenticated: 401.
    t.request(Method::POST, &calls[0].1, None, None, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // Malformed ids: 400.
    t.request(
        Method::POST,
        "/api/v1/users/not-a-uuid/deactivate",
        Some(&admin_b),
        None,
        None,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    t.tdb.cleanup().await;
}

#[tokio::test]
async fn openapi_lists_the_session_and_user_routes() {
    let t = spawn().await;
    let r = t
        .request(Method::GET, "/api/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/accept-invite", "post"),
        ("/api/v1/users/invite", "post"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}/deactivate", "post"),
        ("/api/v1/users/{id}/activate", "post"),
        ("/api/v1/users/{id}/invite", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "missing {method} {path}"
        );
    }
    assert!(paths["/api/v1/auth/login"]["post"]["responses"]
        .get("429")
        .is_some());
    t.tdb.cleanup().await;
}
