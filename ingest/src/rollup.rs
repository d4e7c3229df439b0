//! The rollup loop that runs next to the writer: keeps `readings_1m` and
//! `readings_1h` up to date on plain PostgreSQL (see
//! `maintainpro_models::rollups`); on TimescaleDB it returns at once, the
//! continuous aggregates do the work.
//!
//! It runs where ingest runs because that is where readings (and late
//! replays) arrive: rollups keep pace with ingest, deployments without
//! analytics still get them, and several ingest instances share the work
//! (per-organization advisory lock, pending rows claimed with SKIP LOCKED).

use std::time::Duration;

use maintainpro_models::{rollups, Db};
use tokio_util::sync::CancellationToken;

/// How often pending minutes are rolled up. Trend queries read pending
/// minutes from raw data, so this trades rollup work for query work only:
/// each round also rebuilds the current hour of every busy sensor from its
/// minutes, so rounds much more frequent than this cost CPU for nothing
/// (at 1 Hz, 15 s leaves ≤ ~75 raw rows per sensor for a query to read).
pub const ROLLUP_INTERVAL: Duration = Duration::from_secs(15);

/// Touched time rolled up per transaction (the rest waits for the next one).
pub fn budget() -> chrono::Duration {
    chrono::Duration::hours(6)
}

/// Rolls up every `interval` until `shutdown`.
pub async fn run(db: Db, interval: Duration, shutdown: CancellationToken) {
    let by_service = loop {
        match rollups::kept_by_service(&db).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, "rollups: cannot ask the database; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    };
    if !by_service {
        tracing::info!("readings rollups are TimescaleDB continuous aggregates; the rollup loop is idle");
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match rollups::roll_up_all(&db, budget()).await {
            Ok(done) => {
                for (org, r) in done {
                    tracing::debug!(organization = %org, claimed = r.claimed, minutes = r.minutes, hours = r.hours, "readings rolled up");
                }
            }
            Err(e) => tracing::warn!(error = %e, "readings rollup failed; will retry"),
        }
    }
}
