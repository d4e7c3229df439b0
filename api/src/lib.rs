//! The MaintAInPro HTTP API: axum routes over the models crate, JWT auth,
//! the JSON envelope, OpenAPI, probes and the web UI.
//!
//! # Layout
//! - [`server`]: [`router`] (the whole app, for tests) and [`run`] (serve
//!   until cancelled, graceful shutdown).
//! - [`config`]: [`ApiConfig`]; [`state`]: [`AppState`] shared by handlers.
//! - [`auth`]: access tokens and the [`auth::AuthUser`] extractor, which
//!   yields the tenant (organization from the token, never from the client).
//! - [`routes`]: one module per resource under `/api/v1`, plus probes.
//! - [`envelope`] and [`error`]: the success and error envelopes; every
//!   error maps to a status in one place ([`ApiError`]).
//! - [`extract`]: JSON, path and query extractors whose rejections use the envelope.
//! - [`middleware`]: request ids and envelope-wrapping of framework errors.
//! - [`metrics`]: `GET /metrics` (Prometheus text format) and the HTTP counters.
//! - [`openapi`]: the generated OpenAPI document (`/api/v1/openapi.json`).
//! - [`webhook_delivery`]: the webhook delivery worker and target checks.
//!
//! Every handler works inside one tenant transaction (`Db::tenant`), so
//! row-level security hides other organizations' rows: a foreign id is a 404.

pub mod access;
pub mod auth;
pub mod config;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod webhook_delivery;

pub use config::ApiConfig;
pub use error::ApiError;
pub use openapi::openapi;
pub use server::{probes_router, router, run, run_probes};
pub use state::AppState;
