//! The JSON envelope around every API response, and the request id it carries.
//!
//! Success: `{"success": true, "data": …, "meta": {"requestId", "nextCursor"?}}`.
//! Errors are built by [`crate::error::ApiError`]. The request id is set per
//! request by the request-id middleware in a task-local, so responses built
//! anywhere inside a handler carry the same id as the `x-request-id` header.

use std::future::Future;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maintainpro_models::page::Page;
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id.
pub(crate) async fn with_request_id<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Response metadata.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Pass as `cursor` to fetch the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Same as the `x-request-id` response header.
    pub request_id: Option<String>,
}

/// A successful response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always true.
    pub success: bool,
    pub data: T,
    pub meta: Meta,
}

/// What handlers return: data, a status and optional paging.
#[derive(Debug)]
pub struct ApiResponse<T> {
    status: StatusCode,
    data: T,
    next_cursor: Option<String>,
}

impl<T> ApiResponse<T> {
    /// 200 OK.
    pub fn ok(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
            next_cursor: None,
        }
    }

    /// 201 Created.
    pub fn created(data: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            data,
            next_cursor: None,
        }
    }
}

impl<T> ApiResponse<Vec<T>> {
    /// A page: `data` is the items, `meta.nextCursor` the cursor.
    pub fn page(page: Page<T>) -> Self {
        Self {
            status: StatusCode::OK,
            data: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        let body = Envelope {
            success: true,
            data: self.data,
            meta: Meta {
                next_cursor: self.next_cursor,
                request_id: current_request_id(),
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
