//! The broker stops for a few seconds mid-stream and comes back on the same
//! port. Mosquitto is stopped gracefully (SIGTERM), so its persistence file
//! keeps ingest's session and the QoS 1 messages queued for it; the edge
//! agent's outbox resends everything the broker had not acknowledged. A
//! `kill -9` of the broker itself would lose what it had acknowledged but not
//! yet delivered (its persistence is written on shutdown, not per message):
//! not covered here.

use std::collections::BTreeSet;
use std::time::Duration;

use maintainpro_models::testkit::{seed_org, test_db};

use crate::support::*;

const N: u64 = 1500;
const SPEED: &str = "150";

#[tokio::test]
async fn broker_outage() {
    // Built (if needed) before anything time-sensitive starts.
    edge_bin();
    let dir = TempDir::new("mp-faults-broker");
    let Some(mut broker) = Mosquitto::new(dir.path(), free_port()) else {
        return;
    };
    broker.start().await;
    let db = test_db().await;
    let org = seed_org(&db.db, "outage", &[METRIC]).await;
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
    let pool = owner_pool(&db.url).await;
    // Mid-stream: some readings stored, most still to come.
    eventually(
        Duration::from_secs(60),
        "the first readings to be stored",
        || async {
            let n = stored(&pool, org.tenant.org_id).await.ok()?.len();
            (n >= 200).then_some(())
        },
    )
    .await;
    broker.stop().await;
    let during = stored(&pool, org.tenant.org_id).await.unwrap().len();
    assert!(
        during < N as usize,
        "the stream ended before the outage (all {N} stored); the test would prove nothing"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.start().await;

    let log = agent.wait_success(Duration::from_secs(120)).await;
    assert!(
        log.contains("MQTT connection lost") || log.contains("reconnected to MQTT broker"),
        "the agent did not notice the outage:\n{log}"
    );
    assert_eq!(outbox_summary(&log).dropped, 0);
    let sent: BTreeSet<u64> = (1..=N).collect();
    assert_stored_exactly(&pool, org.tenant.org_id, base, &sent, Duration::from_secs(90)).await;
    ingest.assert_running();
    assert!(
        ingest.logs().contains("mqtt connection error"),
        "ingest did not notice the outage"
    );
    eprintln!("broker_outage: {during} of {N} stored when the broker stopped");
    pool.close().await;
    drop(ingest);
    db.cleanup().await;
}
