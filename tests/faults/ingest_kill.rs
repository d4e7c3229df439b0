//! `kill -9` of ingest every few seconds while the edge agent publishes:
//! ingest restarts with the same client id, its persistent session on the
//! broker resumes, and what it had not acknowledged (acks follow commits) is
//! redelivered; duplicates are skipped by the database.

use std::collections::BTreeSet;
use std::time::Duration;

use maintainpro_models::testkit::{seed_org, test_db};

use crate::support::*;

const N: u64 = 2400;
/// Rows per second of replay (one reading a second of file time).
const SPEED: &str = "200";

#[tokio::test]
async fn ingest_survives_kill_9() {
    // Built (if needed) before anything time-sensitive starts.
    edge_bin();
    let dir = TempDir::new("mp-faults-kill");
    let Some(mut broker) = Mosquitto::new(dir.path(), free_port()) else {
        return;
    };
    broker.start().await;
    let db = test_db().await;
    let org = seed_org(&db.db, "kill9", &[METRIC]).await;
    let base = base_ms();
    let csv = dir.path().join("readings.csv");
    write_csv(&csv, base, 1..=N);

    let mut ingest = Ingest::new(dir.path(), &db.url, broker.port);
    ingest.start().await;
    let mut agent = Agent::start(
        &csv,
        &org.slug,
        broker.port,
        &dir.path().join("outbox"),
        &dir.path().join("agent.log"),
        &["--speed", SPEED],
    );

    let mut kills = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if !agent.running() {
            break;
        }
        ingest.kill9();
        kills += 1;
        ingest.start().await;
    }
    let log = agent.wait_success(Duration::from_secs(120)).await;
    let summary = outbox_summary(&log);
    assert_eq!(summary.dropped, 0, "{summary:?}");
    assert!(
        kills >= 2,
        "ingest was killed only {kills} times while the agent published"
    );

    let pool = owner_pool(&db.url).await;
    let sent: BTreeSet<u64> = (1..=N).collect();
    assert_stored_exactly(&pool, org.tenant.org_id, base, &sent, Duration::from_secs(90)).await;
    ingest.assert_running();
    eprintln!("ingest_survives_kill_9: {N} readings, ingest killed {kills} times");
    pool.close().await;
    drop(ingest);
    db.cleanup().await;
}
