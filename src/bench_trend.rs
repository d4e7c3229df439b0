//! `maintainpro bench trend`: trend-query latency over a large readings
//! table while ingest writes. Seeds (once; reused and resumed on later runs)
//! `--readings` readings of `--sensors` sensors spread over `--days` days
//! (1 Hz for the default 40 sensors × 30 days ≈ 104 M), rolls them up, then
//! asks for the whole window as ≤ `--max-points` buckets of a random sensor
//! `--queries` times while a writer commits live readings through the
//! ingest COPY path and the rollup loop runs, and prints p50 / p99 / max.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use maintainpro_ingest::writer::{self, Row};
use maintainpro_models::cluster::{ClusterOptions, LocalCluster};
use maintainpro_models::db::DbConfig;
use maintainpro_models::devices::{self, NewDevice, NewSensor};
use maintainpro_models::equipment::{self, NewEquipment};
use maintainpro_models::readings::{self, Resolution, TrendQuery};
use maintainpro_models::{organizations, rollups, Db, Tenant};
use rand::Rng;
use sqlx::migrate::MigrateDatabase;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ORG_SLUG: &str = "bench-trend";

#[derive(Debug, Clone)]
pub struct TrendBenchOptions {
    /// Readings to store (at least; an existing larger seed is reused).
    pub readings: u64,
    pub sensors: usize,
    /// The stored series and the queried window span this many days.
    pub days: i64,
    /// Trend queries to time.
    pub queries: usize,
    pub max_points: i64,
    /// Live readings per second committed while the queries run (0: none).
    pub ingest_rate: u64,
}

impl Default for TrendBenchOptions {
    fn default() -> Self {
        Self {
            readings: 40 * 30 * 86_400,
            sensors: 40,
            days: 30,
            queries: 500,
            max_points: 1000,
            ingest_rate: 2000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrendBenchReport {
    pub stored: i64,
    pub queries: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub resolution: Resolution,
    pub buckets: usize,
    pub rows_scanned: i64,
    pub ingested: u64,
    pub database: String,
}

/// The seeded fleet: organization, sensors, the end of the seeded series
/// and the spacing of its readings.
struct Seed {
    org: Uuid,
    sensors: Vec<Uuid>,
    end: DateTime<Utc>,
    every_s: i64,
}

pub async fn trend(opts: TrendBenchOptions) -> anyhow::Result<TrendBenchReport> {
    anyhow::ensure!(
        opts.sensors > 0 && opts.days > 0 && opts.queries > 0,
        "sensors, days and queries must be positive"
    );
    // DATABASE_URL is used as given (so a seed is reused); otherwise a throwaway cluster.
    let (url, cluster, database) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None, "DATABASE_URL".to_string()),
        Err(_) => {
            let c = LocalCluster::start(ClusterOptions {
                data_dir: std::env::temp_dir().join(format!("mp-bench-trend-{}", Uuid::new_v4().simple())),
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
    if !sqlx::Postgres::database_exists(&url).await.unwrap_or(false) {
        sqlx::Postgres::create_database(&url)
            .await
            .context("cannot create the bench database")?;
    }
    Db::migrate(&url).await?;
    let db = Db::connect(&DbConfig {
        max_connections: 8,
        ..DbConfig::new(url.clone())
    })
    .await?;
    let seed = seed(&db, &url, &opts).await?;
    let report = measure(&db, &seed, &opts, database).await;
    db.close().await;
    if let Some(c) = cluster {
        let _ = c.stop().await;
    }
    report
}

/// Creates or finds the fleet, stores what is missing, rolls up, analyzes.
async fn seed(db: &Db, url: &str, opts: &TrendBenchOptions) -> anyhow::Result<Seed> {
    let span_s = opts.days * 86_400;
    let per_sensor = (opts.readings / opts.sensors as u64).max(1) as i64;
    let every_s = (span_s / per_sensor).max(1);
    let (org, sensors, end, every_s) = match organizations::id_by_slug(db, ORG_SLUG).await? {
        Some(org) => {
            let mut tx = db.tenant(org).await?;
            let sensors: Vec<Uuid> = devices::list_sensors(&mut tx, None, None)
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect();
            let eq = equipment::find_by_tag(&mut tx, "BENCH-1").await?;
            tx.commit().await?;
            // The plan of the first run is kept in the asset's description.
            let plan = eq.map(|e| e.description).unwrap_or_default();
            let (end, every): (Option<DateTime<Utc>>, Option<i64>) = {
                let mut it = plan.split_whitespace();
                (
                    it.next().and_then(|s| s.parse().ok()),
                    it.next().and_then(|s| s.parse().ok()),
                )
            };
            let (Some(end), Some(every)) = (end, every) else {
                anyhow::bail!(
                    "organization '{ORG_SLUG}' exists but holds no benchmark plan; use another database"
                );
            };
            println!(
                "reusing the '{ORG_SLUG}' fleet: {} sensors, series ending {end}, one reading per {every} s",
                sensors.len()
            );
            (org, sensors, end, every)
        }
        None => {
            let end = DateTime::<Utc>::from_timestamp(Utc::now().timestamp().div_euclid(86_400) * 86_400, 0)
                .unwrap_or_else(Utc::now);
            let org = organizations::create(db, ORG_SLUG, "Trend benchmark").await?;
            let tenant = Tenant::system(org.id, "bench");
            let mut tx = db.tenant(org.id).await?;
            let eq = equipment::create(
                &mut tx,
                &tenant,
                NewEquipment {
                    name: "benchmark machine".into(),
                    asset_tag: "BENCH-1".into(),
                    parent_id: None,
                    description: format!("{} {every_s}", end.to_rfc3339()),
                    location: String::new(),
                    criticality: None,
                },
            )
            .await?;
            let dev = devices::create_device(
                &mut tx,
                &tenant,
                NewDevice {
                    name: "bench-gw".into(),
                    description: String::new(),
                },
            )
            .await?;
            let mut sensors = Vec::new();
            for i in 0..opts.sensors {
                let s = devices::create_sensor(
                    &mut tx,
                    &tenant,
                    NewSensor {
                        device_id: dev.device.id,
                        equipment_id: eq.id,
                        metric: format!("m{i:03}"),
                        name: None,
                        unit: String::new(),
                        min_value: None,
                        max_value: None,
                    },
                )
                .await?;
                sensors.push(s.id);
            }
            tx.commit().await?;
            println!(
                "seeding {} sensors × {} days, one reading per {every_s} s, ending {end}",
                opts.sensors, opts.days
            );
            (org.id, sensors, end, every_s)
        }
    };

    // Store in time order (all sensors per chunk), resuming after what is there.
    let start = end - chrono::Duration::seconds(span_s);
    let mut tx = db.tenant(org).await?;
    let newest = newest_before(&mut tx, &sensors, end).await?;
    tx.commit().await?;
    let chunk = chrono::Duration::seconds((6 * 3600 / every_s).max(1) * every_s);
    // Resume at the start of the last chunk stored (conflicts are skipped).
    let mut at = match newest {
        Some(n) if n > start => {
            let whole = (n - start).num_seconds() / chunk.num_seconds();
            start + chrono::Duration::seconds(whole * chunk.num_seconds())
        }
        _ => start,
    };
    let total = (end - at).num_seconds().max(0);
    let started = Instant::now();
    let mut stored_now: u64 = 0;
    while at < end {
        let until = (at + chunk).min(end);
        let mut tx = db.tenant(org).await?;
        let r = sqlx::query(
            "INSERT INTO readings (organization_id, sensor_id, ts, value)
             SELECT $1, s.id, t, 50 + 10 * sin(extract(epoch FROM t) / 3600.0 + s.k) + random()
             FROM generate_series($3::timestamptz, $4::timestamptz - make_interval(secs => 0.001),
                                  make_interval(secs => $5)) t,
                  unnest($2::uuid[]) WITH ORDINALITY s (id, k)
             ON CONFLICT (sensor_id, ts) DO NOTHING",
        )
        .bind(org)
        .bind(&sensors)
        .bind(at)
        .bind(until)
        .bind(every_s as f64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        stored_now += r.rows_affected();
        let done = total - (end - until).num_seconds();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  seeded up to {until}: +{stored_now} readings, {:.0}/s, {:.1} %",
            stored_now as f64 / secs.max(0.001),
            100.0 * done as f64 / total.max(1) as f64
        );
        at = until;
    }
    // Also what earlier runs' live phases left pending.
    {
        println!("rolling up…");
        let started = Instant::now();
        loop {
            let done = rollups::roll_up_all(db, chrono::Duration::hours(12)).await?;
            let minutes: u64 = done.iter().map(|(_, r)| r.minutes).sum();
            if done.is_empty() {
                break;
            }
            println!(
                "  {minutes} minute rows in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Planner statistics and the visibility map (index-only scans of the
    // rollups), as autovacuum would leave them; as the owner (the runtime
    // role owns nothing).
    let owner = sqlx::PgPool::connect(url).await?;
    for table in ["readings_1m", "readings_1h", "readings"] {
        // On TimescaleDB the rollups are views: nothing to vacuum there.
        if let Err(e) = sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(&owner)
            .await
        {
            println!("  (VACUUM {table}: {e})");
        }
    }
    owner.close().await;
    Ok(Seed {
        org,
        sensors,
        end,
        every_s,
    })
}

/// The newest reading before `before` of any of `sensors` (one index probe each).
async fn newest_before(
    tx: &mut maintainpro_models::Tx,
    sensors: &[Uuid],
    before: DateTime<Utc>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT max(l.ts) FROM unnest($1::uuid[]) s (id)
         CROSS JOIN LATERAL (SELECT ts FROM readings r WHERE r.sensor_id = s.id AND r.ts < $2
                             ORDER BY r.ts DESC LIMIT 1) l",
    )
    .bind(sensors)
    .bind(before)
    .fetch_one(&mut **tx)
    .await?)
}

async fn measure(
    db: &Db,
    seed: &Seed,
    opts: &TrendBenchOptions,
    database: String,
) -> anyhow::Result<TrendBenchReport> {
    let mut tx = db.tenant(seed.org).await?;
    // The planner's row count (fresh after VACUUM ANALYZE): count(*) over
    // 100 M rows would take longer than the benchmark.
    let estimate: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'readings'::regclass")
        .fetch_one(&mut *tx)
        .await?;
    let stored = if estimate > 0.0 {
        estimate as i64
    } else {
        readings::count(&mut tx).await?
    };
    let far = seed.end + chrono::Duration::days(3650);
    let newest = newest_before(&mut tx, &seed.sensors, far)
        .await?
        .unwrap_or(seed.end);
    tx.commit().await?;
    println!(
        "≈ {stored} readings stored ({} sensors, one per {} s); querying {} × {} days as ≤ {} points with {} live readings/s",
        seed.sensors.len(),
        seed.every_s,
        opts.queries,
        opts.days,
        opts.max_points,
        opts.ingest_rate
    );

    // The live head continues after the newest stored reading, in real time.
    let head0 = newest.max(seed.end) + chrono::Duration::seconds(1);
    let phase = Instant::now();
    let stop = CancellationToken::new();
    let rollup = tokio::spawn(maintainpro_ingest::rollup::run(
        db.clone(),
        maintainpro_ingest::rollup::ROLLUP_INTERVAL,
        stop.clone(),
    ));
    // The live fleet: the queried sensors plus unregistered ids up to
    // `ingest_rate` sensors, each at 1 Hz (a tenth of them every 100 ms).
    let mut live = seed.sensors.clone();
    while (live.len() as u64) < opts.ingest_rate {
        live.push(Uuid::new_v4());
    }
    let loader = {
        let (db, stop, org, rate) = (db.clone(), stop.clone(), seed.org, opts.ingest_rate);
        tokio::spawn(async move {
            let mut written: u64 = 0;
            if rate == 0 {
                return Ok::<u64, anyhow::Error>(0);
            }
            let tick = Duration::from_millis(100);
            let mut next = Instant::now();
            let mut n: usize = 0;
            while !stop.is_cancelled() {
                let slot = n % 10;
                let second = (n / 10) as i64;
                let ts = head0
                    + chrono::Duration::seconds(second)
                    + chrono::Duration::milliseconds(slot as i64 * 100);
                let rows: Vec<Row> = live
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 10 == slot)
                    .map(|(i, id)| Row {
                        organization_id: org,
                        sensor_id: *id,
                        ts,
                        value: 50.0 + ((i + n) % 17) as f64,
                    })
                    .collect();
                written += writer::commit(&db, &rows, &[]).await?;
                n += 1;
                next += tick;
                tokio::time::sleep_until(next.into()).await;
            }
            Ok(written)
        })
    };

    let mut rng = rand::thread_rng();
    let mut times = Vec::with_capacity(opts.queries);
    let mut last = None;
    let mut scanned: i64 = 0;
    for i in 0..opts.queries {
        let sensor = seed.sensors[rng.gen_range(0..seed.sensors.len())];
        let to = head0 + chrono::Duration::from_std(phase.elapsed()).unwrap_or_default();
        let q = TrendQuery {
            from: Some(to - chrono::Duration::days(opts.days)),
            to: Some(to),
            max_points: Some(opts.max_points),
            lttb: false,
        };
        let started = Instant::now();
        let mut tx = db.tenant(seed.org).await?;
        let series = readings::trend(&mut tx, sensor, &q).await?;
        tx.commit().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        scanned += series.rows_scanned;
        if i == 0 {
            println!(
                "  first query: {} buckets of {} s from {}, {} rows scanned, {:.1} ms",
                series.buckets.len(),
                series.bucket_seconds,
                series.resolution.as_str(),
                series.rows_scanned,
                times[0]
            );
        }
        last = Some(series);
    }
    stop.cancel();
    let ingested = loader.await??;
    let _ = rollup.await;
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let last = last.context("no query ran")?;
    Ok(TrendBenchReport {
        stored,
        queries: times.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: times[times.len() - 1],
        resolution: last.resolution,
        buckets: last.buckets.len(),
        rows_scanned: scanned / times.len() as i64,
        ingested,
        database,
    })
}
