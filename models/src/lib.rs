//! Domain types, rules and persistence shared by every MaintAInPro service.
//!
//! # Layout
//! - [`db`]: connection pools, migrations, and the tenant transaction every
//!   request and job runs in (`set_config('app.org_id', …)` + row-level security).
//! - [`cluster`]: a self-managed local PostgreSQL for `maintainpro up` and tests.
//! - [`auth`]: roles, the permission matrix, password hashing.
//! - [`organizations`], [`users`], [`equipment`], [`devices`] (devices and sensors):
//!   the tenant's registry.
//! - [`readings`]: trend queries over telemetry (ingest owns the writer).
//! - [`anomalies`]: anomaly episodes found by analytics.
//! - [`activity`]: work-order comments and labour time logs.
//! - [`work_orders`]: the work-order state machine and the one function that
//!   creates work orders, for people and for analytics alike.
//! - [`dead_letters`], [`events`]: rejected input, and the change outbox.
//! - [`page`]: cursor pagination.
//! - [`error`]: the crate's error type.
//! - `testkit` (feature): a real PostgreSQL and a fresh database per test.

pub mod activity;
pub mod anomalies;
pub mod auth;
pub mod cluster;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod equipment;
pub mod error;
pub mod events;
pub mod organizations;
pub mod page;
pub mod readings;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod users;
pub mod work_orders;

pub use db::{Actor, Db, Tenant, Tx};
pub use error::{FieldError, ModelError, Result};
