//! The broker stops for a few seconds mid-stream and comes back on the same
//! port. Mosquitto is stopped gracefully (SIGTERM), so its persistence file
//! keeps ingest's session and the QoS 1 messages queued for it; the edge
//! agent's outbox resends everything the broker had not acknowledged. A
//! `kill -9` of the broker itself would lose what it had acknowledged but not
//! yet delivered (its persistence is written on shutdown, not per message):
//! not covered here.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;

const N: u64 = 1500;
const SPEED: &str = "150";

#[tokio::test]
async fn broker_outage() {
    let Some(Stage {
        dir: _dir,
        mut broker,
        db,
        org,
        base,
        mut ingest,
        mut agent,
    }) = Stage::start("mp-faults-broker", "outage", N, SPEED).await
    else {
        return;
    };
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
