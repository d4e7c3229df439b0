//! Trend queries over stored telemetry (the writer lives in ingest).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{FieldError, ModelError, Result};

/// One time bucket of a sensor's readings.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Bucket {
    /// Start of the bucket.
    pub ts: DateTime<Utc>,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendSeries {
    pub sensor_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Width of each bucket in seconds.
    pub bucket_seconds: f64,
    pub buckets: Vec<Bucket>,
}

pub const MAX_POINTS: i64 = 10_000;
pub const DEFAULT_POINTS: i64 = 1_000;

/// Readings of one sensor in [from, to) as at most `max_points` buckets of
/// min/avg/max. Missing `to` means now, missing `from` means 24 h before `to`.
pub async fn buckets(
    tx: &mut Tx,
    sensor_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    max_points: Option<i64>,
) -> Result<TrendSeries> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - Duration::hours(24));
    let max_points = max_points.unwrap_or(DEFAULT_POINTS);
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
    let span = (to - from).num_milliseconds() as f64 / 1000.0;
    // Whole milliseconds, at least one: buckets never split a stored timestamp.
    let width = ((span / max_points as f64) * 1000.0).ceil().max(1.0) / 1000.0;
    let buckets = sqlx::query_as::<_, Bucket>(
        "SELECT date_bin(make_interval(secs => $4), ts, $2) AS ts,
                min(value) AS min, avg(value) AS avg, max(value) AS max, count(*) AS count
         FROM readings
         WHERE sensor_id = $1 AND ts >= $2 AND ts < $3
         GROUP BY 1 ORDER BY 1",
    )
    .bind(sensor_id)
    .bind(from)
    .bind(to)
    .bind(width)
    .fetch_all(&mut **tx)
    .await?;
    Ok(TrendSeries {
        sensor_id,
        from,
        to,
        bucket_seconds: width,
        buckets,
    })
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
