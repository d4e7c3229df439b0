//! Domain types, rules and persistence shared by every MaintAInPro service.
//!
//! # Layout
//! - [`db`]: connection pools, migrations, and the tenant transaction every
//!   request and job runs in (`set_config('app.org_id', …)` + row-level security).
//! - [`cluster`]: a self-managed local PostgreSQL for `maintainpro up` and tests.
//! - [`auth`]: roles, the permission matrix, password hashing.
//! - [`organizations`], [`users`], [`equipment`], [`devices`] (devices and sensors):
//!   the tenant's registry.
//! - [`sessions`]: sign-in sessions (rotating refresh tokens, reuse detection).
//! - [`reports`]: MTBF, MTTR, availability, backlog and cost per asset.
//! - [`requests`]: work requests, approved into work orders or rejected.
//! - [`readings`]: trend queries over telemetry (ingest owns the writer);
//!   [`rollups`]: the 1-minute / 1-hour rollups on plain PostgreSQL; [`lttb`]: downsampling.
//! - [`anomalies`]: anomaly episodes found by analytics.
//! - [`auto_policy`]: when an anomaly raises, joins or is kept from raising
//!   an auto work order (cooldown, flapping, parent alarms), verification
//!   after a quiet period, and evidence helpers; [`tuning`]: detector
//!   threshold scales learned from verdicts and baseline refit requests.
//! - [`activity`]: work-order comments and labour time logs.
//! - [`attachments`]: files on work orders (type sniffed from content, limits, storage).
//! - [`audit`]: the audit log (written by a database trigger).
//! - [`work_orders`]: the work-order state machine and the one function that
//!   creates work orders, for people and for analytics alike; assignees,
//!   edits and what completing a work order requires.
//! - [`failure_codes`], [`checklists`], [`downtime`]: a work order's problem /
//!   cause / remedy codes (per-organization catalog), checklist, and
//!   equipment downtime with a reason.
//! - [`dead_letters`], [`events`]: rejected input, and the change outbox.
//! - [`parts`]: parts catalog, stock locations, the append-only stock ledger,
//!   reservations for work orders and parts cost per work order.
//! - [`webhooks`]: webhook endpoints, the delivery log and its retry schedule.
//! - [`page`]: cursor pagination.
//! - [`pm`]: preventive-maintenance schedules and their generation job.
//! - [`error`]: the crate's error type.
//! - `testkit` (feature): a real PostgreSQL and a fresh database per test.

pub mod activity;
pub mod anomalies;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod auto_policy;
pub mod checklists;
pub mod cluster;
pub mod db;
pub mod dead_letters;
pub mod devices;
pub mod downtime;
pub mod equipment;
pub mod error;
pub mod events;
pub mod failure_codes;
pub mod lttb;
pub mod organizations;
pub mod page;
pub mod parts;
pub mod pm;
pub mod readings;
pub mod reports;
pub mod requests;
pub mod rollups;
pub mod sessions;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tuning;
pub mod users;
pub mod webhooks;
pub mod work_orders;

pub use db::{Actor, Db, Tenant, Tx};
pub use error::{FieldError, ModelError, Result};
