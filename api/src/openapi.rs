//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the models' schemas.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode, ErrorEnvelope};
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MaintAInPro API",
        description = "IoT telemetry, predictive maintenance and CMMS. Every response is an envelope: \
                       `{success, data, meta}` or `{success: false, error: {code, message, details, timestamp, requestId}}`. \
                       Sign in with POST /api/v1/auth/login and send `Authorization: Bearer <accessToken>`."
    ),
    paths(
        routes::export::work_orders_csv,
        routes::export::equipment_csv,
        routes::reports::reliability,
        routes::pm::list,
        routes::pm::get_one,
        routes::pm::create,
        routes::requests::create,
        routes::requests::list,
        routes::requests::get_one,
        routes::requests::approve,
        routes::requests::reject,
        routes::audit::list,
        routes::equipment::update,
        routes::equipment::subtree,
        routes::equipment::path,
        routes::qr::equipment_qr_svg,
        routes::qr::equipment_qr_png,
        routes::activity::list_comments,
        routes::activity::add_comment,
        routes::activity::time_sheet,
        routes::activity::log_time,
        routes::attachments::list,
        routes::attachments::upload,
        routes::attachments::download,
        routes::attachments::delete,
        routes::auth::login,
        routes::auth::me,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::accept_invite,
        routes::equipment::list,
        routes::equipment::tree,
        routes::equipment::get_one,
        routes::equipment::create,
        routes::devices::list,
        routes::devices::create,
        routes::devices::get_one,
        routes::devices::rotate_credentials,
        routes::devices::revoke,
        routes::sensors::list,
        routes::sensors::get_one,
        routes::sensors::create,
        routes::sensors::readings_buckets,
        routes::sensors::readings_many,
        routes::sensors::readings_csv,
        routes::sensors::latest,
        routes::readings_ws::readings_ws,
        routes::anomalies::list,
        routes::anomalies::get_one,
        routes::replay::run,
        routes::work_orders::list,
        routes::work_orders::statuses,
        routes::work_orders::get_one,
        routes::work_orders::create,
        routes::work_orders::change_status,
        routes::work_orders::history,
        routes::work_orders::update,
        routes::work_orders::set_assignees,
        routes::failure_codes::list,
        routes::failure_codes::create,
        routes::failure_codes::update,
        routes::checklists::list,
        routes::checklists::replace,
        routes::checklists::tick,
        routes::downtime::list,
        routes::downtime::record,
        routes::downtime::update,
        routes::parts::list,
        routes::parts::create,
        routes::parts::get_one,
        routes::parts::update,
        routes::parts::receive,
        routes::parts::issue,
        routes::parts::adjust,
        routes::parts::return_stock,
        routes::parts::movements,
        routes::parts::list_locations,
        routes::parts::create_location,
        routes::parts::reserve,
        routes::parts::release,
        routes::parts::work_order_parts,
        routes::dead_letters::list,
        routes::users::list,
        routes::users::create,
        routes::users::get_one,
        routes::users::invite,
        routes::users::update,
        routes::users::deactivate,
        routes::users::activate,
        routes::users::reinvite,
        routes::system::openapi_json,
        routes::system::healthz,
        routes::system::readyz,
        routes::webhooks::list,
        routes::webhooks::create,
        routes::webhooks::delete,
        routes::webhooks::deliveries,
        routes::ws::events_ws,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorCode, maintainpro_models::FieldError, maintainpro_models::webhooks::EventMessage)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "signing in and the caller's profile"),
        (name = "equipment", description = "assets and their hierarchy"),
        (name = "audit", description = "who changed what (administrators)"),
        (name = "requests", description = "work requests and their approval"),
        (name = "preventive-maintenance", description = "calendar and condition schedules"),
        (name = "reports", description = "reliability and cost"),
        (name = "devices", description = "MQTT devices and rejected telemetry"),
        (name = "sensors", description = "sensors and their trends"),
        (name = "anomalies", description = "anomaly episodes found by analytics"),
        (name = "work-orders", description = "work orders and their status machine"),
        (name = "parts", description = "parts catalog, stock ledger and work-order reservations"),
        (name = "users", description = "the organization's users"),
        (name = "webhooks", description = "signed HTTP callbacks for events, and their delivery log"),
        (name = "events", description = "live events over WebSocket"),
        (name = "system", description = "probes and this document"),
    )
)]
struct ApiDoc;

/// Adds the `bearer` (JWT) security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
