//! Scheduled jobs: preventive-maintenance generation and escalation of
//! overdue work, for every organization in turn. Safe to run in several
//! instances: each step claims its rows with `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use chrono::Utc;
use maintainpro_models::{pm, work_orders, Db};
use tokio_util::sync::CancellationToken;

use crate::rounds::Rounds;

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// How often to look for due work.
    pub interval: Duration,
    /// Overdue work is escalated once per this period.
    pub escalate_every: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            escalate_every: Duration::from_secs(24 * 3600),
        }
    }
}

/// Runs the scheduled jobs until `shutdown` is cancelled.
pub async fn run(db: Db, config: JobsConfig, shutdown: CancellationToken) {
    let every = chrono::Duration::from_std(config.escalate_every).unwrap_or(chrono::Duration::days(1));
    let mut rounds = Rounds::new(db.clone(), config.interval, shutdown, "scheduler");
    while let Some(orgs) = rounds.next().await {
        for org in orgs {
            let now = Utc::now();
            match pm::run_due(&db, org, now).await {
                Ok(made) => {
                    for wo in made {
                        tracing::info!(organization = %org, work_order = %wo.code, "preventive work order generated");
                    }
                }
                Err(e) => {
                    tracing::warn!(organization = %org, error = %e, "preventive maintenance step failed")
                }
            }
            match work_orders::escalate_overdue(&db, org, now, every).await {
                Ok(up) => {
                    for wo in up {
                        tracing::info!(organization = %org, work_order = %wo.code, priority = %wo.priority, "overdue work order escalated");
                    }
                }
                Err(e) => tracing::warn!(organization = %org, error = %e, "escalation step failed"),
            }
        }
    }
}
