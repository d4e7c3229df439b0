//! The `/api/v1` routes, one module per resource, merged here.

use axum::Router;

use crate::state::AppState;

pub mod activity;
pub mod anomalies;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod checklists;
pub mod dead_letters;
pub mod devices;
pub mod docs;
pub mod downtime;
pub mod equipment;
pub mod export;
pub mod failure_codes;
pub mod parts;
pub mod pm;
pub mod qr;
pub mod readings_ws;
pub mod replay;
pub mod reports;
pub mod requests;
pub mod sensors;
pub mod system;
pub mod users;
pub mod webhooks;
pub mod work_orders;
pub mod ws;

/// Every `/api/v1/…` route.
pub fn api_v1() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(equipment::router())
        .merge(qr::router())
        .merge(devices::router())
        .merge(sensors::router())
        .merge(anomalies::router())
        .merge(replay::router())
        .merge(work_orders::router())
        .merge(failure_codes::router())
        .merge(checklists::router())
        .merge(downtime::router())
        .merge(parts::router())
        .merge(activity::router())
        .merge(attachments::router())
        .merge(audit::router())
        .merge(requests::router())
        .merge(pm::router())
        .merge(reports::router())
        .merge(export::router())
        .merge(dead_letters::router())
        .merge(users::router())
        .merge(webhooks::router())
        .merge(ws::router())
        .merge(readings_ws::router())
        .merge(system::api_router())
}
