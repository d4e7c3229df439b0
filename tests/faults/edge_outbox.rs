//! The edge agent's on-disk outbox with the broker down: what it buffered
//! survives `kill -9` and arrives, in order, after a restart; a full outbox
//! drops the oldest readings (and counts them) or pauses the source.
//!
//! Set-up for each: Mosquitto starts, ingest and a recording subscriber open
//! their persistent sessions, then the broker stops gracefully (the sessions
//! are saved) and the agent runs against the dead port. When the broker comes
//! back, the sessions are restored before the agent reconnects, so every
//! delivery is seen.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use maintainpro_models::testkit::{seed_org, test_db, SeededOrg, TestDb};

use crate::support::*;

const WAITING: &str = "waiting for the broker to acknowledge the outbox";
const MAX_BYTES: u64 = 4096;

struct World {
    dir: TempDir,
    broker: Mosquitto,
    db: TestDb,
    org: SeededOrg,
    ingest: Ingest,
    subscriber: Subscriber,
    pool: sqlx::PgPool,
    base: i64,
}

/// Everything up, then the broker down (sessions saved).
async fn world(slug: &str) -> Option<World> {
    // Built (if needed) before anything time-sensitive starts.
    edge_bin();
    let dir = TempDir::new(&format!("mp-faults-{slug}"));
    let mut broker = Mosquitto::new(dir.path(), free_port())?;
    broker.start().await;
    let db = test_db().await;
    let org = seed_org(&db.db, slug, &[METRIC]).await;
    let mut ingest = Ingest::new(dir.path(), &db.url, broker.port);
    ingest.start().await;
    let subscriber = Subscriber::start(broker.port, slug).await;
    broker.stop().await;
    let pool = owner_pool(&db.url).await;
    Some(World {
        dir,
        broker,
        db,
        org,
        ingest,
        subscriber,
        pool,
        base: base_ms(),
    })
}

impl World {
    fn csv(&self, name: &str, seqs: impl IntoIterator<Item = u64>) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        write_csv(&path, self.base, seqs);
        path
    }

    fn outbox(&self) -> std::path::PathBuf {
        self.dir.path().join("outbox")
    }

    fn agent(&self, csv: &Path, log: &str, extra: &[&str]) -> Agent {
        Agent::start(
            csv,
            &self.org.slug,
            self.broker.port,
            &self.outbox(),
            &self.dir.path().join(log),
            extra,
        )
    }

    /// Every reading of `expected` delivered in order and stored exactly once.
    async fn assert_delivered(&mut self, expected: &[u64]) {
        let resends = self
            .subscriber
            .assert_in_order(expected, Duration::from_secs(90))
            .await;
        let set: BTreeSet<u64> = expected.iter().copied().collect();
        assert_stored_exactly(
            &self.pool,
            self.org.tenant.org_id,
            self.base,
            &set,
            Duration::from_secs(90),
        )
        .await;
        self.ingest.assert_running();
        eprintln!(
            "{}: {} readings in order ({resends} MQTT resends)",
            self.org.slug,
            expected.len()
        );
    }

    async fn finish(self) {
        self.pool.close().await;
        drop(self.ingest);
        self.db.cleanup().await;
    }
}

/// Total size of the outbox's segment files.
fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn edge_outbox_survives_kill_9() {
    const FIRST: u64 = 300;
    const TOTAL: u64 = 400;
    let Some(mut w) = world("obkill").await else {
        return;
    };
    // First run: buffers everything (the broker is down), then is killed
    // while waiting for acknowledgements.
    let csv1 = w.csv("first.csv", 1..=FIRST);
    let mut first = w.agent(&csv1, "agent-1.log", &[]);
    let log = first.wait_log(WAITING, Duration::from_secs(60)).await;
    assert!(
        log.contains(&format!("buffered={FIRST}")),
        "expected {FIRST} buffered:\n{log}"
    );
    first.kill9();

    // Second run on the same outbox, broker still down: replays the first
    // run's records ahead of its own.
    let csv2 = w.csv("second.csv", FIRST + 1..=TOTAL);
    let mut second = w.agent(&csv2, "agent-2.log", &[]);
    let log = second.wait_log(WAITING, Duration::from_secs(60)).await;
    assert!(
        log.contains(&format!("buffered={TOTAL}")),
        "expected {TOTAL} buffered:\n{log}"
    );

    w.broker.start().await;
    let log = second.wait_success(Duration::from_secs(90)).await;
    let summary = outbox_summary(&log);
    assert_eq!(
        summary,
        OutboxSummary {
            buffered: 0,
            acknowledged: TOTAL,
            dropped: 0,
            replayed: FIRST
        },
        "{log}"
    );
    let expected: Vec<u64> = (1..=TOTAL).collect();
    w.assert_delivered(&expected).await;
    w.finish().await;
}

#[tokio::test]
async fn edge_outbox_full_drops_oldest() {
    const M: u64 = 200;
    let Some(mut w) = world("obdrop").await else {
        return;
    };
    let csv = w.csv("readings.csv", 1..=M);
    let max = MAX_BYTES.to_string();
    let mut agent = w.agent(
        &csv,
        "agent.log",
        &["--outbox-max-bytes", &max, "--outbox-full", "drop-oldest"],
    );
    let log = agent.wait_log(WAITING, Duration::from_secs(60)).await;
    assert!(
        log.contains("outbox full: dropped the oldest segment"),
        "nothing dropped:\n{log}"
    );
    let on_disk = segment_bytes(&w.outbox());
    assert!(
        on_disk <= MAX_BYTES,
        "outbox holds {on_disk} bytes, bound {MAX_BYTES}"
    );

    w.broker.start().await;
    let log = agent.wait_success(Duration::from_secs(90)).await;
    let summary = outbox_summary(&log);
    assert!(summary.dropped > 0 && summary.dropped < M, "{summary:?}");
    assert_eq!(summary.buffered, 0, "{summary:?}");
    assert_eq!(summary.acknowledged, M - summary.dropped, "{summary:?}");
    // Exactly the oldest ones are gone.
    let expected: Vec<u64> = (summary.dropped + 1..=M).collect();
    w.assert_delivered(&expected).await;
    w.finish().await;
}

#[tokio::test]
async fn edge_outbox_full_blocks_source() {
    const M: u64 = 200;
    let Some(mut w) = world("obblock").await else {
        return;
    };
    let csv = w.csv("readings.csv", 1..=M);
    let max = MAX_BYTES.to_string();
    let mut agent = w.agent(
        &csv,
        "agent.log",
        &["--outbox-max-bytes", &max, "--outbox-full", "block"],
    );
    // The outbox fills up, then the source waits.
    eventually(Duration::from_secs(60), "the outbox to fill", || async {
        (segment_bytes(&w.outbox()) > MAX_BYTES / 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        agent.running(),
        "the agent exited with the broker down:\n{}",
        agent.log_text()
    );
    let log = agent.log_text();
    assert!(
        !log.contains(WAITING),
        "the source was not paused: all {M} readings were taken with a {MAX_BYTES}-byte outbox:\n{log}"
    );
    assert!(
        !log.contains("dropped the oldest"),
        "the block policy dropped readings:\n{log}"
    );
    let on_disk = segment_bytes(&w.outbox());
    assert!(
        on_disk <= MAX_BYTES,
        "outbox holds {on_disk} bytes, bound {MAX_BYTES}"
    );

    w.broker.start().await;
    let log = agent.wait_success(Duration::from_secs(90)).await;
    let summary = outbox_summary(&log);
    assert_eq!(summary.dropped, 0, "{summary:?}");
    assert_eq!(summary.acknowledged, M, "{summary:?}");
    let expected: Vec<u64> = (1..=M).collect();
    w.assert_delivered(&expected).await;
    w.finish().await;
}
