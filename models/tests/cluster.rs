//! Integration tests for the self-managed local PostgreSQL cluster (needs PostgreSQL server
//! binaries installed; runs as root or as a normal user).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use maintainpro_models::cluster::{find_bindir, ClusterError, ClusterOptions, LocalCluster};
use rand::distributions::Alphanumeric;
use rand::Rng;

fn scratch_dir(tag: &str) -> PathBuf {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    std::env::temp_dir().join(format!("mp-cluster-{tag}-{suffix}"))
}

fn psql_select_1(cluster: &LocalCluster, database: &str) -> String {
    let psql = find_bindir().expect("bindir").join("psql");
    let out = Command::new(psql)
        .args(["-h", "127.0.0.1", "-p", &cluster.port().to_string()])
        .args(["-U", cluster.user(), "-d", database, "-XtAc", "SELECT 1"])
        .env("PGPASSWORD", cluster.password())
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Processes whose command line mentions `data_dir` (pgrep never matches itself).
fn processes_using(data_dir: &Path) -> String {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(data_dir)
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn assert_gone_soon(data_dir: &Path, dir_should_exist: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let procs = processes_using(data_dir);
        if procs.is_empty() && data_dir.exists() == dir_should_exist {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {procs:?}; data dir exists: {}",
            data_dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn throwaway_cluster_serves_databases_and_cleans_up() {
    let data_dir = scratch_dir("tmp");
    let cluster = LocalCluster::start(ClusterOptions {
        data_dir: data_dir.clone(),
        port: None,
        persistent: false,
    })
    .await
    .expect("start cluster");
    assert_ne!(cluster.port(), 5432);
    assert!(cluster.url("app_test").starts_with(&format!(
        "postgres://maintainpro:{}@127.0.0.1:{}/",
        cluster.password(),
        cluster.port()
    )));

    cluster.create_database("app_test").await.expect("createdb");
    cluster.create_database("app_test_2").await.expect("createdb 2");
    assert!(matches!(
        cluster.create_database("app_test").await,
        Err(ClusterError::DatabaseExists(_))
    ));
    assert_eq!(psql_select_1(&cluster, "app_test"), "1");
    assert_eq!(psql_select_1(&cluster, "app_test_2"), "1");
    assert!(!processes_using(&data_dir).is_empty());

    cluster.stop().await.expect("stop");
    assert!(!data_dir.exists(), "throwaway data dir must be removed");
    assert_eq!(processes_using(&data_dir), "", "no postgres may survive stop()");
}

#[tokio::test]
async fn persistent_cluster_restarts_with_same_password_and_data() {
    let data_dir = scratch_dir("persist");
    let opts = ClusterOptions {
        data_dir: data_dir.clone(),
        port: None,
        persistent: true,
    };
    let first = LocalCluster::start(opts.clone()).await.expect("first start");
    let password = first.password().to_owned();
    assert_eq!(password.len(), 32);
    first.create_database("kept").await.expect("createdb");
    first.stop().await.expect("first stop");
    assert!(data_dir.join("PG_VERSION").exists());
    assert_eq!(processes_using(&data_dir), "");

    // Leave a stale postmaster.pid behind as a crashed run would.
    std::fs::write(data_dir.join("postmaster.pid"), "999999999\n").expect("fake pid file");

    let second = LocalCluster::start(opts.clone()).await.expect("second start");
    assert_eq!(second.password(), password);
    assert_eq!(psql_select_1(&second, "kept"), "1");
    second.ensure_database("kept").await.expect("ensure existing");

    // A second owner of the same data dir is refused while the first runs.
    let err = LocalCluster::start(opts).await.expect_err("data dir in use");
    assert!(matches!(err, ClusterError::DataDirInUse { .. }), "{err}");

    second.stop().await.expect("second stop");
    assert!(data_dir.join("PG_VERSION").exists());
    assert_eq!(processes_using(&data_dir), "");
    std::fs::remove_dir_all(&data_dir).expect("cleanup");
}

#[tokio::test]
async fn dropping_the_cluster_shuts_it_down() {
    let data_dir = scratch_dir("drop");
    let cluster = LocalCluster::start(ClusterOptions {
        data_dir: data_dir.clone(),
        port: None,
        persistent: false,
    })
    .await
    .expect("start cluster");
    assert_eq!(psql_select_1(&cluster, "postgres"), "1");
    drop(cluster);
    assert_gone_soon(&data_dir, false);
}

#[test]
fn cluster_outlives_the_runtime_that_started_it() {
    // The test harness keeps one cluster per process and uses it from many runtimes.
    let data_dir = scratch_dir("rt");
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = first
        .block_on(LocalCluster::start(ClusterOptions {
            data_dir: data_dir.clone(),
            port: None,
            persistent: false,
        }))
        .expect("start cluster");
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    second.block_on(async {
        cluster.create_database("later").await.expect("createdb");
        assert_eq!(psql_select_1(&cluster, "later"), "1");
        cluster.stop().await.expect("stop");
    });
    assert!(!data_dir.exists());
    assert_eq!(processes_using(&data_dir), "");
}

#[tokio::test]
async fn taken_fixed_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let err = LocalCluster::start(ClusterOptions {
        data_dir: scratch_dir("port"),
        port: Some(port),
        persistent: false,
    })
    .await
    .expect_err("port is taken");
    assert!(
        matches!(err, ClusterError::PortInUse { port: p, .. } if p == port),
        "{err}"
    );
}
