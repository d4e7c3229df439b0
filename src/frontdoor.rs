//! The MQTT front door of the embedded broker: device authentication and
//! per-device topic rules in front of rumqttd, which has neither.
//!
//! rumqttd listens on an internal loopback port that only the system's own
//! services (ingest) use. Devices connect here. The front door reads the
//! CONNECT, checks username `{orgSlug}/{deviceName}` and password (the device
//! secret issued by the API) against the database and answers the CONNACK
//! itself when they are wrong. Once a device is in, bytes flow both ways, and
//! every client→broker PUBLISH is checked: its topic must belong to the
//! device (`mp/v1/{org}/{device}/…`, or Sparkplug B
//! `spBv1.0/{org}/N*/{device}` and `spBv1.0/{org}/D*/{device}/{sub-device}`).
//! A violating PUBLISH is not forwarded: it is dead-lettered (reason
//! [`TOPIC_NOT_ALLOWED`], attributed to the publisher's organization) and
//! acknowledged, so a store-and-forward agent does not replay it forever; the
//! connection stays up. SUBSCRIBE filters must stay within the device's own
//! namespace (its topics, its Sparkplug commands, `spBv1.0/STATE/…`), so a
//! device cannot read another's telemetry. The broker sees client ids
//! prefixed with the username, so devices cannot take over each other's (or
//! ingest's) sessions.
//!
//! Open connections are re-checked every [`FrontDoorConfig::recheck_interval`]:
//! a device whose secret was rotated or which was revoked is disconnected.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use maintainpro_ingest::IngestStats;
use maintainpro_models::dead_letters::{self, NewDeadLetter};
use maintainpro_models::{devices, Db};
use rumqttc::mqttbytes::v4::{Connect, Packet};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The dead-letter reason of a PUBLISH outside the device's own topics.
pub const TOPIC_NOT_ALLOWED: &str = "topic_not_allowed";

/// MQTT 3.1.1 CONNACK return codes.
const CONNACK_BAD_PROTOCOL: u8 = 1;
const CONNACK_BAD_CLIENT_ID: u8 = 2;
const CONNACK_UNAVAILABLE: u8 = 3;
const CONNACK_BAD_LOGIN: u8 = 4;
const CONNACK_NOT_AUTHORIZED: u8 = 5;

#[derive(Debug, Clone)]
pub struct FrontDoorConfig {
    /// The broker's internal address.
    pub upstream: SocketAddr,
    /// Largest packet accepted from a device (remaining length).
    pub max_packet_size: usize,
    /// Time a new connection has to send its CONNECT.
    pub connect_timeout: Duration,
    /// How long a verified (username, secret) pair skips the argon2 check.
    pub cache_ttl: Duration,
    /// How often open connections are checked for rotation or revocation.
    pub recheck_interval: Duration,
    /// Wait before answering a failed login (slows password guessing).
    pub failure_delay: Duration,
}

impl FrontDoorConfig {
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            max_packet_size: 4 * 1024 * 1024 + 64 * 1024,
            connect_timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(60),
            recheck_interval: Duration::from_secs(2),
            failure_delay: Duration::from_millis(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("malformed MQTT packet: {0}")]
    Malformed(&'static str),
    #[error("packet of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

struct CachedLogin {
    secret_hash: String,
    digest: [u8; 32],
    at: Instant,
}

struct LiveConn {
    device_id: Uuid,
    secret_hash: String,
    kick: CancellationToken,
}

struct Shared {
    db: Db,
    config: FrontDoorConfig,
    cache: Mutex<HashMap<String, CachedLogin>>,
    live: Mutex<HashMap<u64, LiveConn>>,
    next_id: AtomicU64,
    dead: mpsc::Sender<NewDeadLetter>,
}

/// Who is connected, and the topics that are theirs.
#[derive(Debug, Clone)]
pub struct Identity {
    pub username: String,
    pub org_id: Uuid,
    pub device_id: Uuid,
    device: String,
    /// `mp/v1/{org}/{device}/`
    mp_prefix: String,
    /// `spBv1.0/{org}/`
    sp_group: String,
    /// `spBv1.0/{org}/NCMD/{device}`
    ncmd: String,
    /// `spBv1.0/{org}/DCMD/{device}/`
    dcmd_prefix: String,
}

impl Identity {
    pub fn new(org: &str, device: &str, org_id: Uuid, device_id: Uuid) -> Self {
        Self {
            username: format!("{org}/{device}"),
            org_id,
            device_id,
            device: device.to_string(),
            mp_prefix: format!("mp/v1/{org}/{device}/"),
            sp_group: format!("spBv1.0/{org}/"),
            ncmd: format!("spBv1.0/{org}/NCMD/{device}"),
            dcmd_prefix: format!("spBv1.0/{org}/DCMD/{device}/"),
        }
    }

    /// Whether the device may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        if let Some(rest) = topic.strip_prefix(self.mp_prefix.as_str()) {
            return !rest.is_empty();
        }
        let Some(rest) = topic.strip_prefix(self.sp_group.as_str()) else {
            return false;
        };
        let mut parts = rest.split('/');
        let (kind, node, sub, extra) = (parts.next(), parts.next(), parts.next(), parts.next());
        if node != Some(self.device.as_str()) || extra.is_some() {
            return false;
        }
        match kind {
            Some("NBIRTH" | "NDATA" | "NDEATH") => sub.is_none(),
            Some("DBIRTH" | "DDATA" | "DDEATH") => sub.is_some_and(|s| !s.is_empty()),
            _ => false,
        }
    }

    /// Whether the device may subscribe to `filter`: only filters that
    /// match nothing outside its own namespace.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        filter.starts_with(self.mp_prefix.as_str())
            || filter == self.ncmd
            || filter.starts_with(self.dcmd_prefix.as_str())
            || filter.starts_with("spBv1.0/STATE/")
    }
}

/// Serves device connections on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    config: FrontDoorConfig,
    db: Db,
    stats: Arc<IngestStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (dead_tx, dead_rx) = mpsc::channel(10_000);
    let shared = Arc::new(Shared {
        db: db.clone(),
        config,
        cache: Mutex::new(HashMap::new()),
        live: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        dead: dead_tx,
    });
    let writer = tokio::spawn(dead_letter_writer(db, stats, dead_rx));
    let rechecker = tokio::spawn(recheck(shared.clone(), shutdown.clone()));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (shared, shutdown) = (shared.clone(), shutdown.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, peer, &shared, shutdown).await {
                        tracing::debug!(%peer, error = %e, "MQTT connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "MQTT front door: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    rechecker.abort();
    drop(shared);
    let _ = writer.await;
    Ok(())
}

/// Closes connections whose device was revoked or got a new secret.
async fn recheck(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.recheck_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ids: Vec<Uuid> = {
            let live = lock(&shared.live);
            let set: HashSet<Uuid> = live.values().map(|c| c.device_id).collect();
            set.into_iter().collect()
        };
        if ids.is_empty() {
            continue;
        }
        let current = match devices::current_secrets(&shared.db, &ids).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "MQTT front door: cannot re-check device credentials");
                continue;
            }
        };
        let valid: HashMap<Uuid, String> = current
            .into_iter()
            .filter(|(_, active, _)| *active)
            .filter_map(|(id, _, hash)| Some((id, hash?)))
            .collect();
        for conn in lock(&shared.live).values() {
            if valid.get(&conn.device_id) != Some(&conn.secret_hash) && !conn.kick.is_cancelled() {
                tracing::info!(device_id = %conn.device_id, "device credentials revoked or rotated; disconnecting");
                conn.kick.cancel();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stores rejected publishes in batches.
/// Stores refused publishes in batches. While the database is away it
/// retries (with backoff, up to 5 s) instead of dropping them; the bounded
/// channel then fills and the offending connections wait, like ingest's
/// writer. Counted in ingest's dead-letter metric by reason.
async fn dead_letter_writer(db: Db, stats: Arc<IngestStats>, mut rx: mpsc::Receiver<NewDeadLetter>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = dead_letters::insert_many(&db, &batch).await {
            if matches!(
                e,
                maintainpro_models::ModelError::Database(sqlx::Error::PoolClosed)
            ) {
                tracing::error!(error = %e, count = batch.len(), "shutting down with unstored dead letters");
                return;
            }
            tracing::warn!(error = %e, count = batch.len(), retry_in_ms = backoff.as_millis() as u64, "cannot store dead letters; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        stats.dead_lettered(
            TOPIC_NOT_ALLOWED,
            batch.iter().filter(|l| l.reason == TOPIC_NOT_ALLOWED).count() as u64,
        );
        batch.clear();
    }
}

/// Length of the fixed header and of the whole first packet in `buf`, once
/// the fixed header is complete.
fn frame(buf: &[u8]) -> Result<Option<(usize, usize)>, ConnError> {
    let mut len = 0usize;
    for i in 1..5 {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        len |= usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Ok(Some((i + 1, i + 1 + len)));
        }
    }
    Err(ConnError::Malformed("remaining length"))
}

fn read_u16(buf: &[u8], at: usize) -> Result<u16, ConnError> {
    match (buf.get(at), buf.get(at + 1)) {
        (Some(&hi), Some(&lo)) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(ConnError::Malformed("truncated")),
    }
}

/// A v3.1.1 CONNACK.
fn connack(code: u8) -> [u8; 4] {
    [0x20, 0x02, 0x00, code]
}

async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    shutdown: CancellationToken,
) -> Result<(), ConnError> {
    let config = &shared.config;
    // The CONNECT, and whatever the client pipelined after it.
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let (hl, total) = loop {
        if let Some((hl, total)) = frame(&buf)? {
            if total - hl > config.max_packet_size {
                return Err(ConnError::TooLarge(total));
            }
            if buf.len() >= total {
                break (hl, total);
            }
        }
        let n = tokio::time::timeout(config.connect_timeout, client.read_buf(&mut buf))
            .await
            .map_err(|_| ConnError::Malformed("no CONNECT in time"))??;
        if n == 0 {
            return Ok(());
        }
    };
    if buf[0] != 0x10 {
        return Err(ConnError::Malformed("first packet is not CONNECT"));
    }
    // Variable header: protocol name (u16 length + bytes), then level.
    let name_len = usize::from(read_u16(&buf, hl)?);
    let level = *buf
        .get(hl + 2 + name_len)
        .ok_or(ConnError::Malformed("truncated CONNECT"))?;
    match level {
        4 => {}
        5 => {
            tracing::warn!(%peer, "MQTT 5 CONNECT refused: the embedded broker speaks MQTT 3.1.1 (use protocol v4)");
            // MQTT 5 CONNACK: flags, reason 0x84 (unsupported protocol version), no properties.
            client.write_all(&[0x20, 0x03, 0x00, 0x84, 0x00]).await?;
            return Ok(());
        }
        other => {
            tracing::warn!(%peer, level = other, "CONNECT refused: unsupported MQTT protocol level");
            client.write_all(&connack(CONNACK_BAD_PROTOCOL)).await?;
            return Ok(());
        }
    }
    let mut first = BytesMut::from(&buf[..total]);
    buf.advance(total);
    let mut connect = match rumqttc::mqttbytes::v4::read(&mut first, usize::MAX) {
        Ok(Packet::Connect(c)) => c,
        _ => return Err(ConnError::Malformed("CONNECT")),
    };
    let (identity, secret_hash) = match authenticate(shared, &connect, peer).await {
        Ok(verified) => verified,
        Err(code) => {
            tokio::time::sleep(config.failure_delay).await;
            client.write_all(&connack(code)).await?;
            return Ok(());
        }
    };
    if let Some(will) = &connect.last_will {
        if !identity.may_publish(&will.topic) {
            tracing::warn!(%peer, user = %identity.username, topic = %will.topic, "CONNECT refused: will topic not the device's");
            client.write_all(&connack(CONNACK_NOT_AUTHORIZED)).await?;
            return Ok(());
        }
    }
    if connect.client_id.is_empty() && !connect.clean_session {
        client.write_all(&connack(CONNACK_BAD_CLIENT_ID)).await?;
        return Ok(());
    }
    let broker = match TcpStream::connect(config.upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, upstream = %config.upstream, "MQTT front door cannot reach the broker");
            client.write_all(&connack(CONNACK_UNAVAILABLE)).await?;
            return Ok(());
        }
    };
    let _ = broker.set_nodelay(true);
    // The broker sees `{org}:{device}:{client id}` and no password (rumqttd
    // refuses `/` in client ids).
    let client_id = if connect.client_id.is_empty() {
        Uuid::new_v4().simple().to_string()
    } else {
        std::mem::take(&mut connect.client_id)
    };
    connect.client_id = format!("{}:{client_id}", identity.username.replace('/', ":"));
    connect.login = None;
    let mut hello = BytesMut::new();
    connect
        .write(&mut hello)
        .map_err(|_| ConnError::Malformed("CONNECT re-encoding"))?;

    let conn_id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let kick = shutdown.child_token();
    lock(&shared.live).insert(
        conn_id,
        LiveConn {
            device_id: identity.device_id,
            secret_hash,
            kick: kick.clone(),
        },
    );
    let result = async {
        let (client_rd, client_wr) = client.into_split();
        let (broker_rd, mut broker_wr) = broker.into_split();
        broker_wr.write_all(&hello).await?;
        let (replies_tx, replies_rx) = mpsc::channel::<Bytes>(256);
        tracing::debug!(%peer, user = %identity.username, "device connected");
        tokio::select! {
            r = client_to_broker(client_rd, broker_wr, buf, &identity, replies_tx, shared) => r,
            r = broker_to_client(broker_rd, client_wr, replies_rx) => r,
            _ = kick.cancelled() => Ok(()),
        }
    }
    .await;
    lock(&shared.live).remove(&conn_id);
    result
}

/// Checks the CONNECT's login: the identity and the secret hash it was
/// verified against, or the CONNACK return code.
async fn authenticate(
    shared: &Shared,
    connect: &Connect,
    peer: SocketAddr,
) -> Result<(Identity, String), u8> {
    let Some(login) = &connect.login else {
        tracing::warn!(%peer, client_id = %connect.client_id, "MQTT CONNECT without credentials refused");
        return Err(CONNACK_NOT_AUTHORIZED);
    };
    let Some((org, device)) = login.username.split_once('/') else {
        tracing::warn!(%peer, user = %login.username, "MQTT login refused: username is not {{org}}/{{device}}");
        return Err(CONNACK_BAD_LOGIN);
    };
    let row = match devices::login_info(&shared.db, org, device).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            tracing::warn!(%peer, user = %login.username, "MQTT login refused: no such device");
            return Err(CONNACK_BAD_LOGIN);
        }
        Err(e) => {
            tracing::error!(error = %e, "MQTT front door cannot check a login");
            return Err(CONNACK_UNAVAILABLE);
        }
    };
    let Some(hash) = row.secret_hash.filter(|_| row.active) else {
        tracing::warn!(%peer, user = %login.username, "MQTT login refused: device revoked or inactive");
        return Err(CONNACK_NOT_AUTHORIZED);
    };
    let digest: [u8; 32] = Sha256::digest(login.password.as_bytes()).into();
    let cached = lock(&shared.cache).get(&login.username).is_some_and(|c| {
        c.secret_hash == hash && c.digest == digest && c.at.elapsed() < shared.config.cache_ttl
    });
    if !cached {
        let (password, to_check) = (login.password.clone(), hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            maintainpro_models::auth::verify_password(&password, &to_check)
        })
        .await
        .unwrap_or(false);
        if !ok {
            tracing::warn!(%peer, user = %login.username, "MQTT login refused: wrong secret");
            return Err(CONNACK_BAD_LOGIN);
        }
        let mut cache = lock(&shared.cache);
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(
            login.username.clone(),
            CachedLogin {
                secret_hash: hash.clone(),
                digest,
                at: Instant::now(),
            },
        );
    }
    Ok((
        Identity::new(org, device, row.organization_id, row.device_id),
        hash,
    ))
}

/// Client → broker: forwards whole packets, dropping (and answering) the
/// ones the device may not send.
async fn client_to_broker(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut buf: BytesMut,
    identity: &Identity,
    replies: mpsc::Sender<Bytes>,
    shared: &Shared,
) -> Result<(), ConnError> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut rejected_qos2: HashSet<u16> = HashSet::new();
    let mut warned = false;
    loop {
        while let Some((hl, total)) = frame(&buf)? {
            if total - hl > shared.config.max_packet_size {
                return Err(ConnError::TooLarge(total));
            }
            if buf.len() < total {
                buf.reserve(total - buf.len());
                break;
            }
            let packet = &buf[..total];
            match packet[0] >> 4 {
                // PUBLISH
                3 => {
                    let topic_len = usize::from(read_u16(packet, hl)?);
                    let topic_end = hl + 2 + topic_len;
                    let topic = packet
                        .get(hl + 2..topic_end)
                        .ok_or(ConnError::Malformed("PUBLISH topic"))?;
                    let allowed = std::str::from_utf8(topic).is_ok_and(|t| identity.may_publish(t));
                    if allowed {
                        out.extend_from_slice(packet);
                    } else {
                        let qos = (packet[0] >> 1) & 0x03;
                        let payload_at = if qos > 0 { topic_end + 2 } else { topic_end };
                        let topic = String::from_utf8_lossy(topic).into_owned();
                        if !warned {
                            tracing::warn!(user = %identity.username, %topic, "device published outside its topics; dead-lettered");
                            warned = true;
                        }
                        let letter = NewDeadLetter {
                            organization_id: Some(identity.org_id),
                            detail: format!("device {} may not publish to {topic}", identity.username),
                            topic,
                            payload: packet.get(payload_at..).unwrap_or_default().to_vec(),
                            reason: TOPIC_NOT_ALLOWED.into(),
                        };
                        if shared.dead.try_send(letter).is_err() {
                            tracing::warn!("dead-letter queue full; a rejected publish was dropped");
                        }
                        if qos > 0 {
                            let pid = read_u16(packet, topic_end)?.to_be_bytes();
                            // PUBACK for QoS 1, PUBREC for QoS 2 (its PUBREL is answered below).
                            let kind = if qos == 1 { 0x40 } else { 0x50 };
                            if qos == 2 {
                                rejected_qos2.insert(u16::from_be_bytes(pid));
                            }
                            send_reply(&replies, &[kind, 0x02, pid[0], pid[1]]).await?;
                        }
                    }
                }
                // PUBREL of a QoS 2 publish we dropped
                6 if !rejected_qos2.is_empty() => {
                    let pid = read_u16(packet, hl)?;
                    if rejected_qos2.remove(&pid) {
                        let b = pid.to_be_bytes();
                        send_reply(&replies, &[0x70, 0x02, b[0], b[1]]).await?;
                    } else {
                        out.extend_from_slice(packet);
                    }
                }
                // SUBSCRIBE: every filter must stay in the device's namespace.
                8 => {
                    let pid = read_u16(packet, hl)?;
                    let mut at = hl + 2;
                    let mut filters = 0usize;
                    let mut allowed = true;
                    while at < total {
                        let len = usize::from(read_u16(packet, at)?);
                        let filter = packet
                            .get(at + 2..at + 2 + len)
                            .ok_or(ConnError::Malformed("SUBSCRIBE filter"))?;
                        let ok = std::str::from_utf8(filter).is_ok_and(|f| identity.may_subscribe(f));
                        if !ok {
                            tracing::warn!(user = %identity.username, filter = %String::from_utf8_lossy(filter), "subscription outside the device's topics refused");
                        }
                        allowed &= ok;
                        filters += 1;
                        at += 2 + len + 1;
                    }
                    if allowed {
                        out.extend_from_slice(packet);
                    } else {
                        let mut ack = BytesMut::with_capacity(4 + filters);
                        ack.put_u8(0x90);
                        let len = 2 + filters;
                        if len > 127 {
                            return Err(ConnError::Malformed("too many filters"));
                        }
                        ack.put_u8(len as u8);
                        ack.put_u16(pid);
                        ack.put_bytes(0x80, filters);
                        send_reply(&replies, &ack).await?;
                    }
                }
                // A second CONNECT is a protocol violation.
                1 => return Err(ConnError::Malformed("second CONNECT")),
                _ => out.extend_from_slice(packet),
            }
            buf.advance(total);
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(32 * 1024);
        }
        if rd.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

async fn send_reply(replies: &mpsc::Sender<Bytes>, packet: &[u8]) -> Result<(), ConnError> {
    replies
        .send(Bytes::copy_from_slice(packet))
        .await
        .map_err(|_| ConnError::Io(std::io::ErrorKind::BrokenPipe.into()))
}

/// Broker → client: bytes unchanged, written at packet boundaries so the
/// front door's own answers can go in between.
async fn broker_to_client(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut replies: mpsc::Receiver<Bytes>,
) -> Result<(), ConnError> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut replies_open = true;
    loop {
        tokio::select! {
            n = rd.read_buf(&mut buf) => {
                if n? == 0 {
                    return Ok(());
                }
                let mut cut = 0;
                while let Some((_, total)) = frame(&buf[cut..])? {
                    if buf.len() - cut < total {
                        break;
                    }
                    cut += total;
                }
                if cut > 0 {
                    wr.write_all(&buf[..cut]).await?;
                    buf.advance(cut);
                }
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(32 * 1024);
                }
            }
            reply = replies.recv(), if replies_open => match reply {
                Some(packet) => wr.write_all(&packet).await?,
                None => replies_open = false,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity::new("acme", "gw-1", Uuid::nil(), Uuid::nil())
    }

    #[test]
    fn publish_rules() {
        let i = id();
        for ok in [
            "mp/v1/acme/gw-1/telemetry",
            "spBv1.0/acme/NDATA/gw-1",
            "spBv1.0/acme/NBIRTH/gw-1",
            "spBv1.0/acme/DDATA/gw-1/pump",
            "spBv1.0/acme/DDEATH/gw-1/pump",
        ] {
            assert!(i.may_publish(ok), "{ok}");
        }
        for bad in [
            "mp/v1/acme/gw-2/telemetry",
            "mp/v1/other/gw-1/telemetry",
            "mp/v1/acme/gw-1",
            "mp/v1/acme/gw-1x/telemetry",
            "spBv1.0/acme/NDATA/gw-2",
            "spBv1.0/other/NDATA/gw-1",
            "spBv1.0/acme/NDATA/gw-1/x",
            "spBv1.0/acme/DDATA/gw-1",
            "spBv1.0/acme/DDATA/gw-1/",
            "spBv1.0/acme/DDATA/gw-1/a/b",
            "spBv1.0/acme/NCMD/gw-1",
            "spBv1.0/STATE/host",
            "",
        ] {
            assert!(!i.may_publish(bad), "{bad}");
        }
    }

    #[test]
    fn subscribe_rules() {
        let i = id();
        for ok in [
            "mp/v1/acme/gw-1/#",
            "spBv1.0/acme/NCMD/gw-1",
            "spBv1.0/acme/DCMD/gw-1/+",
            "spBv1.0/STATE/+",
        ] {
            assert!(i.may_subscribe(ok), "{ok}");
        }
        for bad in [
            "#",
            "mp/v1/+/+/telemetry",
            "mp/v1/acme/+/telemetry",
            "$share/g/mp/v1/acme/gw-1/#",
            "spBv1.0/acme/#",
            "spBv1.0/acme/NCMD/gw-1/#",
        ] {
            assert!(!i.may_subscribe(bad), "{bad}");
        }
    }

    #[test]
    fn framing() {
        assert!(frame(&[0x30]).unwrap().is_none());
        assert_eq!(frame(&[0x30, 0x00]).unwrap(), Some((2, 2)));
        assert_eq!(frame(&[0x30, 0x80, 0x01]).unwrap(), Some((3, 131)));
        assert!(frame(&[0x30, 0x80, 0x80]).unwrap().is_none());
        assert!(frame(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }
}
