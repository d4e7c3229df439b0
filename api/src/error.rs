//! The API's error type and its one mapping onto HTTP statuses and the error
//! envelope. Internal causes are logged here and never sent to clients.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maintainpro_models::{FieldError, ModelError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::current_request_id;

/// Machine-readable error codes of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    NotFound,
    ValidationError,
    Unauthorized,
    Forbidden,
    Conflict,
    InvalidTransition,
    BadRequest,
    PayloadTooLarge,
    /// The body's type is not one the operation accepts (415).
    UnsupportedMediaType,
    /// Too many attempts; the `Retry-After` header says when to try again.
    RateLimited,
    InternalError,
}

/// The `error` member of a failed response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// Invalid fields, for validation errors; otherwise null.
    pub details: Option<Vec<FieldError>>,
    pub timestamp: DateTime<Utc>,
    /// Same as the `x-request-id` response header.
    pub request_id: Option<String>,
}

/// A failed response: `{"success": false, "error": {…}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    pub error: ErrorBody,
}

/// Everything that can go wrong in the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain or persistence error from the models crate.
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body does not fit the expected shape.
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Too many attempts; answered with `Retry-After`.
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("server i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Model(ModelError::Database(e))
    }
}

impl ApiError {
    /// Status, code, client-facing message and field details.
    fn parts(&self) -> (StatusCode, ErrorCode, String, Option<Vec<FieldError>>) {
        use ErrorCode as C;
        match self {
            ApiError::Model(m) => match m {
                ModelError::NotFound(_) => (StatusCode::NOT_FOUND, C::NotFound, m.to_string(), None),
                ModelError::Conflict(msg) => (StatusCode::CONFLICT, C::Conflict, msg.clone(), None),
                ModelError::Validation(details) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    C::ValidationError,
                    "validation failed".into(),
                    Some(details.clone()),
                ),
                ModelError::InvalidTransition { .. } => {
                    (StatusCode::CONFLICT, C::InvalidTransition, m.to_string(), None)
                }
                ModelError::InvalidCredentials => {
                    (StatusCode::UNAUTHORIZED, C::Unauthorized, m.to_string(), None)
                }
                ModelError::Forbidden(msg) => (StatusCode::FORBIDDEN, C::Forbidden, msg.clone(), None),
                ModelError::Database(_)
                | ModelError::Migrate(_)
                | ModelError::PasswordHash(_)
                | ModelError::Join(_) => internal(),
            },
            ApiError::Unauthorized(msg) => (StatusCode::UNAUTHORIZED, C::Unauthorized, msg.clone(), None),
            ApiError::Forbidden(msg) => (StatusCode::FORBIDDEN, C::Forbidden, msg.clone(), None),
            ApiError::BadRequest(msg) => (StatusCode::BAD_REQUEST, C::BadRequest, msg.clone(), None),
            ApiError::UnsupportedMediaType(msg) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                C::UnsupportedMediaType,
                msg.clone(),
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                C::BadRequest,
                self.to_string(),
                None,
            ),
            ApiError::Validation { message, details } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                C::ValidationError,
                message.clone(),
                Some(details.clone()),
            ),
            ApiError::NotFound(msg) => (StatusCode::NOT_FOUND, C::NotFound, msg.clone(), None),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                C::PayloadTooLarge,
                self.to_string(),
                None,
            ),
            ApiError::RateLimited { message, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                C::RateLimited,
                message.clone(),
                None,
            ),
            ApiError::Internal(_) | ApiError::Config(_) | ApiError::Io(_) => internal(),
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The envelope code this error maps to.
    pub fn code(&self) -> ErrorCode {
        self.parts().1
    }
}

fn internal() -> (StatusCode, ErrorCode, String, Option<Vec<FieldError>>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "internal server error".into(),
        None,
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let body = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code,
                message,
                details,
                timestamp: Utc::now(),
                request_id: current_request_id(),
            },
        };
        let mut res = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::RateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up, at least one.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_errors_map_to_statuses() {
        let cases = [
            (
                ApiError::from(ModelError::NotFound("work order")),
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
            ),
            (
                ModelError::InvalidTransition {
                    from: "completed".into(),
                    to: "open".into(),
                }
                .into(),
                StatusCode::CONFLICT,
                ErrorCode::InvalidTransition,
            ),
            (
                ModelError::invalid("title", "must not be empty").into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationError,
            ),
            (
                ModelError::InvalidCredentials.into(),
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
            ),
            (
                ModelError::Database(sqlx::Error::PoolTimedOut).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn internal_causes_are_not_leaked() {
        let err = ApiError::from(ModelError::Database(sqlx::Error::Protocol(
            "secret detail".into(),
        )));
        let (_, _, message, _) = err.parts();
        assert_eq!(message, "internal server error");
    }
}
