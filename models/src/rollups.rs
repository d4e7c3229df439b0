//! The 1-minute and 1-hour rollups of readings on plain PostgreSQL (on
//! TimescaleDB they are continuous aggregates and this does nothing).
//!
//! Every INSERT into readings records the minutes it touched per
//! organization in `readings_rollup_pending` (a trigger, in the writer's
//! transaction; migrations/0014). [`roll_up`] claims those rows
//! (`FOR UPDATE SKIP LOCKED`), recomputes the touched minutes from raw
//! readings and the touched hours from the minutes, and deletes the claims,
//! all in one transaction: readers see either the pending rows (and read
//! raw data for those minutes) or the new rollups, never a gap. Upserts
//! recompute whole buckets, so replaying late data into an old minute is
//! safe and idempotent. One instance works on an organization at a time
//! (a transaction-scoped advisory lock, skipped when taken), so several
//! ingest instances share the work without computing an hour from a
//! half-updated set of minutes.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::readings::{ceil_to, floor_to};

/// Pending rows claimed per transaction.
pub const CLAIM_LIMIT: i64 = 1000;

/// What one [`roll_up`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupRound {
    /// Another instance held the organization; nothing done.
    pub busy: bool,
    /// Pending rows claimed.
    pub claimed: u64,
    /// Minute and hour rows written.
    pub minutes: u64,
    pub hours: u64,
    /// Touched time left for a later call (over the span budget).
    pub deferred: bool,
}

impl RollupRound {
    /// Whether more work may be waiting for this organization.
    pub fn more(&self) -> bool {
        self.deferred || self.claimed as i64 >= CLAIM_LIMIT
    }
}

/// False on TimescaleDB, where continuous aggregates keep the rollups.
pub async fn kept_by_service(db: &Db) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, bool>("SELECT mp_readings_rollups_by_service()")
            .fetch_one(db.pool())
            .await?,
    )
}

type Ranges = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// A claimed row count with one merged range (null when nothing was claimed).
type Claimed = (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Sorted ranges widened to whole `step` cells and merged.
fn widen(ranges: &[(DateTime<Utc>, DateTime<Utc>)], step: i64) -> Ranges {
    let mut out: Ranges = Vec::new();
    for &(lo, hi) in ranges {
        let (lo, hi) = (floor_to(lo, step), ceil_to(hi, step));
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Splits sorted ranges after `budget` of total time (on a minute line):
/// (now, later).
fn split_budget(ranges: Ranges, budget: Duration) -> (Ranges, Ranges) {
    let mut left = budget;
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for (lo, hi) in ranges {
        if left <= Duration::zero() {
            later.push((lo, hi));
        } else if hi - lo <= left {
            left -= hi - lo;
            now.push((lo, hi));
        } else {
            let cut = ceil_to(lo + left, 60).min(hi);
            now.push((lo, cut));
            if cut < hi {
                later.push((cut, hi));
            }
            left = Duration::zero();
        }
    }
    (now, later)
}

/// Rolls up what is pending for `org`: at most [`CLAIM_LIMIT`] pending rows
/// and `budget` of touched time per call (the rest stays pending).
pub async fn roll_up(db: &Db, org: Uuid, budget: Duration) -> Result<RollupRound> {
    let mut tx = db.tenant(org).await?;
    let mine: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('mp_readings_rollup:' || $1::text, 0))",
    )
    .bind(org)
    .fetch_one(&mut *tx)
    .await?;
    if !mine {
        tx.rollback().await?;
        return Ok(RollupRound {
            busy: true,
            ..RollupRound::default()
        });
    }
    let claimed: Vec<Claimed> = sqlx::query_as(
        "WITH claimed AS (
             DELETE FROM readings_rollup_pending WHERE id IN (
                 SELECT id FROM readings_rollup_pending ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING touched),
         merged AS (SELECT count(*) AS n, range_agg(touched) AS mr FROM claimed)
         SELECT n, lower(r), upper(r) FROM merged LEFT JOIN LATERAL unnest(mr) r ON true
         ORDER BY 2",
    )
    .bind(CLAIM_LIMIT)
    .fetch_all(&mut *tx)
    .await?;
    let n = claimed.first().map_or(0, |c| c.0) as u64;
    let ranges: Ranges = claimed
        .into_iter()
        .filter_map(|(_, lo, hi)| Some((lo?, hi?)))
        .collect();
    let mut round = RollupRound {
        claimed: n,
        ..RollupRound::default()
    };
    if ranges.is_empty() {
        tx.commit().await?;
        return Ok(round);
    }
    let (now, later) = split_budget(widen(&ranges, 60), budget);
    if !later.is_empty() {
        round.deferred = true;
        let (lo, hi): (Vec<_>, Vec<_>) = later.into_iter().unzip();
        sqlx::query(
            "INSERT INTO readings_rollup_pending (organization_id, touched)
             SELECT $1, range_agg(tstzrange(lo, hi)) FROM unnest($2::timestamptz[], $3::timestamptz[]) u (lo, hi)",
        )
        .bind(org)
        .bind(&lo)
        .bind(&hi)
        .execute(&mut *tx)
        .await?;
    }
    round.minutes = recompute_minutes(&mut tx, org, &now).await?;
    round.hours = recompute_hours(&mut tx, org, &widen(&now, 3600)).await?;
    tx.commit().await?;
    Ok(round)
}

/// Rewrites the minute rows of `ranges` (minute-aligned, disjoint) from raw.
async fn recompute_minutes(tx: &mut Tx, org: Uuid, ranges: &[(DateTime<Utc>, DateTime<Utc>)]) -> Result<u64> {
    let (lo, hi): (Vec<_>, Vec<_>) = ranges.iter().copied().unzip();
    let r = sqlx::query(
        "INSERT INTO readings_1m AS t (organization_id, sensor_id, bucket, min, max, sum, count)
         SELECT $1, r.sensor_id, date_bin(INTERVAL '1 minute', r.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                min(r.value), max(r.value), sum(r.value), count(*)
         FROM unnest($2::timestamptz[], $3::timestamptz[]) g (lo, hi)
         JOIN readings r ON r.organization_id = $1 AND r.ts >= g.lo AND r.ts < g.hi
         GROUP BY 2, 3
         ON CONFLICT (sensor_id, bucket) DO UPDATE
         SET min = excluded.min, max = excluded.max, sum = excluded.sum, count = excluded.count",
    )
    .bind(org)
    .bind(&lo)
    .bind(&hi)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// Rewrites the hour rows of `ranges` (hour-aligned, disjoint) from minutes.
async fn recompute_hours(tx: &mut Tx, org: Uuid, ranges: &[(DateTime<Utc>, DateTime<Utc>)]) -> Result<u64> {
    let (lo, hi): (Vec<_>, Vec<_>) = ranges.iter().copied().unzip();
    let r = sqlx::query(
        "INSERT INTO readings_1h AS t (organization_id, sensor_id, bucket, min, max, sum, count)
         SELECT $1, m.sensor_id, date_bin(INTERVAL '1 hour', m.bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                min(m.min), max(m.max), sum(m.sum), sum(m.count)::bigint
         FROM unnest($2::timestamptz[], $3::timestamptz[]) g (lo, hi)
         JOIN readings_1m m ON m.organization_id = $1 AND m.bucket >= g.lo AND m.bucket < g.hi
         GROUP BY 2, 3
         ON CONFLICT (sensor_id, bucket) DO UPDATE
         SET min = excluded.min, max = excluded.max, sum = excluded.sum, count = excluded.count",
    )
    .bind(org)
    .bind(&lo)
    .bind(&hi)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

/// Rolls up everything pending for every organization (each until drained
/// or busy elsewhere); returns the rounds that did work.
pub async fn roll_up_all(db: &Db, budget: Duration) -> Result<Vec<(Uuid, RollupRound)>> {
    let mut done = Vec::new();
    for org in db.organization_ids().await? {
        loop {
            let round = roll_up(db, org, budget).await?;
            if round.claimed > 0 {
                done.push((org, round));
            }
            if round.busy || !round.more() {
                break;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn widening_merges_cells() {
        let r = widen(
            &[(t(10, 5), t(10, 6)), (t(10, 50), t(11, 10)), (t(13, 0), t(13, 1))],
            3600,
        );
        assert_eq!(r, vec![(t(10, 0), t(12, 0)), (t(13, 0), t(14, 0))]);
    }

    #[test]
    fn the_budget_splits_on_a_minute() {
        let (now, later) = split_budget(
            vec![(t(10, 0), t(11, 0)), (t(12, 0), t(13, 0))],
            Duration::minutes(90),
        );
        assert_eq!(now, vec![(t(10, 0), t(11, 0)), (t(12, 0), t(12, 30))]);
        assert_eq!(later, vec![(t(12, 30), t(13, 0))]);
    }
}
