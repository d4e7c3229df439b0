//! Work-order attachments: upload (multipart/form-data), list, download and
//! delete. The type is sniffed from the bytes (see
//! [`maintainpro_models::attachments`]); downloads are always served as
//! attachments with `nosniff` and a sandboxing CSP, so a stored file never
//! runs in the API's origin.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maintainpro_models::attachments::{self, Attachment, Refused};
use maintainpro_models::FieldError;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::envelope::{ApiResponse, Envelope};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::Path;
use crate::state::AppState;

/// Room for the multipart framing (boundaries, part headers) on top of the
/// largest accepted file.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/work-orders/{id}/attachments", get(list).post(upload))
        .route(
            "/api/v1/work-orders/{id}/attachments/{attachmentId}",
            get(download).delete(delete),
        )
}

/// The upload form: one file.
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The file: PNG, JPEG, GIF, WebP, PDF, plain text or CSV (by default;
    /// recognized from its content, not its name or declared type), at most
    /// 10 MiB by default. Its filename is kept, sanitized.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A file's bytes.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// A visible work order's attachments (metadata only), oldest first.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/attachments", operation_id = "listWorkOrderAttachments", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")), security(("bearer" = ["work_orders:view"])),
    responses((status = 200, body = Envelope<Vec<Attachment>>), (status = 404, body = ErrorEnvelope))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<Attachment>>, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let items = attachments::list(&mut tx, &auth.tenant, id).await?;
    tx.commit().await?;
    Ok(ApiResponse::ok(items))
}

/// Attaches a file, sent as `multipart/form-data` with one field `file`
/// (what a browser's `FormData` sends). The type is recognized from the
/// content; anything else is refused with 415 naming the accepted types. A
/// file over the size limit is refused with 413 as soon as the limit is
/// crossed, and nothing is stored. A work order holds at most 50 files by
/// default (409 beyond). Records `work_order.attachment_added`.
#[utoipa::path(
    post, path = "/api/v1/work-orders/{id}/attachments", operation_id = "uploadWorkOrderAttachment", tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = ["work_orders:update"])),
    responses(
        (status = 201, body = Envelope<Attachment>), (status = 400, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "the work order holds the most attachments allowed", body = ErrorEnvelope),
        (status = 413, description = "the file exceeds the size limit", body = ErrorEnvelope),
        (status = 415, description = "not multipart/form-data, or a file type that is not accepted", body = ErrorEnvelope),
        (status = 422, description = "no `file` field, or an empty file", body = ErrorEnvelope)
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    req: Request,
) -> Result<ApiResponse<Attachment>, ApiError> {
    let limits = &state.config.attachments;
    if !is_multipart(req.headers()) {
        return Err(ApiError::UnsupportedMediaType(
            "expected a multipart/form-data body with a `file` field".into(),
        ));
    }
    // Refuse (404, 409) before receiving the file; `add` checks again. No
    // transaction stays open while the client sends the body.
    let mut tx = state.tenant_tx(&auth).await?;
    attachments::can_attach(&mut tx, &auth.tenant, id, limits).await?;
    tx.commit().await?;

    let (filename, data) = read_file_field(req, limits.max_bytes).await?;
    let file = attachments::check(filename.as_deref(), data, limits).map_err(refused)?;
    let mut tx = state.tenant_tx(&auth).await?;
    let attachment = attachments::add(&mut tx, &auth.tenant, id, file, limits).await?;
    tx.commit().await?;
    Ok(ApiResponse::created(attachment))
}

/// Downloads an attachment: its bytes with the stored type, always as a
/// download (`Content-Disposition: attachment`), with `nosniff` and a
/// sandboxing `Content-Security-Policy`.
#[utoipa::path(
    get, path = "/api/v1/work-orders/{id}/attachments/{attachmentId}", operation_id = "downloadWorkOrderAttachment",
    tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id"), ("attachmentId" = Uuid, Path, description = "attachment id")),
    security(("bearer" = ["work_orders:view"])),
    responses(
        (status = 200, description = "the file, with the type recognized at upload",
         content(
             (FileBytes = "image/png"), (FileBytes = "image/jpeg"), (FileBytes = "image/gif"),
             (FileBytes = "image/webp"), (FileBytes = "application/pdf"), (FileBytes = "text/plain"),
             (FileBytes = "text/csv")
         ),
         headers(
             ("Content-Disposition" = String, description = "attachment; filename=\"…\"; filename*=UTF-8''…"),
             ("X-Content-Type-Options" = String, description = "nosniff")
         )),
        (status = 404, body = ErrorEnvelope)
    )
)]
pub async fn download(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, attachment_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    let (attachment, data) = attachments::download(&mut tx, &auth.tenant, id, attachment_id).await?;
    tx.commit().await?;
    let content_type = HeaderValue::from_str(&attachment.content_type)
        .map_err(|e| ApiError::Internal(format!("stored content type: {e}")))?;
    let disposition = HeaderValue::from_str(&content_disposition(&attachment.filename))
        .map_err(|e| ApiError::Internal(format!("content disposition: {e}")))?;
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox; default-src 'none'"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
    ];
    Ok((headers, data).into_response())
}

/// Deletes an attachment: the uploader may, and so may a role with
/// `work_orders:delete`. Records `work_order.attachment_removed`.
#[utoipa::path(
    delete, path = "/api/v1/work-orders/{id}/attachments/{attachmentId}", operation_id = "deleteWorkOrderAttachment",
    tag = "work-orders",
    params(("id" = Uuid, Path, description = "work order id"), ("attachmentId" = Uuid, Path, description = "attachment id")),
    security(("bearer" = ["work_orders:update"])),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope))
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, attachment_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.tenant_tx(&auth).await?;
    attachments::delete(&mut tx, &auth.tenant, id, attachment_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Reads the first field named `file` (its filename and bytes), refusing
/// with 413 as soon as the file passes `max_bytes` or the whole body passes
/// `max_bytes` plus [`MULTIPART_OVERHEAD`]; other fields are skipped.
async fn read_file_field(mut req: Request, max_bytes: usize) -> Result<(Option<String>, Vec<u8>), ApiError> {
    let too_large = || ApiError::PayloadTooLarge { limit: max_bytes };
    let body_limit = max_bytes.saturating_add(MULTIPART_OVERHEAD);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > body_limit as u64) {
        return Err(too_large());
    }
    // This route's own body limit replaces the small global one.
    DefaultBodyLimit::max(body_limit).apply(&mut req);
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {}", e.body_text())))?;
    let read_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest(format!("cannot read the multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(read_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().map(str::to_owned);
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(read_error)? {
            if data.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        return Ok((filename, data));
    }
    Err(ApiError::Validation {
        message: "a multipart field named `file` is required".into(),
        details: vec![FieldError::new("file", "required")],
    })
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Empty => ApiError::Validation {
            message: r.to_string(),
            details: vec![FieldError::new("file", "must not be empty")],
        },
        Refused::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
        Refused::Unsupported { .. } => ApiError::UnsupportedMediaType(r.to_string()),
    }
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`
/// (RFC 6266 / RFC 8187): every browser gets a usable name, none gets a way
/// to break out of the header.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for b in filename.bytes() {
        // RFC 8187 attr-char is left as is; everything else is %XX.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_and_keeps_unicode() {
        assert_eq!(
            content_disposition("pump.png"),
            "attachment; filename=\"pump.png\"; filename*=UTF-8''pump.png"
        );
        assert_eq!(
            content_disposition("Prüf bericht.pdf"),
            "attachment; filename=\"Pr_f bericht.pdf\"; filename*=UTF-8''Pr%C3%BCf%20bericht.pdf"
        );
        assert_eq!(
            content_disposition("a\"b\\c%d;e.txt"),
            "attachment; filename=\"a_b_c_d;e.txt\"; filename*=UTF-8''a%22b%5Cc%25d%3Be.txt"
        );
        assert!(HeaderValue::from_str(&content_disposition("日本語.txt")).is_ok());
    }

    #[test]
    fn multipart_content_type_is_recognized() {
        let headers = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            h
        };
        assert!(is_multipart(&headers("multipart/form-data; boundary=x")));
        assert!(is_multipart(&headers("Multipart/Form-Data;boundary=x")));
        assert!(!is_multipart(&headers("application/json")));
        assert!(!is_multipart(&HeaderMap::new()));
    }
}
