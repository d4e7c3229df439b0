//! Asset QR codes and the small request form they open: the codes (SVG with
//! an optional printable caption, PNG at a chosen size) encode
//! `{public_url}/request?asset={equipment id}`, and `/request` is a
//! self-contained phone page that signs in and files a work request for it.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maintainpro_models::equipment;
use qrcode::{Color, QrCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Path, Query};
use crate::state::AppState;

/// Light modules around the code, as the QR specification asks for.
pub const QUIET_ZONE: usize = 4;
/// PNG edge length when `size` is not given, and its bounds.
pub const DEFAULT_PNG_SIZE: u32 = 512;
pub const MIN_PNG_SIZE: u32 = 128;
pub const MAX_PNG_SIZE: u32 = 1024;
/// The images depend on the caller's organization: browsers may keep them briefly, proxies not at all.
const IMAGE_CACHE: &str = "private, max-age=300";

const REQUEST_HTML: &str = include_str!("../../assets/request.html");
const REQUEST_JS: &str = include_str!("../../assets/request.js");
const REQUEST_CSS: &str = include_str!("../../assets/request.css");

/// `/api/v1` routes of this module (the access middleware guards them).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/equipment/{id}/qr.svg", get(equipment_qr_svg))
        .route("/api/v1/equipment/{id}/qr.png", get(equipment_qr_png))
}

/// The request form and its assets, outside `/api` (they need no sign-in:
/// the page signs in through the API itself).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/request", get(request_page))
        .route("/request.js", get(request_js))
        .route("/request.css", get(request_css))
}

/// The address a code for `asset` opens.
pub fn request_url(public_base: &str, asset: Uuid) -> String {
    format!("{}/request?asset={asset}", public_base.trim_end_matches('/'))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SvgQuery {
    /// Print the asset tag and name under the code (default true).
    pub caption: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PngQuery {
    /// Edge length in pixels, clamped to 128–1024 (default 512).
    pub size: Option<u32>,
}

/// A PNG image, for the OpenAPI document (`string`, `format: binary`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PngImage(pub Vec<u8>);

/// The asset's QR code as SVG, with its tag and name underneath for labels.
/// The code opens the request form for this asset (`{public_url}/request?asset={id}`).
#[utoipa::path(
    get, path = "/api/v1/equipment/{id}/qr.svg", operation_id = "getEquipmentQrSvg", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id"), SvgQuery), security(("bearer" = ["equipment:view"])),
    responses(
        (status = 200, content_type = "image/svg+xml", body = String, description = "the code, scalable"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)
    )
)]
pub async fn equipment_qr_svg(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<SvgQuery>,
) -> Result<Response, ApiError> {
    let asset = load(&state, &auth, id).await?;
    let url = request_url(state.config.public_base(), id);
    let code = encode(&url)?;
    let caption = query
        .caption
        .unwrap_or(true)
        .then_some((asset.asset_tag.as_str(), asset.name.as_str()));
    let svg = render_svg(&code, &url, caption);
    Ok(image("image/svg+xml", svg.into_bytes()))
}

/// The asset's QR code as a black-and-white PNG of `size` pixels square.
/// The code opens the request form for this asset (`{public_url}/request?asset={id}`).
#[utoipa::path(
    get, path = "/api/v1/equipment/{id}/qr.png", operation_id = "getEquipmentQrPng", tag = "equipment",
    params(("id" = Uuid, Path, description = "equipment id"), PngQuery), security(("bearer" = ["equipment:view"])),
    responses(
        (status = 200, content_type = "image/png", body = inline(PngImage), description = "the code as PNG"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)
    )
)]
pub async fn equipment_qr_png(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<PngQuery>,
) -> Result<Response, ApiError> {
    load(&state, &auth, id).await?;
    let code = encode(&request_url(state.config.public_base(), id))?;
    let size = query
        .size
        .unwrap_or(DEFAULT_PNG_SIZE)
        .clamp(MIN_PNG_SIZE, MAX_PNG_SIZE);
    // Deflating up to a megapixel is CPU work: keep it off the async workers.
    let png = tokio::task::spawn_blocking(move || render_png(&code, size))
        .await
        .map_err(|e| ApiError::Internal(format!("png task: {e}")))??;
    Ok(image("image/png", png))
}

/// The asset, or 404 when it is unknown or another organization's.
async fn load(state: &AppState, auth: &AuthUser, id: Uuid) -> Result<equipment::Equipment, ApiError> {
    let mut tx = state.tenant_tx(auth).await?;
    let asset = equipment::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(asset)
}

fn encode(url: &str) -> Result<QrCode, ApiError> {
    QrCode::new(url.as_bytes()).map_err(|e| ApiError::Internal(format!("cannot encode {url} as QR: {e}")))
}

fn image(content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMAGE_CACHE)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // An SVG opened on its own is a document: it may run nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Dark modules of `code` as (x, y) rows, without the quiet zone.
fn rows(code: &QrCode) -> Vec<Vec<bool>> {
    let width = code.width();
    code.to_colors()
        .chunks(width)
        .map(|row| row.iter().map(|c| *c == Color::Dark).collect())
        .collect()
}

/// The code as SVG in module units (one unit per module, quiet zone
/// included), optionally with the asset tag and name printed underneath.
/// `url` (what the code encodes) goes into the `<desc>` for readers.
pub fn render_svg(code: &QrCode, url: &str, caption: Option<(&str, &str)>) -> String {
    let modules = rows(code);
    let side = code.width() + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (y, row) in modules.iter().enumerate() {
        let mut x = 0;
        while x < row.len() {
            if !row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < row.len() && row[x] {
                x += 1;
            }
            let (px, py, run) = (start + QUIET_ZONE, y + QUIET_ZONE, x - start);
            path.push_str(&format!("M{px} {py}h{run}v1h-{run}z"));
        }
    }
    let caption_height = if caption.is_some() { 9 } else { 0 };
    let height = side + caption_height;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {height}\" \
         width=\"{w}\" height=\"{h}\" shape-rendering=\"crispEdges\">\
         <desc>{url}</desc><rect width=\"{side}\" height=\"{height}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/>",
        url = xml_escape(url),
        w = side * 8,
        h = height * 8,
    );
    if let Some((tag, name)) = caption {
        let center = side as f32 / 2.0;
        // Roughly what fits across the code at these font sizes.
        let fits = (side as f32 / 1.5) as usize;
        svg.push_str(&format!(
            "<text x=\"{center}\" y=\"{y1}\" font-family=\"sans-serif\" font-size=\"3.2\" \
             font-weight=\"bold\" text-anchor=\"middle\">{tag}</text>\
             <text x=\"{center}\" y=\"{y2}\" font-family=\"sans-serif\" font-size=\"2.6\" \
             text-anchor=\"middle\">{name}</text>",
            y1 = side + 2,
            y2 = side + 6,
            tag = xml_escape(&truncate(tag, fits)),
            name = xml_escape(&truncate(name, fits + fits / 4)),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Text safe inside an XML element or attribute; control characters (not
/// allowed in XML 1.0) become spaces.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The code as an 8-bit grayscale PNG `size` pixels square (larger only if
/// the code itself needs more than one pixel per module): whole pixels per
/// module, centred, the rest white around the quiet zone.
pub fn render_png(code: &QrCode, size: u32) -> Result<Vec<u8>, ApiError> {
    let modules = rows(code);
    let side = code.width() + 2 * QUIET_ZONE;
    let size = size as usize;
    let scale = (size / side).max(1);
    let dim = size.max(side * scale);
    let offset = (dim - side * scale) / 2 + QUIET_ZONE * scale;
    let mut pixels = vec![255u8; dim * dim];
    for (y, row) in modules.iter().enumerate() {
        for (x, _) in row.iter().enumerate().filter(|(_, dark)| **dark) {
            for dy in 0..scale {
                let start = (offset + y * scale + dy) * dim + offset + x * scale;
                pixels[start..start + scale].fill(0);
            }
        }
    }
    let png_err = |e: png::EncodingError| ApiError::Internal(format!("png: {e}"));
    let edge = u32::try_from(dim).map_err(|_| ApiError::Internal("png too large".into()))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, edge, edge);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(&pixels).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}

/// Headers of the embedded pages and their assets: no framing, no sniffing,
/// scripts and styles only from this origin, requests only to it.
pub(crate) fn embedded(content_type: &'static str, body: &'static str) -> Response {
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                       img-src 'self' blob: data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // Small and versioned with the binary: always revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The request form (`/request?asset={equipment id}`).
pub async fn request_page() -> Response {
    embedded("text/html; charset=utf-8", REQUEST_HTML)
}

async fn request_js() -> Response {
    embedded("text/javascript; charset=utf-8", REQUEST_JS)
}

async fn request_css() -> Response {
    embedded("text/css; charset=utf-8", REQUEST_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(url: &str) -> QrCode {
        encode(url).expect("encodes")
    }

    #[test]
    fn the_url_points_at_the_request_form() {
        let id = Uuid::nil();
        let want = "https://cmms.example.com/request?asset=00000000-0000-0000-0000-000000000000";
        assert_eq!(request_url("https://cmms.example.com/", id), want);
        assert_eq!(request_url("https://cmms.example.com", id), want);
    }

    #[test]
    fn svg_draws_exactly_the_modules_of_the_url() {
        let url = request_url("http://localhost:8080", Uuid::now_v7());
        let qr = code(&url);
        let svg = render_svg(&qr, &url, None);
        let side = qr.width() + 2 * QUIET_ZONE;
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
        // Replay the path's runs onto a grid and compare with a fresh encoding.
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("path");
        let mut grid = vec![vec![false; qr.width()]; qr.width()];
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let (xy, rest) = run.split_once('h').expect("run");
            let (x, y) = xy.split_once(' ').expect("x y");
            let len: usize = rest.split('v').next().expect("len").parse().expect("number");
            let (x, y): (usize, usize) = (x.parse().expect("x"), y.parse().expect("y"));
            for cell in &mut grid[y - QUIET_ZONE][x - QUIET_ZONE..x - QUIET_ZONE + len] {
                *cell = true;
            }
        }
        let expected = QrCode::new(url.as_bytes()).expect("encodes");
        assert_eq!(
            grid.concat(),
            expected
                .to_colors()
                .iter()
                .map(|c| *c == Color::Dark)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn caption_is_escaped() {
        let qr = code("http://localhost/request?asset=x");
        let svg = render_svg(
            &qr,
            "u",
            Some(("P-<1>", "Pump \"A\" & <script>alert(1)</script>\u{7}")),
        );
        assert!(!svg.contains("<script"));
        assert!(svg.contains("P-&lt;1&gt;"));
        assert!(svg.contains("Pump &quot;A&quot; &amp; &lt;script&gt;"));
        assert!(!svg.contains('\u{7}'));
    }

    #[test]
    fn long_captions_are_cut() {
        assert_eq!(truncate("  short ", 10), "short");
        assert_eq!(truncate("abcdefghijkl", 5), "abcd…");
    }

    #[test]
    fn png_has_the_requested_size_and_the_modules() {
        let qr = code("http://localhost:8080/request?asset=0190a4b2-8c1e-7000-8000-000000000001");
        let png = render_png(&qr, 300).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (300, 300));
        let side = qr.width() + 2 * QUIET_ZONE;
        let scale = 300 / side;
        let offset = (300 - side * scale) / 2 + QUIET_ZONE * scale;
        // Sample the centre of each module.
        for y in 0..qr.width() {
            for x in 0..qr.width() {
                let px = buf[(offset + y * scale + scale / 2) * 300 + offset + x * scale + scale / 2];
                let dark = qr[(x, y)] == Color::Dark;
                assert_eq!(px == 0, dark, "module {x},{y}");
            }
        }
        // The quiet zone is white.
        assert!(buf[..offset * 300].iter().all(|p| *p == 255));
    }
}
