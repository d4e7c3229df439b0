//! Who may call which operation: read from the OpenAPI document and enforced
//! by one middleware before any handler runs.
//!
//! Each operation's `security` requirement is the single declaration of its
//! access rule: no requirement means public (sign-in, probes, this
//! document); `("bearer" = [])` means any signed-in user of the
//! organization; `("bearer" = ["work_orders:create"])` means the caller's
//! role must hold that permission (the matrix is
//! [`maintainpro_models::auth::Role::can`]). OpenAPI 3.1 allows such role
//! names on non-OAuth schemes, so the document tells clients exactly what
//! the server enforces.
//!
//! The check runs before the body is read, so a caller without the
//! permission gets 403 whatever they send (never a 422 that hints at the
//! body's shape). A route that is not in the document is refused (fail
//! closed), so forgetting to document an operation cannot leave it open.
//! WebSocket upgrades of `…/ws` routes may carry the token as browsers can
//! (`?token=` or `Sec-WebSocket-Protocol: bearer, <token>`, see
//! [`crate::auth::ws_token`]); everything else needs the Authorization header.
//! Rules that depend on the row or the body (a requester sees only their
//! own requests; assigning needs `work_orders:assign`) stay in handlers and
//! models.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::UPGRADE;
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maintainpro_models::auth::Permission;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::OpenApi;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// What an operation requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials (the handler may still check some, as the WebSocket does).
    Public,
    /// A valid access token.
    SignedIn,
    /// A valid access token whose role holds the permission.
    Permission(Permission),
}

/// One documented operation and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    /// As in the document and the router: `/api/v1/work-orders/{id}`.
    pub path: String,
    pub operation_id: Option<String>,
    pub access: Access,
}

/// The access rule of every documented operation, by method and path.
#[derive(Debug, Clone, Default)]
pub struct AccessTable {
    rules: HashMap<(Method, String), Access>,
}

impl AccessTable {
    /// Reads the rules from `doc`; a security requirement naming an unknown
    /// permission (a typo in an annotation) is an error.
    pub fn from_openapi(doc: &OpenApi) -> Result<Self, ApiError> {
        let rules = operations(doc)?
            .into_iter()
            .map(|op| ((op.method, op.path), op.access))
            .collect();
        Ok(Self { rules })
    }

    /// The table of this API's document, read once. Should the document
    /// hold an unreadable rule (which [`check_document`] reports at start-up
    /// and a unit test catches), the table is empty and every route is
    /// refused: failing closed.
    pub fn api() -> &'static AccessTable {
        static TABLE: OnceLock<AccessTable> = OnceLock::new();
        TABLE.get_or_init(|| match AccessTable::from_openapi(&crate::openapi::openapi()) {
            Ok(table) => table,
            Err(e) => {
                tracing::error!(error = %e, "the OpenAPI document's access rules are invalid; refusing every route");
                AccessTable::default()
            }
        })
    }

    /// The rule for a routed request, if the operation is documented.
    pub fn rule(&self, method: &Method, path: &str) -> Option<Access> {
        // axum answers HEAD with the GET handler.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.rules.get(&(method.clone(), path.to_owned())).copied()
    }

    fn knows_path(&self, path: &str) -> bool {
        self.rules.keys().any(|(_, p)| p == path)
    }
}

/// Fails when an operation's security requirement cannot be read, so the
/// server refuses to start rather than serve with a broken rule.
pub fn check_document() -> Result<(), ApiError> {
    AccessTable::from_openapi(&crate::openapi::openapi()).map(drop)
}

/// Every operation of `doc` with its access rule.
pub fn operations(doc: &OpenApi) -> Result<Vec<Operation>, ApiError> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            (HttpMethod::Get, Method::GET, &item.get),
            (HttpMethod::Post, Method::POST, &item.post),
            (HttpMethod::Put, Method::PUT, &item.put),
            (HttpMethod::Patch, Method::PATCH, &item.patch),
            (HttpMethod::Delete, Method::DELETE, &item.delete),
        ];
        for (_, method, op) in methods {
            let Some(op) = op else { continue };
            out.push(Operation {
                method,
                path: path.clone(),
                operation_id: op.operation_id.clone(),
                access: access_of(op, path)?,
            });
        }
    }
    Ok(out)
}

fn access_of(op: &utoipa::openapi::path::Operation, path: &str) -> Result<Access, ApiError> {
    let Some(requirements) = op.security.as_ref().filter(|s| !s.is_empty()) else {
        return Ok(Access::Public);
    };
    // The requirement serializes as {"bearer": ["scope", …]}.
    let value = serde_json::to_value(requirements)
        .map_err(|e| ApiError::Config(format!("cannot read the security of {path}: {e}")))?;
    let scopes: Vec<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|req| req.get("bearer"))
        .filter_map(|scopes| scopes.as_array())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    match scopes.as_slice() {
        [] => Ok(Access::SignedIn),
        [one] => one
            .parse::<Permission>()
            .map(Access::Permission)
            .map_err(|_| ApiError::Config(format!("{path}: unknown permission '{one}' in its security"))),
        _ => Err(ApiError::Config(format!(
            "{path}: name one permission per operation, not {}",
            scopes.len()
        ))),
    }
}

/// The middleware: authenticates and authorizes by the operation's rule,
/// and hands the caller to the handler's [`AuthUser`] extractor.
pub async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(path) = path else {
        return next.run(req).await;
    };
    let rule = match state.access.rule(req.method(), &path) {
        Some(rule) => rule,
        None if state.access.knows_path(&path) => return ApiError::MethodNotAllowed.into_response(),
        None => {
            tracing::error!(%path, method = %req.method(), "route missing from the OpenAPI document; refused");
            return ApiError::Internal(format!("undocumented operation {} {path}", req.method()))
                .into_response();
        }
    };
    let auth = match rule {
        Access::Public => return next.run(req).await,
        Access::SignedIn | Access::Permission(_) => {
            let verified = if is_websocket_upgrade(req.headers()) && path.ends_with("/ws") {
                AuthUser::from_ws_request(req.headers(), query_token(req.uri()).as_deref(), &state)
            } else {
                AuthUser::from_headers(req.headers(), &state)
            };
            match verified {
                Ok(auth) => auth,
                Err(e) => return e.into_response(),
            }
        }
    };
    if let Access::Permission(permission) = rule {
        if let Err(e) = auth.require(permission) {
            return e.into_response();
        }
    }
    req.extensions_mut().insert(auth);
    next.run(req).await
}

/// A WebSocket handshake (`Upgrade: websocket`).
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// The request's `?token=`, decoded.
fn query_token(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_operation_has_a_valid_rule() {
        let doc = crate::openapi::openapi();
        let ops = operations(&doc).expect("every security requirement names a known permission");
        assert!(
            ops.len() > 60,
            "the document lists the API ({} operations)",
            ops.len()
        );
        let rule = |m: Method, p: &str| {
            ops.iter()
                .find(|o| o.method == m && o.path == p)
                .map(|o| o.access)
        };
        assert_eq!(rule(Method::POST, "/api/v1/auth/login"), Some(Access::Public));
        assert_eq!(rule(Method::GET, "/api/v1/me"), Some(Access::SignedIn));
        assert_eq!(
            rule(Method::POST, "/api/v1/work-orders"),
            Some(Access::Permission(Permission::WorkOrdersCreate))
        );
        assert_eq!(
            rule(Method::GET, "/api/v1/audit-log"),
            Some(Access::Permission(Permission::AuditView))
        );
    }
}
