//! The auto-work-order policy, in one place: when an anomaly raises a work
//! order, adds to an open one, or is suppressed (cooldown after a closed
//! work order, flapping, an ancestor's open alarm of the same family), what
//! verifying an auto work order requires (a quiet period), and the evidence
//! helpers analytics uses to explain a raise.
//!
//! The entry point is [`crate::work_orders::raise_auto`]; this module holds
//! its knobs ([`AutoPolicy`]), its outcomes ([`SuppressReason`]) and the
//! queries behind the decisions.
//!
//! # Keys and families
//! An auto work order's key is (equipment, failure mode). The failure mode's
//! *family* is the part before the first `:` (`process:temp-high` →
//! `process`); the families analytics uses are [`PROCESS`],
//! [`SENSOR_HEALTH`], [`PREDICTED`] and [`MULTIVARIATE`].
//!
//! # Decision order (for an anomaly of key K on equipment E)
//! 1. An open auto work order of K: the anomaly is added to it (`Added`).
//! 2. An ancestor of E (parent chain) has an open auto work order whose
//!    failure mode is of the same family: `Suppressed(ParentAlarm)`, and the
//!    anomaly is recorded on the ancestor's work order as an occurrence.
//!    The `sensor_health` family is never silenced this way: an
//!    instrument fault is local to its sensor, and no alarm of the parent
//!    (process or instrument) explains it.
//! 3. The last closed (completed, verified or cancelled) auto work order of
//!    K closed less than `cooldown` ago: `Suppressed(Cooldown { until })`.
//! 4. Flapping: counting this anomaly, more than `flap_limit` anomalies of
//!    K started within `flap_window` (before this one's start) while no work
//!    order of K was open — those that raised a work order or were
//!    suppressed by cooldown or flapping: `Suppressed(Flapping)`.
//! 5. Otherwise a new work order (`Created`), its priority from the
//!    anomaly's severity and the equipment's criticality
//!    ([`crate::work_orders::priority_for`]).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::anomalies::{self, Anomaly};
use crate::db::Tx;
use crate::error::Result;
use crate::readings::{self, TrendQuery, TrendSeries};

/// Process anomalies (a measured value is abnormal).
pub const PROCESS: &str = "process";
/// Instrument faults (stuck, dropouts, out of physical range).
pub const SENSOR_HEALTH: &str = "sensor_health";
/// Forecast threshold crossings.
pub const PREDICTED: &str = "predicted";
/// Anomalies across several sensors of one asset.
pub const MULTIVARIATE: &str = "multivariate";

/// Longest failure mode accepted.
pub const MAX_FAILURE_MODE_CHARS: usize = 200;

/// The knobs of the auto-work-order policy. Defaults: 1 h cooldown, more
/// than 3 anomalies in 6 h is flapping, 2 h quiet period before an auto
/// work order completed as a true alarm may be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoPolicy {
    /// After an auto work order of a key was completed, verified or
    /// cancelled, new anomalies of that key within this time are suppressed.
    pub cooldown: Duration,
    /// The window flapping is counted in.
    pub flap_window: Duration,
    /// More than this many anomalies of a key in `flap_window` while none of
    /// its work orders is open: the raise is suppressed as flapping.
    pub flap_limit: u32,
    /// How long the signal must stay normal after a true-alarm completion
    /// before the work order may be verified (by
    /// [`crate::work_orders::verify_quiet_auto`] or by a person).
    pub verify_quiet: Duration,
}

impl Default for AutoPolicy {
    fn default() -> Self {
        Self {
            cooldown: Duration::hours(1),
            flap_window: Duration::hours(6),
            flap_limit: 3,
            verify_quiet: Duration::hours(2),
        }
    }
}

/// Why an anomaly raised no work order of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SuppressReason {
    /// The key's last auto work order closed less than the cooldown ago.
    Cooldown { until: DateTime<Utc> },
    /// The key keeps coming back while no work order is open.
    Flapping,
    /// An ancestor's open auto work order of the same family covers it
    /// (the anomaly was recorded on that work order).
    #[serde(rename_all = "camelCase")]
    ParentAlarm { work_order_id: Uuid },
}

impl SuppressReason {
    /// The value of `anomalies.suppressed_reason`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SuppressReason::Cooldown { .. } => "cooldown",
            SuppressReason::Flapping => "flapping",
            SuppressReason::ParentAlarm { .. } => "parent_alarm",
        }
    }
}

/// The family of a failure mode: the part before the first `:` (all of it
/// when there is none).
pub fn family(failure_mode: &str) -> &str {
    failure_mode.split(':').next().unwrap_or(failure_mode)
}

/// Whether an ancestor's alarm of the same family may silence this family.
pub fn silenced_by_parent(family: &str) -> bool {
    family != SENSOR_HEALTH
}

/// Whether a true-alarm completion of this family (a repair) asks for a
/// baseline refit: the learned "normal" of the asset has changed.
pub fn refits_after_repair(family: &str) -> bool {
    family == PROCESS || family == MULTIVARIATE
}

/// `d` in words for notes: "2 h", "2 h 5 min", "90 min" → "1 h 30 min",
/// "45 s" (whole minutes from a minute on).
pub fn humanize(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (h, m) = (s / 3600, s % 3600 / 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// When the cooldown after the key's last closed auto work order ends, if
/// that is after `now` (cancelled: from the cancellation; completed or
/// verified: from the completion).
pub(crate) async fn cooldown_until(
    tx: &mut Tx,
    equipment_id: Uuid,
    failure_mode: &str,
    cooldown: Duration,
) -> Result<Option<DateTime<Utc>>> {
    let closed: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(CASE WHEN status = 'cancelled' THEN updated_at ELSE completed_at END)
         FROM work_orders
         WHERE source = 'auto' AND equipment_id = $1 AND failure_mode = $2
           AND status IN ('completed', 'verified', 'cancelled')",
    )
    .bind(equipment_id)
    .bind(failure_mode)
    .fetch_one(&mut **tx)
    .await?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&mut **tx).await?;
    Ok(closed.map(|c| c + cooldown).filter(|until| *until > now))
}

/// Anomalies of the key that started in `[at - window, at)` while none of
/// its work orders was open: those that raised a work order, or were
/// suppressed by cooldown or flapping (not the current one).
pub(crate) async fn flap_count(
    tx: &mut Tx,
    anomaly_id: Uuid,
    equipment_id: Uuid,
    failure_mode: &str,
    at: DateTime<Utc>,
    window: Duration,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM anomalies a
         WHERE a.equipment_id = $1 AND a.failure_mode = $2 AND a.id <> $3
           AND a.started_at >= $4 - make_interval(secs => $5) AND a.started_at <= $4
           AND (a.suppressed_reason IN ('cooldown', 'flapping')
                OR EXISTS (SELECT 1 FROM work_orders w WHERE w.anomaly_id = a.id AND w.source = 'auto'))",
    )
    .bind(equipment_id)
    .bind(failure_mode)
    .bind(anomaly_id)
    .bind(at)
    .bind(window.num_milliseconds() as f64 / 1000.0)
    .fetch_one(&mut **tx)
    .await?)
}

/// Past (closed) anomalies of `kind` on an asset, newest first, at most
/// `limit` (1-100), each with the work order it raised or joined and that
/// work order's verdict when one was given — evidence of "has this happened
/// before, and was it real?". Open episodes (the one being raised) are left
/// out.
pub async fn similar_anomalies(
    tx: &mut Tx,
    equipment_id: Uuid,
    kind: &str,
    limit: i64,
) -> Result<Vec<Anomaly>> {
    anomalies::similar(tx, equipment_id, kind, limit.clamp(1, 100)).await
}

/// A sensor's readings in `[from, to)` as at most `max_points` min/avg/max
/// buckets (evidence around an anomaly). The trend query of
/// [`crate::readings::trend`], reused: raw readings or rollups, exact.
pub async fn readings_window(
    tx: &mut Tx,
    sensor_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_points: i64,
) -> Result<TrendSeries> {
    let q = TrendQuery {
        from: Some(from),
        to: Some(to),
        max_points: Some(max_points),
        lttb: false,
    };
    readings::trend(tx, sensor_id, &q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("process:temp-high"), "process");
        assert_eq!(family("sensor_health:stuck:abc"), "sensor_health");
        assert_eq!(family("multivariate"), "multivariate");
        assert_eq!(family(""), "");
        assert!(!silenced_by_parent(SENSOR_HEALTH));
        assert!(silenced_by_parent(PROCESS));
        assert!(refits_after_repair(MULTIVARIATE) && !refits_after_repair(PREDICTED));
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(humanize(Duration::hours(2)), "2 h");
        assert_eq!(humanize(Duration::minutes(90)), "1 h 30 min");
        assert_eq!(humanize(Duration::minutes(5)), "5 min");
        assert_eq!(humanize(Duration::seconds(45)), "45 s");
    }
}
