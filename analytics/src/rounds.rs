//! The timer of background jobs that visit every organization each round.

use std::time::Duration;

use maintainpro_models::Db;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) struct Rounds {
    db: Db,
    ticker: Interval,
    shutdown: CancellationToken,
    /// Which job, for log lines.
    job: &'static str,
}

impl Rounds {
    pub(crate) fn new(db: Db, every: Duration, shutdown: CancellationToken, job: &'static str) -> Self {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            db,
            ticker,
            shutdown,
            job,
        }
    }

    /// Waits for the next round and returns the organizations to visit;
    /// `None` once shutdown is requested. A round whose organization list
    /// cannot be read is logged and skipped.
    pub(crate) async fn next(&mut self) -> Option<Vec<Uuid>> {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = self.ticker.tick() => {}
            }
            match self.db.organization_ids().await {
                Ok(ids) => return Some(ids),
                Err(e) => tracing::warn!(job = self.job, error = %e, "cannot list organizations"),
            }
        }
    }
}
