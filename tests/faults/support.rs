//! Fixtures for the fault tests: real processes (Mosquitto with persistence,
//! `maintainpro ingest`, the `maintainpro-edge` agent), numbered readings in
//! CSV files, a plain MQTT subscriber that records the delivery order, and
//! queries of what was stored.
//!
//! Every child runs under `setpriv --pdeathsig KILL` where available, so it
//! dies with the test process even when that is killed; every fixture kills
//! its process on drop. Waits have generous deadlines and fail with a message
//! (and the relevant log) instead of hanging.

use std::collections::BTreeSet;
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use uuid::Uuid;

/// The metric every numbered reading is published under.
pub const METRIC: &str = "seq";

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MP_FAULTS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("keeping {}", self.0.display());
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn has_pdeathsig() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        Command::new("setpriv")
            .arg("--help")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--pdeathsig"))
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Starts `program` with stdout and stderr into `log` (the parent-death
/// signal is tied to the calling thread: spawn from the test's own thread).
fn spawn(program: &Path, args: &[String], envs: &[(&str, String)], log: &Path) -> Child {
    let out = File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = if has_pdeathsig() {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// A log file's text, ANSI colour codes removed.
pub fn read_log(path: &Path) -> String {
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` every 100 ms until it answers `Some`, or panics after
/// `timeout` naming `what` (plus whatever `context` says then).
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {}s waiting for {what}",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- Mosquitto

/// A Mosquitto of the test's own on a fixed loopback port, with persistence
/// in its directory: a graceful stop (SIGTERM) saves the persistent sessions
/// and their queued QoS 1 messages, and a restart on the same port loads them.
pub struct Mosquitto {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Mosquitto {
    /// A broker for `port` whose files live in `dir`, not started yet; `None`
    /// (after a notice) when the binary is missing outside CI.
    pub fn new(dir: &Path, port: u16) -> Option<Mosquitto> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
            .map(|d| d.join("mosquitto"))
            .find(|p| p.is_file());
        let Some(bin) = bin else {
            assert!(
                !in_ci(),
                "the `mosquitto` binary is missing: run scripts/install-deps (Debian package `mosquitto`); \
                 under CI=true the fault tests must run"
            );
            eprintln!(
                "NOTICE: `mosquitto` not found; skipping a fault test (scripts/install-deps installs it)"
            );
            return None;
        };
        let dir = dir.join("mosquitto");
        std::fs::create_dir_all(&dir).unwrap();
        let mut conf = format!(
            "listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             persistence true\n\
             persistence_location {}/\n\
             max_inflight_messages 100\n\
             max_queued_messages 1000000\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n",
            dir.display()
        );
        // As root Mosquitto would switch to the `mosquitto` user, which
        // clears the parent-death signal (and cannot write our directory).
        if is_root() {
            conf.push_str("user root\n");
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        Some(Mosquitto {
            port,
            bin,
            dir,
            child: None,
            starts: 0,
        })
    }

    /// Starts (or restarts) the broker and waits until it listens.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        self.starts += 1;
        let log = self.dir.join(format!("mosquitto-{}.log", self.starts));
        let args = vec![
            "-c".to_string(),
            self.dir.join("mosquitto.conf").display().to_string(),
        ];
        let mut child = spawn(&self.bin, &args, &[], &log);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mosquitto exited ({status}) at start:\n{}", read_log(&log));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "mosquitto did not listen on {addr} within 20 s:\n{}",
                    read_log(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
    }

    /// Graceful stop: SIGTERM (Mosquitto writes its persistence file) and wait.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot send SIGTERM to mosquitto");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mosquitto did not stop within 20 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- ingest

/// `maintainpro ingest` as a process of its own, restartable with the same
/// MQTT client id (so its persistent session resumes).
pub struct Ingest {
    database_url: String,
    mqtt_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Ingest {
    pub fn new(dir: &Path, database_url: &str, mqtt_port: u16) -> Ingest {
        let dir = dir.join("ingest");
        std::fs::create_dir_all(&dir).unwrap();
        Ingest {
            database_url: database_url.to_string(),
            mqtt_port,
            dir,
            child: None,
            starts: 0,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("ingest-{}.log", self.starts))
    }

    /// Starts the process and waits until it is connected and subscribed
    /// (its session exists on the broker from then on).
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "ingest is already running");
        self.starts += 1;
        let log = self.log();
        let envs = [
            ("DATABASE_URL", self.database_url.clone()),
            ("MP_MQTT_PORT", self.mqtt_port.to_string()),
            ("MP_MQTT_CLIENT_ID", "faults-ingest".to_string()),
            ("MP_DATA_DIR", self.dir.display().to_string()),
            ("MP_JWT_SECRET", "x".repeat(48)),
            ("RUST_LOG", "info,rumqttc=warn,sqlx=warn".to_string()),
        ];
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_maintainpro"));
        let mut child = spawn(&bin, &["ingest".to_string()], &envs, &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "ingest exited ({status}) at start:\n{}",
                    tail(&read_log(&log), 40)
                );
            }
            if read_log(&log).contains("connected to broker") {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "ingest did not connect within 60 s:\n{}",
                    tail(&read_log(&log), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The SUBSCRIBE follows the CONNACK; give it a moment to land.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.child = Some(child);
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }

    /// Every log of this fixture so far, for assertions and failure messages.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| read_log(&self.dir.join(format!("ingest-{n}.log"))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ingest exited ({status}):\n{}", tail(&read_log(&self.log()), 40));
            }
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------- edge agent

/// The `maintainpro-edge` binary. It belongs to another package of the
/// workspace, so Cargo gives this test no `CARGO_BIN_EXE_` for it: build it
/// once (like `escargot`) into the target directory this test runs from, or
/// take `MP_EDGE_BIN`.
pub fn edge_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("MP_EDGE_BIN") {
            return PathBuf::from(bin);
        }
        // <target>/<profile>/deps/faults-…
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap().to_path_buf();
        let profile = profile_dir.file_name().unwrap().to_string_lossy().into_owned();
        let profile = if profile == "debug" {
            "dev".to_string()
        } else {
            profile
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(&cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "-p",
                "maintainpro-edge",
                "--bin",
                "maintainpro-edge",
                "--profile",
            ])
            .arg(&profile)
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
        assert!(
            out.status.success(),
            "building maintainpro-edge failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("maintainpro-edge");
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

/// One run of `maintainpro-edge replay` through an on-disk outbox.
pub struct Agent {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Agent {
    /// Replays `csv` for organization `org` to `127.0.0.1:port` through the
    /// outbox in `outbox`; `extra` are more flags.
    pub fn start(csv: &Path, org: &str, port: u16, outbox: &Path, log: &Path, extra: &[&str]) -> Agent {
        let mut args: Vec<String> = vec![
            "replay".into(),
            csv.display().to_string(),
            "--broker".into(),
            format!("mqtt://127.0.0.1:{port}"),
            "--org".into(),
            org.into(),
            "--client-id".into(),
            format!("faults-edge-{org}"),
            "--outbox".into(),
            outbox.display().to_string(),
            "--drain-timeout".into(),
            "120s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let envs = [("RUST_LOG", "info".to_string())];
        let child = spawn(&edge_bin(), &args, &envs, log);
        Agent {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits for the agent to exit; its status and log.
    pub async fn wait(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("the agent was started");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, read_log(&self.log));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the edge agent did not finish within {}s:\n{}",
                    timeout.as_secs(),
                    tail(&read_log(&self.log), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the agent to succeed; its log.
    pub async fn wait_success(&mut self, timeout: Duration) -> String {
        let (status, log) = self.wait(timeout).await;
        assert!(
            status.success(),
            "the edge agent failed ({status}):\n{}",
            tail(&log, 40)
        );
        log
    }

    /// Waits until the log contains `needle` (panics if the agent exits first).
    pub async fn wait_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_text();
            if log.contains(needle) {
                return log;
            }
            assert!(
                self.running(),
                "the edge agent exited before logging `{needle}`:\n{}",
                tail(&log, 40)
            );
            assert!(
                Instant::now() < deadline,
                "the edge agent did not log `{needle}` within {}s:\n{}",
                timeout.as_secs(),
                tail(&log, 40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The numbers in the agent's closing summary line
/// `outbox: B buffered (…), A acknowledged, D dropped, R replayed from an earlier run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSummary {
    pub buffered: u64,
    pub acknowledged: u64,
    pub dropped: u64,
    pub replayed: u64,
}

pub fn outbox_summary(log: &str) -> OutboxSummary {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with("outbox: "))
        .unwrap_or_else(|| panic!("no outbox summary in the agent's output:\n{}", tail(log, 40)));
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = line
            .split([' ', ',', '(', ')'])
            .filter(|w| !w.is_empty())
            .collect();
        let i = words
            .iter()
            .position(|w| *w == word)
            .unwrap_or_else(|| panic!("no `{word}` in `{line}`"));
        words[i - 1]
            .parse()
            .unwrap_or_else(|_| panic!("no count before `{word}` in `{line}`"))
    };
    OutboxSummary {
        buffered: number_before("buffered"),
        acknowledged: number_before("acknowledged"),
        dropped: number_before("dropped"),
        replayed: number_before("replayed"),
    }
}

// ---------------------------------------------------------------- readings

/// Epoch ms of reading `seq`: one second apart, in the past.
pub fn ts_ms(base_ms: i64, seq: u64) -> i64 {
    base_ms + seq as i64 * 1000
}

/// A base time two hours ago (whole seconds).
pub fn base_ms() -> i64 {
    (chrono::Utc::now().timestamp() - 7200) * 1000
}

/// Writes `ts,device,metric,value` rows for `seqs` of device `gw-01`
/// (value = sequence number).
pub fn write_csv(path: &Path, base_ms: i64, seqs: impl IntoIterator<Item = u64>) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    writeln!(f, "ts,device,metric,value").unwrap();
    for seq in seqs {
        writeln!(f, "{},gw-01,{METRIC},{seq}", ts_ms(base_ms, seq)).unwrap();
    }
    f.flush().unwrap();
}

/// The stored readings of `org` as (sequence number, ts in ms), oldest first.
pub async fn stored(pool: &sqlx::PgPool, org: Uuid) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT value::bigint, (extract(epoch FROM ts) * 1000)::bigint FROM readings
          WHERE organization_id = $1 ORDER BY ts",
    )
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Waits until `expected.len()` readings are stored, then checks that the
/// stored set is exactly `expected` with no duplicates and each reading at
/// its own timestamp.
pub async fn assert_stored_exactly(
    pool: &sqlx::PgPool,
    org: Uuid,
    base_ms: i64,
    expected: &BTreeSet<u64>,
    timeout: Duration,
) {
    let want = expected.len();
    let deadline = Instant::now() + timeout;
    let rows = loop {
        let rows = stored(pool, org).await;
        if let Ok(rows) = &rows {
            if rows.len() >= want {
                // Anything still in flight would show up now.
                tokio::time::sleep(Duration::from_millis(500)).await;
                break stored(pool, org).await.unwrap();
            }
        }
        if Instant::now() > deadline {
            let have = rows
                .map(|r| r.len().to_string())
                .unwrap_or_else(|e| e.to_string());
            let got: BTreeSet<u64> = stored(pool, org)
                .await
                .map(|r| r.into_iter().map(|(v, _)| v as u64).collect())
                .unwrap_or_default();
            let missing: Vec<_> = expected.difference(&got).take(20).collect();
            panic!(
                "timed out after {}s: {have} of {want} readings stored; first missing: {missing:?}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let values: Vec<u64> = rows.iter().map(|(v, _)| *v as u64).collect();
    let distinct: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(values.len(), distinct.len(), "duplicate readings stored");
    let missing: Vec<_> = expected.difference(&distinct).take(20).collect();
    let extra: Vec<_> = distinct.difference(expected).take(20).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "stored set != sent set: missing {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(values.len(), want, "count(*) of stored readings");
    for (v, ts) in &rows {
        assert_eq!(
            *ts,
            ts_ms(base_ms, *v as u64),
            "reading {v} stored at the wrong time"
        );
    }
}

/// The owner pool of a test database (sees every organization).
pub async fn owner_pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap()
}

// ---------------------------------------------------------------- subscriber

/// A plain MQTT subscriber (QoS 1, persistent session, reconnecting) that
/// records the sequence numbers in the order the broker delivers them.
pub struct Subscriber {
    pub seen: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Connects and waits for the SUBACK of `mp/v1/{org}/+/telemetry`.
    pub async fn start(port: u16, org: &str) -> Subscriber {
        let mut opts = MqttOptions::new(format!("faults-sub-{org}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(10))
            .set_clean_session(false)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        client
            .subscribe(format!("mp/v1/{org}/+/telemetry"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                        let seq = v["metrics"][METRIC]
                            .as_f64()
                            .unwrap_or_else(|| panic!("no `{METRIC}` in {v}"));
                        record.lock().unwrap().push(seq as u64);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(20), subscribed)
            .await
            .expect("no SUBACK within 20 s")
            .unwrap();
        Subscriber { seen, task }
    }

    pub fn seen(&self) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until every one of `expected` was delivered, then checks that
    /// they arrived in order: each reading's first delivery came after the
    /// first delivery of every smaller one (resends of already delivered
    /// readings are what at-least-once allows). Returns how many deliveries
    /// were such resends.
    pub async fn assert_in_order(&self, expected: &[u64], timeout: Duration) -> usize {
        let want: BTreeSet<u64> = expected.iter().copied().collect();
        let seen = eventually(timeout, "the subscriber to see every reading", || async {
            let seen = self.seen();
            let got: BTreeSet<u64> = seen.iter().copied().collect();
            want.is_subset(&got).then_some(seen)
        })
        .await;
        let mut first = Vec::new();
        let mut delivered = BTreeSet::new();
        for s in &seen {
            if delivered.insert(*s) {
                first.push(*s);
            }
        }
        assert_eq!(
            first, expected,
            "delivery order (first deliveries) != publish order"
        );
        seen.len() - first.len()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The stage the ingest and broker fault tests share: a persistent
/// Mosquitto, a database with one sensor, `n` numbered readings in a CSV,
/// ingest running, and the edge agent replaying them at `speed` rows/s
/// through its outbox. `None` when Mosquitto is missing (skipped outside CI).
pub struct Stage {
    pub dir: TempDir,
    pub broker: Mosquitto,
    pub db: maintainpro_models::testkit::TestDb,
    pub org: maintainpro_models::testkit::SeededOrg,
    pub base: i64,
    pub ingest: Ingest,
    pub agent: Agent,
}

impl Stage {
    pub async fn start(name: &str, slug: &str, n: u64, speed: &str) -> Option<Stage> {
        // Built (if needed) before anything time-sensitive starts.
        edge_bin();
        let dir = TempDir::new(name);
        let mut broker = Mosquitto::new(dir.path(), free_port())?;
        broker.start().await;
        let db = maintainpro_models::testkit::test_db().await;
        let org = maintainpro_models::testkit::seed_org(&db.db, slug, &[METRIC]).await;
        let base = base_ms();
        let csv = dir.path().join("readings.csv");
        write_csv(&csv, base, 1..=n);
        let mut ingest = Ingest::new(dir.path(), &db.url, broker.port);
        ingest.start().await;
        let agent = Agent::start(
            &csv,
            &org.slug,
            broker.port,
            &dir.path().join("outbox"),
            &dir.path().join("agent.log"),
            &["--speed", speed],
        );
        Some(Stage {
            dir,
            broker,
            db,
            org,
            base,
            ingest,
            agent,
        })
    }
}
