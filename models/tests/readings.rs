//! Trend storage on plain PostgreSQL: the rollup task against raw data
//! (including late data into an old minute), the resolution a trend query
//! picks, and buckets that are the same whether read from raw readings or
//! from the rollups.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use maintainpro_models::readings::{self, Resolution, TrendQuery};
use maintainpro_models::rollups::{self, RollupRound};
use maintainpro_models::testkit::{seed_org, test_db, SeededOrg};
use maintainpro_models::Db;
use uuid::Uuid;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
}

/// Readings every `every_s` seconds in [from, from + secs) with integer
/// values (sums stay exact): value = (seconds since base) mod 97 + sensor offset.
async fn insert(
    db: &Db,
    org: &SeededOrg,
    sensor: Uuid,
    from: DateTime<Utc>,
    secs: i64,
    every_s: i64,
    offset: f64,
) {
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query(
        "INSERT INTO readings (organization_id, sensor_id, ts, value)
         SELECT $1, $2, $3 + make_interval(secs => s), (s % 97) + $5
         FROM generate_series(0, $4 - 1, $6) s
         ON CONFLICT (sensor_id, ts) DO NOTHING",
    )
    .bind(org.tenant.org_id)
    .bind(sensor)
    .bind(from)
    .bind(secs)
    .bind(offset)
    .bind(every_s)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

type Agg = (Uuid, DateTime<Utc>, f64, f64, f64, i64);

/// What the rollup table holds, and what raw data says it should hold.
async fn rollup_vs_raw(db: &Db, org: Uuid, table: &str, step: &str) -> (Vec<Agg>, Vec<Agg>) {
    let mut tx = db.tenant(org).await.unwrap();
    let stored: Vec<Agg> = sqlx::query_as(&format!(
        "SELECT sensor_id, bucket, min, max, sum, count FROM {table} ORDER BY 1, 2"
    ))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let expected: Vec<Agg> = sqlx::query_as(&format!(
        "SELECT sensor_id, date_bin(INTERVAL '{step}', ts, TIMESTAMPTZ '2000-01-01Z') b,
                min(value), max(value), sum(value), count(*)
         FROM readings GROUP BY 1, 2 ORDER BY 1, 2"
    ))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (stored, expected)
}

async fn pending_rows(db: &Db, org: Uuid) -> i64 {
    let mut tx = db.tenant(org).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM readings_rollup_pending")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn the_rollup_task_matches_raw_data_including_late_data() {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let org = seed_org(&db, "roll", &["temp", "vib"]).await;
    let other = seed_org(&db, "roll-other", &["temp"]).await;
    let (a, b) = (org.sensors[0].id, org.sensors[1].id);
    assert!(rollups::kept_by_service(&db).await.unwrap());

    // Three hours of one sensor every 10 s, a ragged 50 minutes of another.
    insert(&db, &org, a, base(), 3 * 3600, 10, 0.0).await;
    insert(&db, &org, b, base() + Duration::seconds(95), 50 * 60, 7, 1000.0).await;
    insert(&db, &other, other.sensors[0].id, base(), 600, 1, 5.0).await;
    assert!(
        pending_rows(&db, org.tenant.org_id).await >= 2,
        "each INSERT noted its minutes"
    );

    let done = rollups::roll_up_all(&db, Duration::days(1)).await.unwrap();
    assert_eq!(done.len(), 2, "both organizations rolled up: {done:?}");
    assert_eq!(pending_rows(&db, org.tenant.org_id).await, 0);
    for (table, step) in [("readings_1m", "1 minute"), ("readings_1h", "1 hour")] {
        let (stored, expected) = rollup_vs_raw(&db, org.tenant.org_id, table, step).await;
        assert!(!stored.is_empty());
        assert_eq!(stored, expected, "{table} equals raw aggregates");
        // The other organization's rows are not visible here.
        assert!(stored.iter().all(|r| r.0 == a || r.0 == b));
    }

    // Late data (an edge outbox replayed hours later) into an old minute:
    // a new extreme and more readings in 10:05, and a new minute in a new hour.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    for (ts, v) in [
        (base() + Duration::seconds(5 * 60 + 3), 5000.0),
        (base() + Duration::seconds(5 * 60 + 4), -5000.0),
        (base() + Duration::hours(5), 7.0),
    ] {
        sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, $4)")
            .bind(org.tenant.org_id)
            .bind(a)
            .bind(ts)
            .bind(v)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let round = rollups::roll_up(&db, org.tenant.org_id, Duration::days(1))
        .await
        .unwrap();
    assert_eq!(round.claimed, 3);
    // The touched minutes of every sensor of the organization: 10:05 of
    // both sensors and 15:00 of the first.
    assert_eq!(round.minutes, 3);
    for (table, step) in [("readings_1m", "1 minute"), ("readings_1h", "1 hour")] {
        let (stored, expected) = rollup_vs_raw(&db, org.tenant.org_id, table, step).await;
        assert_eq!(stored, expected, "{table} after late data");
    }
    let (stored, _) = rollup_vs_raw(&db, org.tenant.org_id, "readings_1m", "1 minute").await;
    let late = stored
        .iter()
        .find(|r| r.0 == a && r.1 == base() + Duration::minutes(5))
        .unwrap();
    assert_eq!((late.2, late.3, late.5), (-5000.0, 5000.0, 8));

    // Idempotent: nothing pending, nothing changes.
    let again = rollups::roll_up(&db, org.tenant.org_id, Duration::days(1))
        .await
        .unwrap();
    assert_eq!(again, RollupRound::default());
    tdb.cleanup().await;
}

#[tokio::test]
async fn a_small_budget_leaves_the_rest_pending_and_parallel_workers_agree() {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let org = seed_org(&db, "budget", &["temp"]).await;
    let s = org.sensors[0].id;
    insert(&db, &org, s, base(), 4 * 3600, 15, 0.0).await;
    let round = rollups::roll_up(&db, org.tenant.org_id, Duration::minutes(90))
        .await
        .unwrap();
    assert!(round.deferred && round.more(), "{round:?}");
    assert_eq!(
        pending_rows(&db, org.tenant.org_id).await,
        1,
        "the rest went back as one row"
    );

    // Several workers at once (as with several ingest instances).
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { rollups::roll_up_all(&db, Duration::minutes(30)).await.unwrap() })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    rollups::roll_up_all(&db, Duration::days(1)).await.unwrap();
    assert_eq!(pending_rows(&db, org.tenant.org_id).await, 0);
    for (table, step) in [("readings_1m", "1 minute"), ("readings_1h", "1 hour")] {
        let (stored, expected) = rollup_vs_raw(&db, org.tenant.org_id, table, step).await;
        assert_eq!(stored.len(), if table == "readings_1m" { 240 } else { 4 });
        assert_eq!(stored, expected, "{table}");
    }
    tdb.cleanup().await;
}

fn q(from: DateTime<Utc>, to: DateTime<Utc>, max_points: i64) -> TrendQuery {
    TrendQuery {
        from: Some(from),
        to: Some(to),
        max_points: Some(max_points),
        lttb: false,
    }
}

#[tokio::test]
async fn trends_pick_a_resolution_and_agree_with_raw_data() {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let org = seed_org(&db, "trend", &["temp"]).await;
    let s = org.sensors[0].id;
    // Two days every 20 s.
    insert(&db, &org, s, base(), 2 * 86400, 20, 0.0).await;
    let cases = [
        // (from, to, maxPoints, resolution)
        (base(), base() + Duration::hours(3), 1000, Resolution::Raw),
        (base(), base() + Duration::hours(3), 100, Resolution::Minute),
        (base(), base() + Duration::days(2), 48, Resolution::Hour),
        (base(), base() + Duration::days(2), 1000, Resolution::Minute),
        // Ragged ends: partial hours from minutes, partial minutes from raw.
        (
            base() + Duration::seconds(37 * 60 + 10),
            base() + Duration::hours(30) + Duration::seconds(130),
            20,
            Resolution::Hour,
        ),
        (
            base() + Duration::seconds(70),
            base() + Duration::hours(5) + Duration::seconds(50),
            120,
            Resolution::Minute,
        ),
    ];
    let mut before = Vec::new();
    for (from, to, points, resolution) in cases {
        let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
        let series = readings::trend(&mut tx, s, &q(from, to, points)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(series.resolution, resolution, "{from}..{to} in {points}");
        assert!(
            series.buckets.len() as i64 <= points,
            "{} buckets",
            series.buckets.len()
        );
        let (f, e) = ((from - base()).num_seconds(), (to - base()).num_seconds());
        let expected = (e + 19) / 20 - (f + 19) / 20;
        let total: i64 = series.buckets.iter().map(|b| b.count).sum();
        assert_eq!(total, expected, "every reading in range counted once");
        before.push(series);
    }

    // Nothing rolled up yet: all pending, read raw. After the rollup the
    // coarse answers come from the rollups and are the same.
    rollups::roll_up_all(&db, Duration::days(7)).await.unwrap();
    for ((from, to, points, _), old) in cases.iter().zip(&before) {
        let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
        let new = readings::trend(&mut tx, s, &q(*from, *to, *points))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(new.buckets, old.buckets, "{from}..{to} in {points}");
        assert_eq!(new.bucket_seconds, old.bucket_seconds);
        if new.resolution != Resolution::Raw {
            assert!(
                new.rows_scanned * 2 < old.rows_scanned,
                "rollups scan fewer rows: {} vs {}",
                new.rows_scanned,
                old.rows_scanned
            );
        }
    }

    // Exact values on an aligned range: 3 hours in 3 buckets from 1h rows.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let series = readings::trend(&mut tx, s, &q(base(), base() + Duration::hours(3), 3))
        .await
        .unwrap();
    let raw: Vec<(f64, f64, f64, i64)> = sqlx::query_as(
        "SELECT min(value), avg(value), max(value), count(*) FROM readings
         WHERE ts >= $1 AND ts < $2 GROUP BY date_trunc('hour', ts) ORDER BY date_trunc('hour', ts)",
    )
    .bind(base())
    .bind(base() + Duration::hours(3))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(series.resolution, Resolution::Hour);
    assert_eq!(series.rows_scanned, 3);
    let got: Vec<(f64, f64, f64, i64)> = series
        .buckets
        .iter()
        .map(|b| (b.min, b.avg, b.max, b.count))
        .collect();
    assert_eq!(got, raw);

    // Late data after the rollup shows at once (read raw while pending).
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    sqlx::query("INSERT INTO readings (organization_id, sensor_id, ts, value) VALUES ($1, $2, $3, 99999)")
        .bind(org.tenant.org_id)
        .bind(s)
        .bind(base() + Duration::minutes(90) + Duration::seconds(1))
        .execute(&mut *tx)
        .await
        .unwrap();
    let series = readings::trend(&mut tx, s, &q(base(), base() + Duration::hours(3), 3))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(series.buckets[1].max, 99999.0);
    assert_eq!(series.buckets[1].count, raw[1].3 + 1);

    // LTTB: at most maxPoints buckets, keeping the spike.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let series = readings::trend(
        &mut tx,
        s,
        &TrendQuery {
            lttb: true,
            ..q(base(), base() + Duration::hours(3), 50)
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(series.lttb);
    assert_eq!(series.buckets.len(), 50);
    assert!(
        series.buckets.iter().any(|b| b.max == 99999.0),
        "the spike survives LTTB"
    );

    // Validation.
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let err = readings::trend(&mut tx, s, &q(base(), base(), 10))
        .await
        .unwrap_err();
    assert!(matches!(err, maintainpro_models::ModelError::Validation(_)));
    let err = readings::trend(&mut tx, s, &q(base(), base() + Duration::hours(1), 0))
        .await
        .unwrap_err();
    assert!(matches!(err, maintainpro_models::ModelError::Validation(_)));
    tx.rollback().await.unwrap();
    tdb.cleanup().await;
}

#[tokio::test]
async fn latest_values_per_sensor() {
    let tdb = test_db().await;
    let db = tdb.db.clone();
    let org = seed_org(&db, "latest", &["temp", "vib", "idle"]).await;
    insert(&db, &org, org.sensors[0].id, base(), 600, 10, 0.0).await;
    insert(&db, &org, org.sensors[1].id, base(), 120, 1, 500.0).await;
    let mut tx = db.tenant(org.tenant.org_id).await.unwrap();
    let latest = readings::latest(&mut tx, None).await.unwrap();
    let only = readings::latest(&mut tx, Some(Uuid::new_v4())).await.unwrap();
    tx.commit().await.unwrap();
    assert!(only.is_empty());
    assert_eq!(latest.len(), 3);
    let by = |id: Uuid| latest.iter().find(|l| l.sensor_id == id).unwrap();
    let t = by(org.sensors[0].id);
    assert_eq!(
        (t.ts, t.value),
        (Some(base() + Duration::seconds(590)), Some((590 % 97) as f64))
    );
    let v = by(org.sensors[1].id);
    assert_eq!(
        (v.ts, v.value),
        (
            Some(base() + Duration::seconds(119)),
            Some((119 % 97) as f64 + 500.0)
        )
    );
    let idle = by(org.sensors[2].id);
    assert_eq!((idle.ts, idle.value), (None, None));
    tdb.cleanup().await;
}

#[tokio::test]
async fn readings_stored_before_the_rollups_existed_are_rolled_up() {
    use maintainpro_models::db::{DbConfig, MIGRATOR};
    use sqlx::migrate::{MigrateDatabase, Migrator};

    // A database migrated up to 0013 holding readings, then migrated on.
    let tdb = test_db().await;
    let name = format!("mp_test_{}", Uuid::new_v4().simple());
    let url = tdb.url.replace(&tdb.name, &name);
    sqlx::Postgres::create_database(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("mp-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file.as_str() < "0014" {
            std::fs::copy(&path, dir.join(&file)).unwrap();
        }
    }
    let owner = sqlx::PgPool::connect(&url).await.unwrap();
    Migrator::new(dir.as_path())
        .await
        .unwrap()
        .run(&owner)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(sqlx::query("SELECT 1 FROM readings_1m")
        .execute(&owner)
        .await
        .is_err());

    let db = Db::connect(&DbConfig::new(url.clone())).await.unwrap();
    let org = maintainpro_models::organizations::create(&db, "before", "Before inc")
        .await
        .unwrap();
    let sensor = Uuid::new_v4();
    let mut tx = db.tenant(org.id).await.unwrap();
    sqlx::query(
        "INSERT INTO readings (organization_id, sensor_id, ts, value)
         SELECT $1, $2, $3 + make_interval(secs => s), s % 13 FROM generate_series(0, 7199, 5) s",
    )
    .bind(org.id)
    .bind(sensor)
    .bind(base() + Duration::seconds(17))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    MIGRATOR.run(&owner).await.unwrap();
    owner.close().await;
    assert_eq!(pending_rows(&db, org.id).await, 1, "the stored span is pending");
    // Pending minutes are read raw: right before the rollup …
    let q = q(base(), base() + Duration::hours(3), 3);
    let mut tx = db.tenant(org.id).await.unwrap();
    let before = readings::trend(&mut tx, sensor, &q).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(before.buckets.iter().map(|b| b.count).sum::<i64>(), 1440);
    rollups::roll_up_all(&db, Duration::days(1)).await.unwrap();
    for (table, step) in [("readings_1m", "1 minute"), ("readings_1h", "1 hour")] {
        let (stored, expected) = rollup_vs_raw(&db, org.id, table, step).await;
        assert!(!stored.is_empty());
        assert_eq!(stored, expected, "{table}");
    }
    // … and after it, from the rollups, the same.
    let mut tx = db.tenant(org.id).await.unwrap();
    let after = readings::trend(&mut tx, sensor, &q).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(after.resolution, Resolution::Hour);
    assert_eq!(after.buckets, before.buckets);
    assert!(after.rows_scanned < before.rows_scanned);
    db.close().await;
    if std::env::var("DATABASE_URL").is_ok() {
        let _ = sqlx::Postgres::drop_database(&url).await;
    }
    tdb.cleanup().await;
}
