//! The live readings WebSocket against a real server
//! (`maintainpro_api::run`): readings stored after the connection arrive
//! as `{sensorId, points: [[tsMillis, value], …]}` frames, the token may
//! come in the subprotocol, and a foreign sensor, a malformed list or a
//! caller without `readings:view` is refused before the upgrade.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use futures::StreamExt;
use maintainpro_api::{ApiConfig, AppState};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg, TestDb};
use maintainpro_models::users::{self, User};
use maintainpro_models::Db;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use common::add_user;

const SECRET: &str = "test-secret-test-secret-test-secret";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    tdb: TestDb,
    addr: SocketAddr,
    shutdown: CancellationToken,
    state: AppState,
    org: SeededOrg,
    foreign: SeededOrg,
}

impl Server {
    fn token(&self, user: &User) -> String {
        self.state.jwt.issue(user).unwrap()
    }
    fn url(&self, query: &str) -> String {
        format!("ws://{}/api/v1/readings/ws{query}", self.addr)
    }
    async fn user(&self, email: &str, role: Role) -> User {
        add_user(&self.tdb.db, &self.org, email, role).await;
        let mut tx = self.tdb.db.tenant(self.org.tenant.org_id).await.unwrap();
        let u = users::find_by_email(&mut tx, email).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        u
    }
}

async fn start() -> Server {
    let tdb = test_db().await;
    let org = seed_org(&tdb.db, "tail", &["temp", "vib"]).await;
    let foreign = seed_org(&tdb.db, "tail-other", &["temp"]).await;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ApiConfig::new(addr, SECRET);
    let state = AppState::new(tdb.db.clone(), config.clone());
    let shutdown = CancellationToken::new();
    let (db, token) = (tdb.db.clone(), shutdown.clone());
    tokio::spawn(async move { maintainpro_api::run(db, config, listener, token).await.unwrap() });
    Server {
        tdb,
        addr,
        shutdown,
        state,
        org,
        foreign,
    }
}

async fn insert(db: &Db, org: &SeededOrg, sensor: Uuid, points: &[(DateTime<Utc>, f64)]) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    for (ts, value) in points {
        sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, $4)")
            .bind(org.tenant.org_id)
            .bind(sensor)
            .bind(ts)
            .bind(value)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The next text frame as JSON, or None when none arrives within `wait`.
async fn next_frame(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.unwrap();
        match msg {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The HTTP status a refused handshake got.
fn refused_status(result: Result<(Ws, impl Sized), WsError>) -> StatusCode {
    match result {
        Err(WsError::Http(res)) => res.status(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected the handshake to be refused"),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test]
async fn readings_stored_after_connect_arrive() {
    let s = start().await;
    let (temp, vib) = (s.org.sensors[0].id, s.org.sensors[1].id);
    let t0 = Utc::now().trunc_subsecs(0) - chrono::Duration::minutes(5);
    // History before the connection is not replayed without `after`.
    insert(&s.tdb.db, &s.org, temp, &[(t0, 1.0)]).await;
    let tech = s.user("tech@tail.test", Role::Technician).await;
    let (mut ws, _) = connect_async(s.url(&format!("?sensorIds={temp},{vib}&token={}", s.token(&tech))))
        .await
        .unwrap();
    assert!(next_frame(&mut ws, Duration::from_millis(1500)).await.is_none());

    let t1 = t0 + chrono::Duration::seconds(1);
    let t2 = t0 + chrono::Duration::seconds(2);
    insert(&s.tdb.db, &s.org, temp, &[(t1, 2.5), (t2, 3.5)]).await;
    insert(&s.tdb.db, &s.org, vib, &[(t1, 9.0)]).await;
    // A foreign sensor's readings never show.
    insert(&s.tdb.db, &s.foreign, s.foreign.sensors[0].id, &[(t1, 666.0)]).await;

    let mut got: Vec<Value> = Vec::new();
    while got.len() < 2 {
        got.push(
            next_frame(&mut ws, Duration::from_secs(5))
                .await
                .expect("a frame"),
        );
    }
    let of = |id: Uuid| {
        got.iter()
            .find(|f| f["sensorId"] == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(
        of(temp)["points"],
        serde_json::json!([[ms(t1), 2.5], [ms(t2), 3.5]])
    );
    assert_eq!(of(vib)["points"], serde_json::json!([[ms(t1), 9.0]]));

    // Nothing is sent twice; the next reading comes alone.
    let t3 = t0 + chrono::Duration::seconds(3);
    insert(&s.tdb.db, &s.org, temp, &[(t3, 4.0)]).await;
    let f = next_frame(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(f["points"], serde_json::json!([[ms(t3), 4.0]]));
    assert!(next_frame(&mut ws, Duration::from_millis(1500)).await.is_none());

    // `after` replays from an instant; the token may come in the subprotocol.
    let after = t2.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut req = s
        .url(&format!("?sensorIds={temp}&after={}", after.replace('+', "%2B")))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {}", s.token(&tech)).parse().unwrap(),
    );
    let (mut ws2, res) = connect_async(req).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "bearer");
    let f = next_frame(&mut ws2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(f["points"], serde_json::json!([[ms(t3), 4.0]]));

    // Server shutdown ends the stream with 1001.
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), s.tdb.db.close())
        .await
        .unwrap();
    let frame = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a close frame")
            .expect("the stream ends with a close frame")
            .unwrap();
        if let Message::Close(frame) = msg {
            break frame;
        }
    };
    assert_eq!(u16::from(frame.unwrap().code), 1001);
    s.tdb.cleanup().await;
}

#[tokio::test]
async fn foreign_sensors_bad_lists_and_requesters_are_refused() {
    let s = start().await;
    let temp = s.org.sensors[0].id;
    let foreign = s.foreign.sensors[0].id;
    let admin = s.token(&s.org.admin);

    // A foreign (or unknown) sensor: 404 before the upgrade, even among own ones.
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?sensorIds={temp},{foreign}&token={admin}"))).await),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?sensorIds={}&token={admin}", Uuid::new_v4()))).await),
        StatusCode::NOT_FOUND
    );
    // Malformed or too many ids, `after` too far back: 422.
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?sensorIds=nope&token={admin}"))).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let many = (0..21)
        .map(|_| Uuid::new_v4().to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?sensorIds={many}&token={admin}"))).await),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        refused_status(
            connect_async(s.url(&format!(
                "?sensorIds={temp}&after=2001-01-01T00:00:00Z&token={admin}"
            )))
            .await
        ),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // No token, or a requester (no readings:view).
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?sensorIds={temp}"))).await),
        StatusCode::UNAUTHORIZED
    );
    let requester = s.user("req@tail.test", Role::Requester).await;
    assert_eq!(
        refused_status(
            connect_async(s.url(&format!("?sensorIds={temp}&token={}", s.token(&requester)))).await
        ),
        StatusCode::FORBIDDEN
    );
    // A foreign Origin.
    let mut req = s
        .url(&format!("?sensorIds={temp}&token={admin}"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused_status(connect_async(req).await), StatusCode::FORBIDDEN);

    // The admin, with their own sensor, gets through.
    connect_async(s.url(&format!("?sensorIds={temp}&token={admin}")))
        .await
        .unwrap();
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}
