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
        routes::activity::list_comments,
        routes::activity::add_comment,
        routes::activity::time_sheet,
        routes::activity::log_time,
        routes::equipment::update,
        routes::equipment::subtree,
        routes::equipment::path,
        routes::auth::login,
        routes::auth::me,
        routes::equipment::list,
        routes::equipment::tree,
        routes::equipment::get_one,
        routes::equipment::create,
        routes::devices::list,
        routes::devices::create,
        routes::sensors::list,
        routes::sensors::get_one,
        routes::sensors::create,
        routes::sensors::readings_buckets,
        routes::anomalies::list,
        routes::anomalies::get_one,
        routes::work_orders::list,
        routes::work_orders::get_one,
        routes::work_orders::create,
        routes::work_orders::change_status,
        routes::dead_letters::list,
        routes::users::list,
        routes::users::create,
        routes::system::openapi_json,
        routes::system::healthz,
        routes::system::readyz,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorCode, maintainpro_models::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "signing in and the caller's profile"),
        (name = "equipment", description = "assets and their hierarchy"),
        (name = "devices", description = "MQTT devices and rejected telemetry"),
        (name = "sensors", description = "sensors and their trends"),
        (name = "anomalies", description = "anomaly episodes found by analytics"),
        (name = "work-orders", description = "work orders and their status machine"),
        (name = "users", description = "the organization's users"),
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
