//! MaintAInPro's composition root: wires the service crates into one
//! system. `main.rs` only parses the command line and calls in here.
//!
//! # Layout
//! - [`system`]: start/stop the whole system (database, broker, ingest,
//!   analytics, API, optional demo fleet) — used by `up`, tests, benchmarks.
//! - [`broker`]: the embedded MQTT broker (rumqttd).
//! - [`database`]: `DATABASE_URL` or a self-managed local PostgreSQL.
//! - [`demo`]: the demo organization, its fleet and simulated telemetry.
//! - [`bench`], [`bench_trend`], [`bench_detector`]: `maintainpro bench …`
//!   benchmarks.
//! - [`eval`]: `maintainpro eval nab DIR`, detector quality on NAB data.
//! - [`telemetry`]: logging setup.

pub mod bench;
pub mod bench_detector;
pub mod bench_trend;
pub mod broker;
pub mod database;
pub mod demo;
pub mod eval;
pub mod frontdoor;
pub mod system;
pub mod telemetry;
