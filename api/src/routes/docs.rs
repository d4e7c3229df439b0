//! The interactive API explorer at `/api/docs`: a self-contained page (HTML,
//! JS and CSS embedded in the binary, nothing fetched from elsewhere) that
//! reads `/api/v1/openapi.json`, lists the operations with their parameters,
//! schemas and required permission, and lets a signed-in user try them.
//!
//! These routes are not API operations: they sit outside the `/api/v1`
//! router (and its access middleware) and are not in the OpenAPI document.

use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::routes::qr::embedded;
use crate::state::AppState;

const DOCS_HTML: &str = include_str!("../../assets/docs.html");
const DOCS_JS: &str = include_str!("../../assets/docs.js");
const DOCS_CSS: &str = include_str!("../../assets/docs.css");

/// `/api/docs` and its script and stylesheet. Static paths, so they win
/// over the `/api/{*rest}` catch-all 404.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/docs", get(page))
        .route("/api/docs/app.js", get(script))
        .route("/api/docs/app.css", get(style))
}

/// The explorer page.
pub async fn page() -> Response {
    embedded("text/html; charset=utf-8", DOCS_HTML)
}

async fn script() -> Response {
    embedded("text/javascript; charset=utf-8", DOCS_JS)
}

async fn style() -> Response {
    embedded("text/css; charset=utf-8", DOCS_CSS)
}
