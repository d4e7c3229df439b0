//! The live events WebSocket against a real server (`maintainpro_api::run`):
//! an organization's client sees its own events live and never another
//! organization's; bad tokens and foreign origins are refused; `?after=`
//! resumes.
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use maintainpro_api::{ApiConfig, AppState};
use maintainpro_models::testkit::{self, test_db, TestDb};
use maintainpro_models::users::User;
use maintainpro_models::work_orders::{self, NewWorkOrder};
use maintainpro_models::{Db, Tenant};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET: &str = "test-secret-test-secret-test-secret";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    tdb: TestDb,
    addr: SocketAddr,
    shutdown: CancellationToken,
    state: AppState,
    a: (Uuid, User),
    b: (Uuid, User),
}

impl Server {
    fn token(&self, user: &User) -> String {
        self.state.jwt.issue(user).unwrap()
    }
    fn url(&self, query: &str) -> String {
        format!("ws://{}/api/v1/events/ws{query}", self.addr)
    }
}

async fn start(allowed_origins: Vec<String>) -> Server {
    let tdb = test_db().await;
    let a = testkit::seed_org(&tdb.db, "acme", &[]).await;
    let b = testkit::seed_org(&tdb.db, "globex", &[]).await;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ApiConfig::new(addr, SECRET);
    config.allowed_ws_origins = allowed_origins;
    let state = AppState::new(tdb.db.clone(), config.clone());
    let shutdown = CancellationToken::new();
    let (db, token) = (tdb.db.clone(), shutdown.clone());
    tokio::spawn(async move { maintainpro_api::run(db, config, listener, token).await.unwrap() });
    Server {
        tdb,
        addr,
        shutdown,
        state,
        a: (a.tenant.org_id, a.admin),
        b: (b.tenant.org_id, b.admin),
    }
}

async fn create_work_order(db: &Db, org: Uuid, title: &str) -> Uuid {
    let mut tx = db.tenant(org).await.unwrap();
    let wo = work_orders::create(
        &mut tx,
        &Tenant::system(org, "test"),
        NewWorkOrder {
            title: title.into(),
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
    tx.commit().await.unwrap();
    wo.id
}

/// The next text frame as JSON, or None when none arrives within `wait`.
async fn next_event(ws: &mut Ws, wait: Duration) -> Option<Value> {
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

#[tokio::test]
async fn org_a_sees_its_events_live_and_none_of_org_b() {
    let s = start(Vec::new()).await;
    let (mut ws, _) = connect_async(s.url(&format!("?token={}", s.token(&s.a.1))))
        .await
        .unwrap();

    // Events from before the connection are not replayed without `after`.
    assert!(next_event(&mut ws, Duration::from_millis(300)).await.is_none());

    let b_wo = create_work_order(&s.tdb.db, s.b.0, "globex secret").await;
    let a_wo = create_work_order(&s.tdb.db, s.a.0, "acme pump").await;

    // Live through LISTEN/NOTIFY: well before the 5 s poll would find it.
    let ev = next_event(&mut ws, Duration::from_secs(2))
        .await
        .expect("A's event");
    assert_eq!(ev["kind"], "work_order.created");
    assert_eq!(ev["subjectId"], a_wo.to_string());
    assert_eq!(ev["payload"]["title"], "acme pump");
    assert!(ev["id"].as_i64().unwrap() > 0);
    assert!(ev["createdAt"].is_string());

    // B's event never arrives (the poll fallback runs every few seconds, so
    // wait past one notification round-trip and a poll).
    let b_wo2 = create_work_order(&s.tdb.db, s.b.0, "globex again").await;
    if let Some(ev) = next_event(&mut ws, Duration::from_millis(1500)).await {
        panic!("org A received a foreign event: {ev}");
    }
    let _ = (b_wo, b_wo2);

    // The stream keeps going; a second A event arrives with a higher id.
    let first_id = ev["id"].as_i64().unwrap();
    let a_wo2 = create_work_order(&s.tdb.db, s.a.0, "acme valve").await;
    let ev2 = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("A's second event");
    assert_eq!(ev2["subjectId"], a_wo2.to_string());
    assert!(ev2["id"].as_i64().unwrap() > first_id);

    // Ping/pong: the server answers a client ping.
    ws.send(Message::Ping(vec![1, 2, 3].into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(pong, Message::Pong(p) if p.as_ref() == [1, 2, 3]));

    // B's own client sees B's events, not A's.
    let (mut wb, _) = connect_async(s.url(&format!("?token={}&after=0", s.token(&s.b.1))))
        .await
        .unwrap();
    let mut seen_b = Vec::new();
    while let Some(ev) = next_event(&mut wb, Duration::from_millis(800)).await {
        seen_b.push(ev["subjectId"].as_str().unwrap_or_default().to_string());
    }
    assert!(seen_b.contains(&b_wo.to_string()));
    assert!(!seen_b.contains(&a_wo.to_string()));

    ws.close(None).await.unwrap();
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}

#[tokio::test]
async fn resume_after_an_event_id_replays_the_rest() {
    let s = start(Vec::new()).await;
    let w1 = create_work_order(&s.tdb.db, s.a.0, "one").await;
    let w2 = create_work_order(&s.tdb.db, s.a.0, "two").await;
    let (mut ws, _) = connect_async(s.url(&format!("?token={}&after=0", s.token(&s.a.1))))
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(ev) = next_event(&mut ws, Duration::from_millis(800)).await {
        events.push(ev);
    }
    let pos = |id: Uuid| {
        events
            .iter()
            .position(|e| e["subjectId"] == id.to_string())
            .unwrap()
    };
    let first = &events[pos(w1)];
    assert!(pos(w1) < pos(w2));
    // Ids only grow.
    assert!(events
        .windows(2)
        .all(|p| p[0]["id"].as_i64() < p[1]["id"].as_i64()));

    let after = first["id"].as_i64().unwrap();
    let (mut ws2, _) = connect_async(s.url(&format!("?token={}&after={after}", s.token(&s.a.1))))
        .await
        .unwrap();
    let ev = next_event(&mut ws2, Duration::from_secs(5)).await.unwrap();
    assert!(ev["id"].as_i64().unwrap() > after);
    let mut rest = vec![ev];
    while let Some(ev) = next_event(&mut ws2, Duration::from_millis(500)).await {
        rest.push(ev);
    }
    assert!(rest.iter().any(|e| e["subjectId"] == w2.to_string()));
    assert!(!rest.iter().any(|e| e["subjectId"] == w1.to_string()));
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}

#[tokio::test]
async fn token_in_subprotocol_or_header_is_accepted() {
    let s = start(Vec::new()).await;
    let token = s.token(&s.a.1);

    let mut req = s.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {token}").parse().unwrap(),
    );
    let (mut ws, res) = connect_async(req).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "bearer");

    let mut req = s.url("").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws2, _) = connect_async(req).await.unwrap();

    let wo = create_work_order(&s.tdb.db, s.a.0, "both see it").await;
    for ws in [&mut ws, &mut ws2] {
        let ev = next_event(ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(ev["subjectId"], wo.to_string());
    }
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}

#[tokio::test]
async fn bad_tokens_and_foreign_origins_are_refused() {
    let s = start(vec!["https://app.example.com".into()]).await;
    let token = s.token(&s.a.1);

    assert_eq!(
        refused_status(connect_async(s.url("")).await),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refused_status(connect_async(s.url("?token=not-a-jwt")).await),
        StatusCode::UNAUTHORIZED
    );
    // Signed with another key.
    let other = AppState::new(
        s.tdb.db.clone(),
        ApiConfig::new(s.addr, "another-secret-another-secret-another"),
    );
    let forged = other.jwt.issue(&s.a.1).unwrap();
    assert_eq!(
        refused_status(connect_async(s.url(&format!("?token={forged}"))).await),
        StatusCode::UNAUTHORIZED
    );

    let with_origin = |origin: &str| {
        let mut req = s.url(&format!("?token={token}")).into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    assert_eq!(
        refused_status(connect_async(with_origin("https://evil.example")).await),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        refused_status(connect_async(with_origin("http://127.0.0.1:1")).await),
        StatusCode::FORBIDDEN
    );
    // Same origin as the API, and an allowed one, are accepted.
    connect_async(with_origin(&format!("http://{}", s.addr)))
        .await
        .unwrap();
    connect_async(with_origin("https://app.example.com"))
        .await
        .unwrap();
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}

#[tokio::test]
async fn streams_close_with_going_away_on_shutdown() {
    let s = start(Vec::new()).await;
    let (mut ws, _) = connect_async(s.url(&format!("?token={}", s.token(&s.a.1))))
        .await
        .unwrap();
    let wo = create_work_order(&s.tdb.db, s.a.0, "before shutdown").await;
    let ev = next_event(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev["subjectId"], wo.to_string());

    // Stopping the system: the API stops, then the pool closes.
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), s.tdb.db.close())
        .await
        .expect("the pool closes (the shared listener lets go of its connection)");
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
async fn an_event_committed_after_a_newer_one_still_arrives() {
    let s = start(Vec::new()).await;
    let (mut ws, _) = connect_async(s.url(&format!("?token={}", s.token(&s.a.1))))
        .await
        .unwrap();
    // The slow transaction takes an event id first but commits last.
    let mut slow = s.tdb.db.tenant(s.a.0).await.unwrap();
    let slow_subject = Uuid::new_v4();
    maintainpro_models::events::emit(
        &mut slow,
        &Tenant::system(s.a.0, "test"),
        "test.slow",
        Some(slow_subject),
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    let mut fast = s.tdb.db.tenant(s.a.0).await.unwrap();
    let fast_subject = Uuid::new_v4();
    maintainpro_models::events::emit(
        &mut fast,
        &Tenant::system(s.a.0, "test"),
        "test.fast",
        Some(fast_subject),
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    fast.commit().await.unwrap();
    let ev = next_event(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev["subjectId"], fast_subject.to_string());
    slow.commit().await.unwrap();
    // What this checks is that a lower id committed later is not skipped.
    // It normally comes with the commit's notification; under load that
    // notification was seen to come late or not at all (about 1 run in 13,
    // not understood yet), and the 5 s poll then delivers it: wait past one
    // poll.
    let ev2 = next_event(&mut ws, Duration::from_secs(12))
        .await
        .expect("the late event");
    assert_eq!(ev2["subjectId"], slow_subject.to_string());
    assert!(ev2["id"].as_i64() < ev["id"].as_i64());
    // And nothing is sent twice.
    assert!(next_event(&mut ws, Duration::from_millis(500)).await.is_none());
    s.shutdown.cancel();
    s.tdb.cleanup().await;
}
