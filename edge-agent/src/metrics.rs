//! The edge agent's optional Prometheus page (`--metrics-listen`): outbox depth, drops,
//! acknowledgements and the uplink state, served by a deliberately tiny HTTP/1.1 responder
//! (a gateway binary needs no web framework for one GET).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::outbox::Outbox;

/// Largest request head read before answering 431.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A client that sends nothing useful for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the page shows; shared between the uplink (which fills it) and the server.
pub struct EdgeStatus {
    outbox: OnceLock<Arc<Outbox>>,
    connected: AtomicBool,
    started: Instant,
}

impl Default for EdgeStatus {
    fn default() -> Self {
        Self {
            outbox: OnceLock::new(),
            connected: AtomicBool::new(false),
            started: Instant::now(),
        }
    }
}

impl std::fmt::Debug for EdgeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStatus")
            .field("outbox", &self.outbox.get().map(|o| o.stats()))
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish()
    }
}

/// Identity: two handles are equal when they are the same page.
impl PartialEq for EdgeStatus {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl EdgeStatus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Called once the outbox is open.
    pub(crate) fn attach(&self, outbox: Arc<Outbox>) {
        let _ = self.outbox.set(outbox);
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "maintainpro_edge_connected",
            "gauge",
            "1 while the agent is connected to the MQTT broker.",
            f64::from(u8::from(self.connected.load(Ordering::Relaxed))),
        );
        metric(
            "maintainpro_edge_uptime_seconds",
            "gauge",
            "Seconds since the agent started.",
            self.started.elapsed().as_secs_f64(),
        );
        if let Some(outbox) = self.outbox.get() {
            let s = outbox.stats();
            let rows: [(&str, &str, &str, u64); 7] = [
                (
                    "maintainpro_edge_outbox_buffered_records",
                    "gauge",
                    "Messages stored in the outbox and not yet acknowledged by the broker.",
                    s.buffered_records,
                ),
                (
                    "maintainpro_edge_outbox_buffered_bytes",
                    "gauge",
                    "Size of the outbox segment files on disk.",
                    s.buffered_bytes,
                ),
                (
                    "maintainpro_edge_outbox_dropped_records_total",
                    "counter",
                    "Unacknowledged messages deleted by the drop-oldest policy.",
                    s.dropped_records,
                ),
                (
                    "maintainpro_edge_outbox_appended_records_total",
                    "counter",
                    "Messages appended to the outbox by this run.",
                    s.appended_records,
                ),
                (
                    "maintainpro_edge_outbox_acked_records_total",
                    "counter",
                    "Messages acknowledged by the broker in this run.",
                    s.acked_records,
                ),
                (
                    "maintainpro_edge_outbox_replayed_records",
                    "gauge",
                    "Unacknowledged messages found on disk at start-up (left by an earlier run).",
                    s.replayed_records,
                ),
                (
                    "maintainpro_edge_outbox_truncated_bytes",
                    "gauge",
                    "Torn or corrupt bytes truncated at start-up.",
                    s.truncated_bytes,
                ),
            ];
            for (name, kind, help, value) in rows {
                metric(name, kind, help, value as f64);
            }
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, status: Arc<EdgeStatus>, shutdown: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let status = status.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &status).await {
                debug!(%peer, error = %e, "metrics request failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, status: &EdgeStatus) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() > MAX_REQUEST_HEAD {
            break false;
        }
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut buf)).await {
            Ok(read) => read?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (code, content_type, body) = if !complete {
        ("431 Request Header Fields Too Large", "text/plain", String::new())
    } else if method != b"GET" {
        ("405 Method Not Allowed", "text/plain", "only GET\n".to_string())
    } else if path == b"/metrics" || path.starts_with(b"/metrics?") {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            status.render(),
        )
    } else {
        ("404 Not Found", "text/plain", "see /metrics\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {code}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::outbox::OutboxConfig;

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_outbox_counters_and_refuses_other_requests() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Arc::new(Outbox::open(OutboxConfig::new(dir.path())).unwrap());
        outbox.try_append("mp/v1/o/d/telemetry", b"{}").unwrap();
        outbox.try_append("mp/v1/o/d/telemetry", b"{}").unwrap();
        let status = EdgeStatus::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, status.clone(), stop.clone()));

        let before = get(addr, "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert!(before.starts_with("HTTP/1.1 200"), "{before}");
        assert!(before.contains("maintainpro_edge_connected 0"), "{before}");
        assert!(
            !before.contains("outbox_buffered_records"),
            "no outbox yet: {before}"
        );

        status.attach(outbox);
        status.set_connected(true);
        let after = get(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(after.contains("maintainpro_edge_connected 1"), "{after}");
        assert!(
            after.contains("maintainpro_edge_outbox_buffered_records 2\n"),
            "{after}"
        );
        assert!(
            after.contains("maintainpro_edge_outbox_appended_records_total 2\n"),
            "{after}"
        );

        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 405"));
        stop.cancel();
    }
}
