//! Trend queries over stored telemetry (the writer lives in ingest): min /
//! avg / max buckets read from raw readings or from the 1-minute and 1-hour
//! rollups (see migrations/0014 and [`crate::rollups`]), optional LTTB
//! downsampling, raw export as a stream, the last value per sensor, and the
//! readings after a cursor per sensor (the live tail).
//!
//! Resolution: the bucket width is the span divided by `max_points`; the
//! hourly rollup serves widths of an hour or more, the minute rollup widths
//! of a minute or more, raw readings the rest. Rollup buckets are aligned to
//! their grid (UTC minutes / hours), so each rollup row falls into exactly
//! one output bucket; the partial minutes / hours at the ends of the range
//! and every minute the rollup task has not processed yet (its pending
//! rows) are read one level finer, down to raw. An answer is therefore
//! exact, whatever the state of the rollups.

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{FieldError, ModelError, Result};

/// One time bucket of a sensor's readings.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, ToSchema)]
pub struct Bucket {
    /// Start of the bucket (on the resolution's grid: with rollups the first
    /// bucket may start before `from`; it holds no reading before `from`).
    pub ts: DateTime<Utc>,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Readings in the bucket.
    pub count: i64,
}

/// Where the buckets of an answer were computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Resolution {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
}

impl Resolution {
    /// The rollup grid in seconds (0 for raw).
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }

    /// The coarsest resolution whose grid is no wider than `width` seconds.
    pub fn for_width(width: f64) -> Resolution {
        if width >= 3600.0 {
            Resolution::Hour
        } else if width >= 60.0 {
            Resolution::Minute
        } else {
            Resolution::Raw
        }
    }

    fn finer(self) -> Resolution {
        match self {
            Resolution::Hour => Resolution::Minute,
            _ => Resolution::Raw,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendSeries {
    pub sensor_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// What the buckets were computed from: raw readings or a rollup.
    pub resolution: Resolution,
    /// Width of each bucket in seconds.
    pub bucket_seconds: f64,
    /// Whether the buckets were thinned with LTTB (on their averages).
    pub lttb: bool,
    /// Stored rows (readings or rollup rows) the answer was computed from.
    pub rows_scanned: i64,
    pub buckets: Vec<Bucket>,
}

pub const MAX_POINTS: i64 = 10_000;
pub const DEFAULT_POINTS: i64 = 1_000;
/// With LTTB, buckets are computed this many times finer, then thinned.
pub const LTTB_OVERSAMPLING: i64 = 4;

/// What a trend query asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrendQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub max_points: Option<i64>,
    pub lttb: bool,
}

/// A checked range: [from, to) and the point budget.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub max_points: i64,
}

/// Fills in defaults (to = now, from = 24 h before `to`, 1000 points) and
/// validates.
pub fn check_range(q: &TrendQuery) -> Result<Range> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::hours(24));
    let max_points = q.max_points.unwrap_or(DEFAULT_POINTS);
    let mut errors = Vec::new();
    if from >= to {
        errors.push(FieldError::new("from", "must be before 'to'"));
    }
    if !(1..=MAX_POINTS).contains(&max_points) {
        errors.push(FieldError::new(
            "maxPoints",
            format!("must be between 1 and {MAX_POINTS}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ModelError::Validation(errors));
    }
    Ok(Range { from, to, max_points })
}

/// `t` rounded down to a multiple of `step` seconds since the Unix epoch.
pub(crate) fn floor_to(t: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(step) * step;
    Utc.timestamp_opt(s, 0).single().unwrap_or(t)
}

/// `t` rounded up to a multiple of `step` seconds since the Unix epoch.
pub(crate) fn ceil_to(t: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let f = floor_to(t, step);
    if f == t {
        t
    } else {
        f + Duration::seconds(step)
    }
}

/// Time segments per source: [lo, hi) ranges read from raw, 1m and 1h.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub raw: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub minute: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub hour: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Plan {
    fn push(&mut self, level: Resolution, lo: DateTime<Utc>, hi: DateTime<Utc>) {
        if lo >= hi {
            return;
        }
        let v = match level {
            Resolution::Raw => &mut self.raw,
            Resolution::Minute => &mut self.minute,
            Resolution::Hour => &mut self.hour,
        };
        match v.last_mut() {
            Some(last) if last.1 == lo => last.1 = hi,
            _ => v.push((lo, hi)),
        }
    }
}

/// Splits [from, to) into segments read from `level` where its rows are
/// whole and current, and one level finer elsewhere: the partial grid
/// cells at the ends and the cells that overlap `stale` (pending minutes,
/// sorted and disjoint).
pub fn plan(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    level: Resolution,
    stale: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Plan {
    let mut p = Plan::default();
    plan_into(&mut p, from, to, level, stale);
    p
}

fn plan_into(
    p: &mut Plan,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
    level: Resolution,
    stale: &[(DateTime<Utc>, DateTime<Utc>)],
) {
    if a >= b {
        return;
    }
    if level == Resolution::Raw {
        return p.push(Resolution::Raw, a, b);
    }
    let step = level.seconds();
    let (ia, ib) = (ceil_to(a, step), floor_to(b, step));
    if ia >= ib {
        return plan_into(p, a, b, level.finer(), stale);
    }
    plan_into(p, a, ia, level.finer(), stale);
    // Stale cells of this grid inside [ia, ib), merged.
    let mut cells: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for &(lo, hi) in stale {
        let (lo, hi) = (floor_to(lo, step).max(ia), ceil_to(hi, step).min(ib));
        if lo >= hi {
            continue;
        }
        match cells.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => cells.push((lo, hi)),
        }
    }
    let mut cursor = ia;
    for (lo, hi) in cells {
        p.push(level, cursor, lo);
        plan_into(p, lo, hi, level.finer(), stale);
        cursor = hi;
    }
    p.push(level, cursor, ib);
    plan_into(p, ib, b, level.finer(), stale);
}

/// The current organization's minutes not rolled up yet that overlap
/// [from, to), merged and sorted.
pub async fn pending_minutes(
    tx: &mut Tx,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    Ok(sqlx::query_as::<_, (DateTime<Utc>, DateTime<Utc>)>(
        "SELECT lower(r), upper(r)
         FROM unnest((SELECT range_agg(touched) FROM readings_rollup_pending
                      WHERE touched && tstzrange($1, $2))) r
         ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut **tx)
    .await?)
}

#[derive(FromRow)]
struct BucketRow {
    ts: DateTime<Utc>,
    min: f64,
    avg: f64,
    max: f64,
    count: i64,
    rows: i64,
}

/// One sensor's readings in [from, to) as at most `max_points` buckets of
/// min/avg/max, from raw readings or the rollups (see the module docs).
/// Missing `to` means now, missing `from` means 24 h before `to`.
pub async fn trend(tx: &mut Tx, sensor_id: Uuid, q: &TrendQuery) -> Result<TrendSeries> {
    let range = check_range(q)?;
    let stale = pending_minutes(tx, range.from, range.to).await?;
    trend_in(tx, sensor_id, range, q.lttb, &stale).await
}

/// [`trend`] for a checked range and known pending minutes (several
/// sensors of one organization share them).
pub async fn trend_in(
    tx: &mut Tx,
    sensor_id: Uuid,
    range: Range,
    lttb: bool,
    stale: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Result<TrendSeries> {
    let Range { from, to, max_points } = range;
    let points = if lttb {
        (max_points * LTTB_OVERSAMPLING).min(MAX_POINTS * LTTB_OVERSAMPLING)
    } else {
        max_points
    };
    let span = (to - from).num_milliseconds() as f64 / 1000.0;
    let resolution = Resolution::for_width(span / points as f64);
    let (width, origin, plan) = match resolution {
        Resolution::Raw => {
            // Whole milliseconds, at least one: buckets never split a stored timestamp.
            let width = ((span / points as f64) * 1000.0).ceil().max(1.0) / 1000.0;
            let plan = Plan {
                raw: vec![(from, to)],
                ..Plan::default()
            };
            (width, from, plan)
        }
        level => {
            // A whole number of grid cells per bucket, from the grid line
            // at or before `from`, so at most `points` buckets.
            let step = level.seconds();
            let origin = floor_to(from, step);
            let cells = (ceil_to(to, step) - origin).num_seconds() / step;
            let per_bucket = (cells + points - 1) / points;
            let width = (per_bucket.max(1) * step) as f64;
            (width, origin, plan(from, to, level, stale))
        }
    };
    let unzip = |v: &[(DateTime<Utc>, DateTime<Utc>)]| -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
        v.iter().copied().unzip()
    };
    let (raw_lo, raw_hi) = unzip(&plan.raw);
    let (m_lo, m_hi) = unzip(&plan.minute);
    let (h_lo, h_hi) = unzip(&plan.hour);
    let rows = sqlx::query_as::<_, BucketRow>(
        // One index range scan per segment: the OFFSET 0 fences keep the
        // planner (a generic plan knows neither sensor nor ranges) from
        // reading all of a sensor's rows once and filtering them.
        "WITH src (t, mn, mx, s, c) AS (
             SELECT r.ts, r.value, r.value, r.value, 1::bigint
             FROM unnest($3::timestamptz[], $4::timestamptz[]) g (lo, hi)
             CROSS JOIN LATERAL (SELECT ts, value FROM readings
                                 WHERE sensor_id = $1 AND ts >= g.lo AND ts < g.hi OFFSET 0) r
             UNION ALL
             SELECT m.bucket, m.min, m.max, m.sum, m.count
             FROM unnest($5::timestamptz[], $6::timestamptz[]) g (lo, hi)
             CROSS JOIN LATERAL (SELECT bucket, min, max, sum, count FROM readings_1m
                                 WHERE sensor_id = $1 AND bucket >= g.lo AND bucket < g.hi OFFSET 0) m
             UNION ALL
             SELECT h.bucket, h.min, h.max, h.sum, h.count
             FROM unnest($7::timestamptz[], $8::timestamptz[]) g (lo, hi)
             CROSS JOIN LATERAL (SELECT bucket, min, max, sum, count FROM readings_1h
                                 WHERE sensor_id = $1 AND bucket >= g.lo AND bucket < g.hi OFFSET 0) h
         )
         SELECT date_bin(make_interval(secs => $9), t, $2) AS ts,
                min(mn) AS min, sum(s) / sum(c)::float8 AS avg, max(mx) AS max,
                sum(c)::bigint AS count, count(*) AS rows
         FROM src GROUP BY 1 ORDER BY 1",
    )
    .bind(sensor_id)
    .bind(origin)
    .bind(&raw_lo)
    .bind(&raw_hi)
    .bind(&m_lo)
    .bind(&m_hi)
    .bind(&h_lo)
    .bind(&h_hi)
    .bind(width)
    .fetch_all(&mut **tx)
    .await?;
    let rows_scanned = rows.iter().map(|r| r.rows).sum();
    let mut buckets: Vec<Bucket> = rows
        .into_iter()
        .map(|r| Bucket {
            ts: r.ts,
            min: r.min,
            avg: r.avg,
            max: r.max,
            count: r.count,
        })
        .collect();
    if lttb && buckets.len() > max_points as usize {
        let xy: Vec<(f64, f64)> = buckets
            .iter()
            .map(|b| (b.ts.timestamp_millis() as f64, b.avg))
            .collect();
        let keep = crate::lttb::lttb(&xy, max_points as usize);
        let mut all = buckets.into_iter().map(Some).collect::<Vec<_>>();
        buckets = keep
            .into_iter()
            .filter_map(|i| all.get_mut(i).and_then(Option::take))
            .collect();
    }
    Ok(TrendSeries {
        sensor_id,
        from,
        to,
        resolution,
        bucket_seconds: width,
        lttb,
        rows_scanned,
        buckets,
    })
}

/// One sensor's readings in [from, to) as at most `max_points` buckets
/// (no LTTB). Kept for callers of the original API.
pub async fn buckets(
    tx: &mut Tx,
    sensor_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    max_points: Option<i64>,
) -> Result<TrendSeries> {
    let q = TrendQuery {
        from,
        to,
        max_points,
        lttb: false,
    };
    trend(tx, sensor_id, &q).await
}

/// A sensor's raw readings in [from, to), oldest first, as a stream read
/// from the database as it is consumed (nothing is collected).
pub fn raw_stream<'a>(
    tx: &'a mut Tx,
    sensor_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BoxStream<'a, Result<Reading>> {
    sqlx::query_as::<_, Reading>(
        "SELECT sensor_id, ts, value FROM readings WHERE sensor_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts",
    )
    .bind(sensor_id)
    .bind(from)
    .bind(to)
    .fetch(&mut **tx)
    .map(|r| r.map_err(ModelError::from))
    .boxed()
}

/// The newest reading of a sensor, for dashboards.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestValue {
    pub sensor_id: Uuid,
    pub equipment_id: Uuid,
    pub device_id: Uuid,
    pub metric: String,
    pub name: String,
    pub unit: String,
    /// When the newest reading was taken (null: none stored yet).
    pub ts: Option<DateTime<Utc>>,
    pub value: Option<f64>,
}

/// The newest reading of every sensor (or of one asset's sensors); one
/// index probe per sensor on (sensor_id, ts).
pub async fn latest(tx: &mut Tx, equipment_id: Option<Uuid>) -> Result<Vec<LatestValue>> {
    Ok(sqlx::query_as::<_, LatestValue>(
        "SELECT s.id AS sensor_id, s.equipment_id, s.device_id, s.metric, s.name, s.unit, l.ts, l.value
         FROM sensors s
         LEFT JOIN LATERAL (
             SELECT r.ts, r.value FROM readings r WHERE r.sensor_id = s.id ORDER BY r.ts DESC LIMIT 1
         ) l ON true
         WHERE $1::uuid IS NULL OR s.equipment_id = $1
         ORDER BY s.name, s.id",
    )
    .bind(equipment_id)
    .fetch_all(&mut **tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn resolution_follows_the_bucket_width() {
        assert_eq!(Resolution::for_width(0.5), Resolution::Raw);
        assert_eq!(Resolution::for_width(59.9), Resolution::Raw);
        assert_eq!(Resolution::for_width(60.0), Resolution::Minute);
        assert_eq!(Resolution::for_width(2592.0), Resolution::Minute);
        assert_eq!(Resolution::for_width(3600.0), Resolution::Hour);
    }

    #[test]
    fn aligned_ranges_read_only_the_rollup() {
        let p = plan(t(10, 0, 0), t(14, 0, 0), Resolution::Hour, &[]);
        assert_eq!(p.hour, vec![(t(10, 0, 0), t(14, 0, 0))]);
        assert!(p.minute.is_empty() && p.raw.is_empty());
    }

    #[test]
    fn ragged_ends_go_one_level_finer_each() {
        let p = plan(t(10, 7, 30), t(13, 20, 15), Resolution::Hour, &[]);
        assert_eq!(
            p.raw,
            vec![(t(10, 7, 30), t(10, 8, 0)), (t(13, 20, 0), t(13, 20, 15))]
        );
        assert_eq!(
            p.minute,
            vec![(t(10, 8, 0), t(11, 0, 0)), (t(13, 0, 0), t(13, 20, 0))]
        );
        assert_eq!(p.hour, vec![(t(11, 0, 0), t(13, 0, 0))]);
    }

    #[test]
    fn pending_minutes_are_read_raw_and_their_hours_from_minutes() {
        let stale = [(t(11, 30, 0), t(11, 32, 0))];
        let p = plan(t(10, 0, 0), t(13, 0, 0), Resolution::Hour, &stale);
        assert_eq!(
            p.hour,
            vec![(t(10, 0, 0), t(11, 0, 0)), (t(12, 0, 0), t(13, 0, 0))]
        );
        assert_eq!(
            p.minute,
            vec![(t(11, 0, 0), t(11, 30, 0)), (t(11, 32, 0), t(12, 0, 0))]
        );
        assert_eq!(p.raw, vec![(t(11, 30, 0), t(11, 32, 0))]);
        let p = plan(t(10, 0, 0), t(10, 10, 0), Resolution::Minute, &stale);
        assert_eq!(p.minute, vec![(t(10, 0, 0), t(10, 10, 0))]);
    }
}

/// A stored reading.
#[derive(Debug, Clone, Copy, PartialEq, FromRow)]
pub struct Reading {
    pub sensor_id: Uuid,
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// The tenant's readings with `after < ts <= until`, oldest first.
pub async fn between(
    tx: &mut Tx,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Reading>> {
    Ok(sqlx::query_as::<_, Reading>(
        "SELECT sensor_id, ts, value FROM readings WHERE ts > $1 AND ts <= $2 ORDER BY ts, sensor_id LIMIT $3",
    )
    .bind(after)
    .bind(until)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

/// The newest reading timestamp of the tenant, if any.
pub async fn latest_ts(tx: &mut Tx) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar::<_, Option<DateTime<Utc>>>("SELECT max(ts) FROM readings")
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// How many readings the tenant has stored.
pub async fn count(tx: &mut Tx) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM readings")
        .fetch_one(&mut **tx)
        .await?)
}

/// Newer readings of some sensors, for a live tail: per sensor, those with
/// `ts` after that sensor's cursor, oldest first, at most `per_sensor` each
/// (one probe of the (sensor_id, ts) key per sensor). Ordered by sensor,
/// then time. A reading stored later with a `ts` at or before its sensor's
/// cursor (a late upload) is not returned: a tail shows what comes after.
pub async fn after_each(
    tx: &mut Tx,
    cursors: &[(Uuid, DateTime<Utc>)],
    per_sensor: i64,
) -> Result<Vec<Reading>> {
    let (ids, afters): (Vec<Uuid>, Vec<DateTime<Utc>>) = cursors.iter().copied().unzip();
    Ok(sqlx::query_as::<_, Reading>(
        "SELECT r.sensor_id, r.ts, r.value
         FROM unnest($1::uuid[], $2::timestamptz[]) AS c(sensor_id, after)
         JOIN LATERAL (
             SELECT x.sensor_id, x.ts, x.value FROM readings x
             WHERE x.sensor_id = c.sensor_id AND x.ts > c.after
             ORDER BY x.ts LIMIT $3
         ) r ON true
         ORDER BY r.sensor_id, r.ts",
    )
    .bind(&ids)
    .bind(&afters)
    .bind(per_sensor)
    .fetch_all(&mut **tx)
    .await?)
}

/// The newest reading timestamp of each of these sensors (absent: none
/// stored yet).
pub async fn latest_ts_each(tx: &mut Tx, sensor_ids: &[Uuid]) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
    Ok(sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
        "SELECT s.id, l.ts
         FROM unnest($1::uuid[]) AS s(id)
         JOIN LATERAL (
             SELECT r.ts FROM readings r WHERE r.sensor_id = s.id ORDER BY r.ts DESC LIMIT 1
         ) l ON true",
    )
    .bind(sensor_ids)
    .fetch_all(&mut **tx)
    .await?)
}
