//! Analytics: streaming anomaly detection over committed readings, and the
//! anomaly → work-order policy.
//!
//! # Layout
//! - [`detector`]: the per-sensor streaming detector (pure, unit-tested).
//! - [`worker`]: visits every organization on a timer, feeds new readings
//!   to the detectors, records anomaly episodes and raises auto work orders
//!   through `maintainpro_models::work_orders::raise_auto`.
//! - [`jobs`]: scheduled jobs — preventive maintenance and escalation.
//! - `rounds`: the timer both loops share (every organization, every tick).

pub mod detector;
pub mod jobs;
mod rounds;
pub mod worker;

pub use worker::{run, AnalyticsConfig, AnalyticsStats};

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error(transparent)]
    Model(#[from] maintainpro_models::ModelError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
