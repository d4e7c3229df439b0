//! Request-wide middleware: the request id, and the guarantee that every
//! `/api` error leaves in the envelope (axum's and tower-http's own
//! rejections, like 405 or an over-long body, are plain text otherwise).

use axum::extract::Request;
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::envelope::with_request_id;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT;

/// The request id header, read from clients and always sent back.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Takes the client's `x-request-id` when it is sane, or makes one; makes
/// it visible to handlers and the trace span; echoes it on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let header = HeaderValue::from_str(&id).ok();
    if let Some(h) = &header {
        req.headers_mut().insert(X_REQUEST_ID.clone(), h.clone());
    }
    let mut res = with_request_id(id, next.run(req)).await;
    if let Some(h) = header {
        res.headers_mut().insert(X_REQUEST_ID.clone(), h);
    }
    res
}

fn is_sane_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Rewrites non-JSON error responses under `/api` into the error envelope.
pub async fn envelope_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    if !is_api || !(status.is_client_error() || status.is_server_error()) || is_json(&res) {
        return res;
    }
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: BODY_LIMIT },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType("unsupported media type".into()),
        s if s.is_client_error() => {
            ApiError::BadRequest(s.canonical_reason().unwrap_or("bad request").to_lowercase())
        }
        s => ApiError::Internal(format!("unhandled {s} response")),
    };
    let allow = res.headers().get(ALLOW).cloned();
    let mut out = err.into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(ALLOW, allow);
    }
    out
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(is_sane_id("0b6e0f0e-3c1f-4e7e-9b1a-2b7e8f9a0c1d"));
        assert!(is_sane_id("req:42"));
        assert!(!is_sane_id(""));
        assert!(!is_sane_id("has space"));
        assert!(!is_sane_id(&"x".repeat(129)));
    }
}
