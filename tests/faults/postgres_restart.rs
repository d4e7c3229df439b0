//! PostgreSQL restarts (fast shutdown: clients are cut off with 57P01
//! `admin_shutdown`, then connections are refused) mid-stream. Ingest keeps
//! the batch, stops acknowledging, retries with back-off and reconnects; the
//! broker holds what it has not acknowledged. The test owns the cluster (a
//! persistent one in a temp dir, so a stop keeps the data). The outage
//! outlasts the pool's 10 s acquire timeout, so the writer's own retry loop
//! (not just sqlx's connect retries inside one acquire) has to carry it.

use std::collections::BTreeSet;
use std::time::Duration;

use maintainpro_models::cluster::{ClusterOptions, LocalCluster};
use maintainpro_models::db::DbConfig;
use maintainpro_models::testkit::seed_org;
use maintainpro_models::Db;

use crate::support::*;

const N: u64 = 1500;
const SPEED: &str = "150";
const DATABASE: &str = "faults";
/// Longer than the pool's acquire timeout (10 s).
const OUTAGE: Duration = Duration::from_secs(12);

async fn start_cluster(dir: &std::path::Path, port: Option<u16>) -> LocalCluster {
    LocalCluster::start(ClusterOptions {
        data_dir: dir.to_path_buf(),
        port,
        persistent: true,
    })
    .await
    .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL: {e}"))
}

#[tokio::test]
async fn postgres_restart() {
    edge_bin();
    let dir = TempDir::new("mp-faults-pg");
    let Some(mut broker) = Mosquitto::new(dir.path(), free_port()) else {
        return;
    };
    broker.start().await;
    let pg_dir = dir.path().join("postgres");
    let cluster = start_cluster(&pg_dir, None).await;
    let port = cluster.port();
    cluster.create_database(DATABASE).await.unwrap();
    let url = cluster.url(DATABASE);
    Db::migrate(&url).await.unwrap();
    let db = Db::connect(&DbConfig::new(url.clone())).await.unwrap();
    let org = seed_org(&db, "pgrestart", &[METRIC]).await;
    db.close().await;
    let base = base_ms();
    let csv = dir.path().join("readings.csv");
    write_csv(&csv, base, 1..=N);

    let mut ingest = Ingest::new(dir.path(), &url, broker.port);
    ingest.start().await;
    let mut agent = Agent::start(
        &csv,
        &org.slug,
        broker.port,
        &dir.path().join("outbox"),
        &dir.path().join("agent.log"),
        &["--speed", SPEED],
    );
    let pool = owner_pool(&url).await;
    eventually(
        Duration::from_secs(60),
        "the first readings to be stored",
        || async {
            let n = stored(&pool, org.tenant.org_id).await.ok()?.len();
            (n >= 200).then_some(())
        },
    )
    .await;
    let old_pid = cluster.postmaster_pid();
    // Fast shutdown: SIGINT to the postmaster; sessions get 57P01.
    cluster.stop().await.unwrap();
    tokio::time::sleep(OUTAGE).await;
    let cluster = start_cluster(&pg_dir, Some(port)).await;
    assert_ne!(cluster.postmaster_pid(), old_pid, "PostgreSQL did not restart");

    agent.wait_success(Duration::from_secs(120)).await;
    let sent: BTreeSet<u64> = (1..=N).collect();
    assert_stored_exactly(&pool, org.tenant.org_id, base, &sent, Duration::from_secs(90)).await;
    ingest.assert_running();
    let logs = ingest.logs();
    let retried = logs
        .lines()
        .filter(|l| l.contains("batch commit failed; retrying"))
        .count();
    assert!(
        retried > 0,
        "ingest never had to retry a commit; the outage was not exercised:\n{logs}"
    );
    eprintln!("postgres_restart: ingest retried {retried} commits");
    pool.close().await;
    drop(ingest);
    cluster.stop().await.unwrap();
}
