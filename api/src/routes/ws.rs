//! Live events over WebSocket: `GET /api/v1/events/ws` streams the caller's
//! organization's outbox events as JSON text frames.
//!
//! Authentication: `?token=`, `Sec-WebSocket-Protocol: bearer, <token>` (for
//! browsers) or the Authorization header. A present `Origin` must match the
//! request's Host or `allowed_ws_origins`. Events are read from the outbox in
//! a tenant transaction (row-level security), woken by `LISTEN mp_events`
//! through one listener per process and database, fanned out by a broadcast
//! channel, with a periodic poll as fallback. `?after=<id>` resumes.
//! The stream ends when the database pool closes (server shutdown) with a
//! 1001 close frame.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maintainpro_models::auth::Permission;
use maintainpro_models::webhooks::{self, EventMessage};
use maintainpro_models::Db;
use serde::Deserialize;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

/// The NOTIFY channel of the outbox trigger (payload `<org_id>:<event_id>`).
const CHANNEL: &str = "mp_events";
/// Poll even without notifications this often.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Ping this often; a client that misses two pongs is dropped.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Events read per query.
const BATCH: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events/ws", get(events_ws))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Access token (browsers cannot set headers on a WebSocket).
    pub token: Option<String>,
    /// Resume: send events with an id greater than this first.
    pub after: Option<i64>,
}

/// Streams the organization's events: text frames
/// `{"id", "kind", "subjectId", "payload", "createdAt"}`, oldest first.
#[utoipa::path(
    get, path = "/api/v1/events/ws", operation_id = "eventsWebSocket", tag = "events",
    params(WsQuery),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)
    )
)]
pub async fn events_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_ws_origins)?;
    let (token, via_protocol) = crate::auth::ws_token(&headers, q.token.as_deref())?;
    let claims = state.jwt.verify(&token)?;
    let auth = AuthUser::from_claims(&claims);
    auth.require(Permission::WorkOrdersView)?;
    if matches!(q.after, Some(a) if a < 0) {
        return Err(ApiError::Validation {
            message: "after must not be negative".into(),
            details: vec![maintainpro_models::FieldError::new(
                "after",
                "must not be negative",
            )],
        });
    }
    let org = auth.org_id();
    let start = match q.after {
        Some(after) => after,
        None => {
            let mut tx = state.db.tenant(org).await?;
            let latest = webhooks::latest_event_id(&mut tx).await?;
            tx.commit().await?;
            latest
        }
    };
    let ws = if via_protocol {
        ws.protocols(["bearer"])
    } else {
        ws
    };
    let db = state.db.clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let notifications = hub(&db);
        if let Err(e) = stream(socket, db, org, start, notifications).await {
            tracing::debug!(error = %e, "events stream ended with an error");
        }
    }))
}

/// 403 unless the Origin (when present) is the API's own or an allowed one.
pub(crate) fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let forbidden = || ApiError::Forbidden("origin not allowed".into());
    let origin = origin.to_str().map_err(|_| forbidden())?.trim();
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(forbidden)?;
    let url = url::Url::parse(origin).map_err(|_| forbidden())?;
    let origin_host = url.host_str().ok_or_else(forbidden)?;
    let origin_authority = match url.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_string(),
    };
    if origin_authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// [`send_new`], except that when it fails because the server is stopping
/// (the pool closed under the query) the stream ends with 1001 as in a clean
/// shutdown. `Ok(true)`: the stream is closed.
async fn send_or_close(
    socket: &mut WebSocket,
    db: &Db,
    org: Uuid,
    cursor: &mut StreamCursor,
) -> Result<bool, ApiError> {
    match send_new(socket, db, org, cursor).await {
        Ok(()) => Ok(false),
        Err(_) if db.pool().is_closed() => {
            close(socket, 1001, "server shutting down").await;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Sends events after `after` until the client leaves or the server stops.
async fn stream(
    mut socket: WebSocket,
    db: Db,
    org: Uuid,
    after: i64,
    mut notifications: broadcast::Receiver<Uuid>,
) -> Result<(), ApiError> {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut keepalive = Keepalive::default();
    let mut cursor = StreamCursor::new(after);
    if send_or_close(&mut socket, &db, org, &mut cursor).await? {
        return Ok(());
    }
    loop {
        tokio::select! {
            note = notifications.recv() => match note {
                Ok(o) if o == org => {
                    if send_or_close(&mut socket, &db, org, &mut cursor).await? {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if send_or_close(&mut socket, &db, org, &mut cursor).await? {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    if db.pool().is_closed() {
                        close(&mut socket, 1001, "server shutting down").await;
                        return Ok(());
                    }
                    // The listener stopped (and will be restarted): re-subscribe.
                    notifications = hub(&db);
                    if send_or_close(&mut socket, &db, org, &mut cursor).await? {
                        return Ok(());
                    }
                }
            },
            _ = poll.tick() => {
                if db.pool().is_closed() {
                    close(&mut socket, 1001, "server shutting down").await;
                    return Ok(());
                }
                if send_or_close(&mut socket, &db, org, &mut cursor).await? {
                        return Ok(());
                    }
            }
            _ = ping.tick() => {
                if !keepalive.ping(&mut socket).await? {
                    return Ok(());
                }
            }
            incoming = socket.recv() => {
                if !keepalive.received(incoming) {
                    return Ok(());
                }
            }
        }
    }
}

/// Where a stream is in the outbox. Event ids are taken before commit, so a
/// later id can become visible before an earlier one; "the highest id sent"
/// would skip the earlier one. Instead: every id <= `low` has been sent (or
/// will never exist), `sent` holds the ids above `low` already sent, and
/// `marks` remembers (highest id seen, snapshot xmax) pairs: once the xmin
/// passes that xmax, every transaction that could still hold a smaller id
/// has ended, and `low` moves up to that id.
struct StreamCursor {
    low: i64,
    sent: BTreeSet<i64>,
    marks: VecDeque<(i64, u64)>,
}

impl StreamCursor {
    fn new(after: i64) -> Self {
        Self {
            low: after,
            sent: BTreeSet::new(),
            marks: VecDeque::new(),
        }
    }

    fn advance(&mut self, xmin: u64) {
        while let Some(&(id, xmax)) = self.marks.front() {
            if xmax > xmin {
                break;
            }
            self.low = self.low.max(id);
            self.marks.pop_front();
        }
        let low = self.low;
        self.sent.retain(|id| *id > low);
    }
}

/// Sends every event not sent yet (in batches).
async fn send_new(
    socket: &mut WebSocket,
    db: &Db,
    org: Uuid,
    cursor: &mut StreamCursor,
) -> Result<(), ApiError> {
    let mut from = cursor.low;
    loop {
        let mut tx = db.tenant(org).await?;
        // Every id <= the highest one read was taken before the read's
        // snapshot, by a transaction below its xmax; the horizon taken after
        // the read has an xmax at least as high, so it is a safe mark.
        let batch: Vec<EventMessage> = webhooks::messages_after(&mut tx, from, BATCH).await?;
        let horizon = webhooks::horizon(&mut tx).await?;
        tx.commit().await?;
        let full = batch.len() as i64 == BATCH;
        if let Some(last) = batch.last() {
            cursor.marks.push_back((last.id, horizon.xmax));
            from = last.id;
        }
        for event in batch {
            if event.id <= cursor.low || !cursor.sent.insert(event.id) {
                continue;
            }
            let text = serde_json::to_string(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
            send(socket, Message::Text(text.into())).await?;
        }
        cursor.advance(horizon.xmin);
        if !full {
            return Ok(());
        }
    }
}

/// The keepalive of a server-sent stream: a ping every [`PING_INTERVAL`],
/// and a client that misses two pongs is dropped.
#[derive(Debug, Default)]
pub(crate) struct Keepalive {
    missed_pongs: u32,
}

impl Keepalive {
    /// On a ping tick: pings, or closes (1011) a client that stopped
    /// answering. `Ok(false)`: the stream is over.
    pub(crate) async fn ping(&mut self, socket: &mut WebSocket) -> Result<bool, ApiError> {
        if self.missed_pongs >= 2 {
            close(socket, 1011, "keepalive timeout").await;
            return Ok(false);
        }
        self.missed_pongs += 1;
        send(socket, Message::Ping(Default::default())).await?;
        Ok(true)
    }

    /// On what the client sent: false when it left.
    pub(crate) fn received(&mut self, incoming: Option<Result<Message, axum::Error>>) -> bool {
        match incoming {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => false,
            Some(Ok(Message::Pong(_))) => {
                self.missed_pongs = 0;
                true
            }
            // Pings are answered by the library; anything else is ignored.
            Some(Ok(_)) => true,
        }
    }
}

/// Sends a close frame (best effort: the client may be gone).
pub(crate) async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

pub(crate) async fn send(socket: &mut WebSocket, message: Message) -> Result<(), ApiError> {
    socket
        .send(message)
        .await
        .map_err(|e| ApiError::Internal(format!("websocket send failed: {e}")))
}

/// Notification fan-out per database (host, port, database), so every
/// connection of a process shares one `LISTEN` connection.
static HUBS: LazyLock<Mutex<HashMap<String, broadcast::Sender<Uuid>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn hub_key(db: &Db) -> String {
    let o = db.pool().connect_options();
    format!(
        "{}:{}/{}",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or_default()
    )
}

/// A receiver of the organization ids of new events, starting the shared
/// listener of this database if none runs.
fn hub(db: &Db) -> broadcast::Receiver<Uuid> {
    let key = hub_key(db);
    let mut hubs = HUBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(tx) = hubs.get(&key) {
        return tx.subscribe();
    }
    let (tx, rx) = broadcast::channel(1024);
    hubs.insert(key.clone(), tx.clone());
    drop(hubs);
    tokio::spawn(listen(db.clone(), key, tx));
    rx
}

/// Forwards `mp_events` notifications until the pool closes or nobody listens.
async fn listen(db: Db, key: String, tx: broadcast::Sender<Uuid>) {
    let mut listener: Option<PgListener> = None;
    loop {
        if db.pool().is_closed() || tx.receiver_count() == 0 {
            break;
        }
        let l = match listener.as_mut() {
            Some(l) => l,
            None => match PgListener::connect_with(db.pool()).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => listener.insert(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot LISTEN for events; polling only");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
                Err(sqlx::Error::PoolClosed) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect the events listener; polling only");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(Duration::from_secs(10), l.recv()).await {
            // Nothing for a while: loop to check whether anyone still listens.
            Err(_) => {}
            Ok(Ok(n)) => {
                if let Some(org) = n.payload().split(':').next().and_then(|s| s.parse::<Uuid>().ok()) {
                    let _ = tx.send(org);
                }
            }
            Ok(Err(sqlx::Error::PoolClosed)) => break,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "events listener failed; reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let mut hubs = HUBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if hubs.get(&key).is_some_and(|t| t.same_channel(&tx)) {
        hubs.remove(&key);
    }
    drop(hubs);
    drop(listener);
}
