//! `maintainpro bench ingest`: publishes readings through a real broker into
//! a real PostgreSQL and reports committed readings/s and publish→commit
//! latency. Load generator, broker, ingest and database share this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use maintainpro_edge::{MqttTarget, SimConfig};
use maintainpro_models::cluster::{ClusterOptions, LocalCluster};
use maintainpro_models::devices::{self, NewDevice, NewSensor};
use maintainpro_models::equipment::{self, NewEquipment};
use maintainpro_models::{organizations, Db, Tenant};
use sqlx::migrate::MigrateDatabase;
use tokio_util::sync::CancellationToken;

use crate::system::{self, SystemConfig};

#[derive(Debug, Clone)]
pub struct IngestBenchOptions {
    /// Readings to publish in the throughput phase.
    pub readings: u64,
    pub devices: usize,
    pub sensors_per_device: usize,
    /// Samples per MQTT message in the throughput phase.
    pub batch: usize,
    /// Length of the latency phase.
    pub latency_seconds: u64,
    /// Devices sign in through the embedded broker's front door (as in
    /// production); `false` measures the broker alone.
    pub device_auth: bool,
}

impl Default for IngestBenchOptions {
    fn default() -> Self {
        Self {
            readings: 500_000,
            devices: 20,
            sensors_per_device: 10,
            batch: 50,
            latency_seconds: 10,
            device_auth: true,
        }
    }
}

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct IngestBenchReport {
    pub readings: u64,
    pub seconds: f64,
    pub readings_per_sec: f64,
    pub latency_rate: f64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    pub database: String,
}

pub async fn ingest(opts: IngestBenchOptions) -> anyhow::Result<IngestBenchReport> {
    // A database of our own: DATABASE_URL's server, or a throwaway cluster.
    let (url, cluster, database) = match std::env::var("DATABASE_URL") {
        Ok(base) => {
            let url = format!("{}_bench_{}", base.trim_end_matches('/'), std::process::id());
            (url, None, "DATABASE_URL server".to_string())
        }
        Err(_) => {
            let c = LocalCluster::start(ClusterOptions {
                data_dir: std::env::temp_dir().join(format!("mp-bench-{}", uuid::Uuid::new_v4().simple())),
                port: None,
                persistent: false,
            })
            .await?;
            (
                c.url("bench"),
                Some(c),
                "throwaway local cluster (fsync off)".to_string(),
            )
        }
    };
    sqlx::Postgres::create_database(&url)
        .await
        .context("cannot create the bench database")?;
    let mut config = SystemConfig::local_test(url.clone());
    config.with_analytics = false;
    config.mqtt_device_auth = opts.device_auth;
    let running = system::start(config).await?;
    let (sim, secrets) = seed(&running.db, &opts).await?;
    // One connection per device, signed in as that device (through the
    // embedded broker's front door, as real gateways).
    let fleet = |phase: &str, sim: SimConfig, stop: CancellationToken| {
        let mut publishers = Vec::new();
        for part in crate::demo::split_by_device(&sim) {
            let Some(device) = part.devices.first().map(|d| d.name.clone()) else {
                continue;
            };
            let target = MqttTarget {
                host: running.mqtt_host.clone(),
                port: running.mqtt_port,
                client_id: format!("bench-{phase}-{device}"),
                username: Some(format!("{}/{device}", part.org)),
                password: secrets.get(&device).cloned(),
            };
            publishers.push(tokio::spawn(maintainpro_edge::simulate(
                target,
                part,
                stop.clone(),
            )));
        }
        publishers
    };
    let stats = running.ingest_stats.clone();

    // Phase 1: throughput, as fast as the publisher can go.
    let per_device = opts.readings / (opts.devices * opts.sensors_per_device) as u64;
    let total = per_device * (opts.devices * opts.sensors_per_device) as u64;
    let phase1 = SimConfig {
        batch: opts.batch,
        max_samples: Some(per_device),
        time_origin: Some(chrono::Utc::now() - chrono::Duration::days(1)),
        ..sim.clone()
    };
    println!(
        "publishing {total} readings ({} devices × {} sensors, {} samples/message)…",
        opts.devices, opts.sensors_per_device, opts.batch
    );
    let started = Instant::now();
    let before = stats.snapshot().readings;
    let publishers = fleet("throughput", phase1, CancellationToken::new());
    wait_for(&stats, before + total, Duration::from_secs(600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    for p in publishers {
        p.await??;
    }
    let readings_per_sec = total as f64 / seconds;
    println!("throughput: {total} readings committed in {seconds:.2} s = {readings_per_sec:.0} readings/s");

    // Phase 2: latency at about half the measured rate, wall-clock timestamps.
    let rate = (readings_per_sec / 2.0).max(100.0);
    let per_tick = (opts.devices * opts.sensors_per_device) as f64;
    let interval = Duration::from_secs_f64((per_tick / rate).max(0.001));
    let latency_rate = per_tick / interval.as_secs_f64();
    let phase2 = SimConfig {
        batch: 1,
        max_samples: None,
        time_origin: None,
        interval,
        ..sim
    };
    println!(
        "latency phase: {latency_rate:.0} readings/s for {} s…",
        opts.latency_seconds
    );
    stats.reset_latency();
    let stop = CancellationToken::new();
    let publishers = fleet("latency", phase2, stop.clone());
    tokio::time::sleep(Duration::from_secs(opts.latency_seconds)).await;
    stop.cancel();
    for p in publishers {
        let _ = p.await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap = stats.snapshot();
    println!(
        "publish→commit latency: p50 {} ms, p99 {} ms, max {} ms",
        snap.latency_p50_ms, snap.latency_p99_ms, snap.latency_max_ms
    );

    running.stop().await;
    if cluster.is_none() {
        let _ = sqlx::Postgres::drop_database(&url).await;
    }
    if let Some(c) = cluster {
        let _ = c.stop().await;
    }
    Ok(IngestBenchReport {
        readings: total,
        seconds,
        readings_per_sec,
        latency_rate,
        p50_ms: snap.latency_p50_ms,
        p99_ms: snap.latency_p99_ms,
        max_ms: snap.latency_max_ms,
        database,
    })
}

async fn wait_for(
    stats: &Arc<maintainpro_ingest::IngestStats>,
    target: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let s = stats.snapshot();
        if s.readings >= target {
            return Ok(());
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "only {} of {target} readings committed after {limit:?}",
                s.readings
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            println!("  … {} readings committed", s.readings);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Registers the simulated fleet (one machine per device).
async fn seed(
    db: &Db,
    opts: &IngestBenchOptions,
) -> anyhow::Result<(SimConfig, std::collections::HashMap<String, String>)> {
    let org = organizations::create(db, "bench", "Benchmark").await?;
    let tenant = Tenant::system(org.id, "bench");
    let sim = SimConfig::fleet(
        "bench",
        opts.devices,
        opts.sensors_per_device,
        Duration::from_secs(1),
    );
    let mut tx = db.tenant(org.id).await?;
    let mut secrets = std::collections::HashMap::new();
    for d in &sim.devices {
        let eq = equipment::create(
            &mut tx,
            &tenant,
            NewEquipment {
                name: format!("machine {}", d.name),
                asset_tag: d.name.clone(),
                parent_id: None,
                description: String::new(),
                location: String::new(),
                criticality: None,
            },
        )
        .await?;
        let dev = devices::create_device(
            &mut tx,
            &tenant,
            NewDevice {
                name: d.name.clone(),
                description: String::new(),
            },
        )
        .await?;
        secrets.insert(d.name.clone(), dev.secret.clone());
        for s in &d.sensors {
            devices::create_sensor(
                &mut tx,
                &tenant,
                NewSensor {
                    device_id: dev.device.id,
                    equipment_id: eq.id,
                    metric: s.metric.clone(),
                    name: None,
                    unit: s.unit.clone(),
                    min_value: None,
                    max_value: None,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok((sim, secrets))
}
