//! Live tail of readings over WebSocket: `GET /api/v1/readings/ws` streams
//! the new readings of up to 20 sensors of the caller's organization as
//! JSON text frames `{"sensorId", "points": [[tsMillis, value], …]}`, one
//! frame per sensor that has new points, oldest point first.
//!
//! Authentication is the events stream's ([`super::ws`]): `?token=`,
//! `Sec-WebSocket-Protocol: bearer, <token>` (answered with the `bearer`
//! subprotocol) or the Authorization header, read by the access middleware
//! for WebSocket upgrades; the caller needs `readings:view`. A present
//! `Origin` must match the request's Host or `allowed_ws_origins`. The
//! sensors are checked before the upgrade: a malformed list is a 422, an
//! unknown or foreign sensor a 404 (with the error envelope).
//!
//! About once a second the stream reads, in a tenant transaction, each
//! sensor's readings with `ts` after the last one sent (at first: `after`,
//! by default the sensor's newest reading at connect), in batches of at most
//! [`PER_SENSOR`] per sensor, repeated while a batch is full. A tail shows
//! what comes after: a reading stored later with an older `ts` (a late
//! upload) is not sent; re-read the range for it. The stream ends with a
//! 1001 close frame when the database pool closes (server shutdown).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use maintainpro_models::readings::{self, Reading};
use maintainpro_models::{devices, Db, FieldError, ModelError};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use super::sensors::sensor_ids;
use super::ws::{check_origin, close, send, Keepalive, PING_INTERVAL};
use crate::auth::{ws_token, AuthUser};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Query;
use crate::state::AppState;

/// How often the database is read for new readings.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Readings read per sensor and query.
pub const PER_SENSOR: i64 = 1000;
/// How far back `after` may reach.
const MAX_REPLAY: chrono::Duration = chrono::Duration::hours(24);

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/readings/ws", get(readings_ws))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingsWsQuery {
    /// Comma-separated sensor ids (at most 20, each of this organization).
    pub sensor_ids: String,
    /// Send readings after this instant first (RFC 3339, at most 24 h ago);
    /// default: only readings newer than each sensor's newest at connect.
    pub after: Option<DateTime<Utc>>,
    /// Access token (browsers cannot set headers on a WebSocket).
    pub token: Option<String>,
}

/// One frame: a sensor's new points as `[epoch milliseconds, value]`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Frame {
    sensor_id: Uuid,
    points: Vec<(i64, f64)>,
}

/// Streams new readings of some sensors: text frames
/// `{"sensorId", "points": [[tsMillis, value], …]}`, about once a second.
#[utoipa::path(
    get, path = "/api/v1/readings/ws", operation_id = "readingsWebSocket", tag = "sensors",
    params(ReadingsWsQuery), security(("bearer" = ["readings:view"])),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)
    )
)]
pub async fn readings_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: AuthUser,
    Query(q): Query<ReadingsWsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_ws_origins)?;
    let ids = sensor_ids(&q.sensor_ids)?;
    if let Some(after) = q.after {
        if after < Utc::now() - MAX_REPLAY {
            return Err(ModelError::Validation(vec![FieldError::new(
                "after",
                "must not be more than 24 hours ago",
            )])
            .into());
        }
    }
    let mut tx = state.tenant_tx(&auth).await?;
    for id in &ids {
        devices::get_sensor(&mut tx, *id).await?;
    }
    let cursors: Vec<(Uuid, DateTime<Utc>)> = match q.after {
        Some(after) => ids.iter().map(|id| (*id, after)).collect(),
        None => {
            let newest = readings::latest_ts_each(&mut tx, &ids).await?;
            ids.iter()
                .map(|id| {
                    let ts = newest
                        .iter()
                        .find(|(s, _)| s == id)
                        .map_or(DateTime::UNIX_EPOCH, |(_, ts)| *ts);
                    (*id, ts)
                })
                .collect()
        }
    };
    tx.commit().await?;
    let via_protocol = ws_token(&headers, q.token.as_deref()).is_ok_and(|(_, p)| p);
    let ws = if via_protocol {
        ws.protocols(["bearer"])
    } else {
        ws
    };
    let db = state.db.clone();
    let org = auth.org_id();
    Ok(ws.on_upgrade(move |socket| async move {
        if let Err(e) = stream(socket, db, org, cursors).await {
            tracing::debug!(error = %e, "readings stream ended with an error");
        }
    }))
}

/// Sends new readings until the client leaves or the server stops.
async fn stream(
    mut socket: WebSocket,
    db: Db,
    org: Uuid,
    mut cursors: Vec<(Uuid, DateTime<Utc>)>,
) -> Result<(), ApiError> {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut keepalive = Keepalive::default();
    loop {
        tokio::select! {
            _ = poll.tick() => {
                let sent = if db.pool().is_closed() {
                    Err(ApiError::Internal("pool closed".into()))
                } else {
                    send_new(&mut socket, &db, org, &mut cursors).await
                };
                match sent {
                    Ok(()) => {}
                    Err(_) if db.pool().is_closed() => {
                        close(&mut socket, 1001, "server shutting down").await;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
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

/// Sends every sensor's readings after its cursor (in batches), moving the
/// cursors on.
async fn send_new(
    socket: &mut WebSocket,
    db: &Db,
    org: Uuid,
    cursors: &mut [(Uuid, DateTime<Utc>)],
) -> Result<(), ApiError> {
    loop {
        let mut tx = db.tenant(org).await?;
        let rows = readings::after_each(&mut tx, cursors, PER_SENSOR).await?;
        tx.commit().await?;
        let mut full = false;
        for chunk in rows.chunk_by(|a, b| a.sensor_id == b.sensor_id) {
            let Some(last) = chunk.last() else { continue };
            full |= chunk.len() as i64 >= PER_SENSOR;
            if let Some(c) = cursors.iter_mut().find(|(id, _)| *id == last.sensor_id) {
                c.1 = last.ts;
            }
            let frame = Frame {
                sensor_id: last.sensor_id,
                points: chunk
                    .iter()
                    .map(|r: &Reading| (r.ts.timestamp_millis(), r.value))
                    .collect(),
            };
            let text = serde_json::to_string(&frame).map_err(|e| ApiError::Internal(e.to_string()))?;
            send(socket, Message::Text(text.into())).await?;
        }
        if !full {
            return Ok(());
        }
    }
}
