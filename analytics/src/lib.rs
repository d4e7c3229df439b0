//! Analytics: streaming anomaly detection over committed readings, and the
//! anomaly → work-order policy.
//!
//! # Layout
//! - [`stream`]: the per-sensor streaming detector (seasonal robust
//!   residuals, likelihood layer → anomaly probability; pure).
//! - [`detector`]: the live episode detector built on it (z gate, limits,
//!   stuck values; one alarm per episode).
//! - [`replay`]: a detector setting over stored history, writing nothing.
//! - [`nab`]: the NAB harness and scorer port (`maintainpro eval nab`).
//! - [`worker`]: visits every organization on a timer, feeds new readings
//!   to the detectors, records anomaly episodes and raises auto work orders
//!   through `maintainpro_models::work_orders::raise_auto`.
//! - [`multivariate`]: the per-asset PCA detector (T² / Q with sensor
//!   contributions), fitted with linfa; [`assets`] runs it over an asset's
//!   sensors (rows, healthy-period fit, refits, episodes).
//! - [`predict`]: failure prediction by trend regression (limit crossing
//!   with a confidence band) and windowed features, with polars.
//! - [`jobs`]: scheduled jobs — preventive maintenance and escalation.
//! - `rounds`: the timer both loops share (every organization, every tick).

pub mod assets;
pub mod detector;
pub mod jobs;
pub mod multivariate;
pub mod nab;
pub mod predict;
pub mod replay;
mod rounds;
pub mod stream;
pub mod worker;

pub use detector::DetectorConfig;
pub use worker::{run, AnalyticsConfig, AnalyticsStats};

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error(transparent)]
    Model(#[from] maintainpro_models::ModelError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
