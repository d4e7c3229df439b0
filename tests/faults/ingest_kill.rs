//! `kill -9` of ingest every few seconds while the edge agent publishes:
//! ingest restarts with the same client id, its persistent session on the
//! broker resumes, and what it had not acknowledged (acks follow commits) is
//! redelivered; duplicates are skipped by the database.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;

const N: u64 = 2400;
/// Rows per second of replay (one reading a second of file time).
const SPEED: &str = "200";

#[tokio::test]
async fn ingest_survives_kill_9() {
    let Some(Stage {
        dir: _dir,
        broker: _broker,
        db,
        org,
        base,
        mut ingest,
        mut agent,
    }) = Stage::start("mp-faults-kill", "kill9", N, SPEED).await
    else {
        return;
    };

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
