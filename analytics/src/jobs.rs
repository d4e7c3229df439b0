//! Scheduled jobs: preventive-maintenance generation, escalation of
//! overdue work and verification of repaired auto work orders whose signal
//! stayed normal, for every organization in turn. Safe to run in several
//! instances: each step claims its rows with `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use chrono::Utc;
use maintainpro_models::{pm, work_orders, Db, Tenant};
use tokio_util::sync::CancellationToken;

use crate::rounds::Rounds;

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// How often to look for due work.
    pub interval: Duration,
    /// Overdue work is escalated once per this period.
    pub escalate_every: Duration,
    /// An auto work order completed as a true alarm is verified once its
    /// signal stayed normal this long.
    pub verify_quiet: chrono::Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            escalate_every: Duration::from_secs(24 * 3600),
            verify_quiet: work_orders::AutoPolicy::default().verify_quiet,
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
            if let Err(e) = verify_quiet(&db, org, now, config.verify_quiet).await {
                tracing::warn!(organization = %org, error = %e, "verification step failed");
            }
        }
    }
}

/// Verifies the organization's repaired auto work orders whose signal stayed
/// normal for `quiet`, and notes those whose failure came back.
async fn verify_quiet(
    db: &Db,
    org: uuid::Uuid,
    now: chrono::DateTime<Utc>,
    quiet: chrono::Duration,
) -> Result<(), maintainpro_models::ModelError> {
    let tenant = Tenant::system(org, "analytics");
    let mut tx = db.tenant_for(&tenant).await?;
    let done = work_orders::verify_quiet_auto(&mut tx, &tenant, now, quiet).await?;
    tx.commit().await?;
    for wo in done.verified {
        tracing::info!(organization = %org, work_order = %wo.code, "auto work order verified: signal stayed normal");
    }
    for wo in done.recurred {
        tracing::warn!(organization = %org, work_order = %wo.code, "failure came back after completion");
    }
    Ok(())
}
