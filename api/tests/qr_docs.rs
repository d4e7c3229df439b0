//! Asset QR codes (SVG and PNG encode the request-form URL of the asset,
//! tenancy and access rules), the request form at `/request`, and the API
//! explorer at `/api/docs`: served with their content types and CSP, and
//! their scripts pass `node --check` when node is installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use axum::Router;
use common::{add_user, app, call, login};
use http_body_util::BodyExt;
use maintainpro_api::access::{operations, Access};
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::auth::{Permission, Role};
use maintainpro_models::testkit::{seed_org, test_db};
use qrcode::{Color, QrCode};
use tower::ServiceExt;
use uuid::Uuid;

const PUBLIC: &str = "https://cmms.example.test";

async fn get(app: &Router, uri: &str, token: Option<&str>) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The dark modules a QR code for `url` has, row by row.
fn modules(url: &str) -> (usize, Vec<bool>) {
    let code = QrCode::new(url.as_bytes()).unwrap();
    (
        code.width(),
        code.to_colors().iter().map(|c| *c == Color::Dark).collect(),
    )
}

/// Minimal well-formedness: every element opened is closed in order.
fn assert_balanced_xml(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "closing </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        let text = &rest[..start];
        assert!(!text.contains('>'), "stray '>' in text {text:?}");
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

/// Replays the SVG path's horizontal runs onto a grid of `width` modules.
fn svg_grid(svg: &str, width: usize) -> Vec<bool> {
    let d = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut grid = vec![false; width * width];
    for run in d.split('M').filter(|r| !r.is_empty()) {
        let (xy, rest) = run.split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let (x, y): (usize, usize) = (x.parse::<usize>().unwrap() - 4, y.parse::<usize>().unwrap() - 4);
        let len: usize = rest.split('v').next().unwrap().parse().unwrap();
        grid[y * width + x..y * width + x + len].fill(true);
    }
    grid
}

#[tokio::test]
async fn asset_qr_codes_encode_the_request_form_url() {
    let t = test_db().await;
    let a = seed_org(&t.db, "qr-a", &[]).await;
    let b = seed_org(&t.db, "qr-b", &[]).await;
    add_user(&t.db, &a, "req@qr-a.test", Role::Requester).await;
    let mut config = ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), "s".repeat(40));
    config.public_url = format!("{PUBLIC}/");
    let app = router(AppState::new(t.db.clone(), config));
    let admin = login(&app, &a.admin.email).await;
    let requester = login(&app, "req@qr-a.test").await;
    let foreign = login(&app, &b.admin.email).await;
    let id = a.equipment.id;
    let url = format!("{PUBLIC}/request?asset={id}");
    let (width, expected) = modules(&url);

    // SVG: the modules of the URL, the URL in <desc>, the caption escaped.
    let (status, headers, body) =
        get(&app, &format!("/api/v1/equipment/{id}/qr.svg"), Some(&requester)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "image/svg+xml");
    assert!(header(&headers, "cache-control").starts_with("private"));
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    let svg = String::from_utf8(body).unwrap();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert_balanced_xml(&svg);
    assert!(svg.contains(&format!("<desc>{url}</desc>")), "{svg}");
    assert!(svg.contains(">P-101</text>"), "caption with the asset tag: {svg}");
    assert_eq!(svg_grid(&svg, width), expected);

    let (_, _, plain) = get(
        &app,
        &format!("/api/v1/equipment/{id}/qr.svg?caption=false"),
        Some(&admin),
    )
    .await;
    let plain = String::from_utf8(plain).unwrap();
    assert!(!plain.contains("<text"));
    assert_balanced_xml(&plain);

    // PNG: magic, the requested (clamped) size, and the same modules.
    for (query, edge) in [
        ("", 512),
        ("?size=300", 300),
        ("?size=10", 128),
        ("?size=99999", 1024),
    ] {
        let (status, headers, png) = get(
            &app,
            &format!("/api/v1/equipment/{id}/qr.png{query}"),
            Some(&requester),
        )
        .await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert!(header(&headers, "cache-control").starts_with("private"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (edge, edge), "{query}");
        let edge = edge as usize;
        let side = width + 8;
        let scale = edge / side;
        let offset = (edge - side * scale) / 2 + 4 * scale;
        let sampled: Vec<bool> = (0..width * width)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                buf[(offset + y * scale + scale / 2) * edge + offset + x * scale + scale / 2] == 0
            })
            .collect();
        assert_eq!(sampled, expected, "{query}");
    }
    let (status, _, body) = get(
        &app,
        &format!("/api/v1/equipment/{id}/qr.png?size=big"),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // Another organization's asset, an unknown one, a malformed id.
    for ext in ["svg", "png"] {
        let uri = format!("/api/v1/equipment/{id}/qr.{ext}");
        let (status, _, body) = get(&app, &uri, Some(&foreign)).await;
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "NOT_FOUND");
        let unknown = format!("/api/v1/equipment/{}/qr.{ext}", Uuid::now_v7());
        assert_eq!(get(&app, &unknown, Some(&admin)).await.0, 404);
        assert_eq!(
            get(&app, &format!("/api/v1/equipment/nope/qr.{ext}"), Some(&admin))
                .await
                .0,
            400
        );
        // The access middleware: no token or a bad one is 401 before anything is read.
        assert_eq!(get(&app, &uri, None).await.0, 401);
        assert_eq!(get(&app, &uri, Some("not-a-token")).await.0, 401);
    }
}

#[test]
fn qr_operations_are_documented_with_equipment_view() {
    // Every role holds equipment:view today, so no caller gets the 403 the
    // middleware would give; the rule itself is checked here.
    let ops = operations(&maintainpro_api::openapi()).unwrap();
    for path in ["/api/v1/equipment/{id}/qr.svg", "/api/v1/equipment/{id}/qr.png"] {
        let op = ops
            .iter()
            .find(|o| o.path == path && o.method == Method::GET)
            .unwrap();
        assert_eq!(op.access, Access::Permission(Permission::EquipmentView), "{path}");
    }
    let doc = serde_json::to_value(maintainpro_api::openapi()).unwrap();
    let ok = |ext: &str, ty: &str| {
        let path = format!("/api/v1/equipment/{{id}}/qr.{ext}");
        doc["paths"][path]["get"]["responses"]["200"]["content"][ty]["schema"].clone()
    };
    assert_eq!(ok("png", "image/png")["format"], "binary");
    assert_eq!(ok("svg", "image/svg+xml")["type"], "string");
    assert!(
        !ops.iter()
            .any(|o| o.path.contains("/docs") || o.path == "/request"),
        "pages are not API operations"
    );
}

#[tokio::test]
async fn request_form_and_api_docs_are_served_with_a_csp() {
    let t = test_db().await;
    let app = app(&t.db);
    let pages = [
        ("/request", "text/html"),
        ("/request.js", "text/javascript"),
        ("/request.css", "text/css"),
        ("/api/docs", "text/html"),
        ("/api/docs/app.js", "text/javascript"),
        ("/api/docs/app.css", "text/css"),
    ];
    let mut bodies = std::collections::HashMap::new();
    for (uri, ty) in pages {
        // No sign-in needed: the pages sign in through the API themselves.
        let (status, headers, body) = get(&app, uri, None).await;
        assert_eq!(status, 200, "{uri}");
        assert!(header(&headers, "content-type").starts_with(ty), "{uri}");
        let csp = header(&headers, "content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe"), "{uri}: {csp}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        bodies.insert(uri, String::from_utf8(body).unwrap());
    }

    // The pages load only their own script and stylesheet: no inline code, no CDN.
    let request = &bodies["/request"];
    assert!(request.contains("src=\"/request.js\"") && request.contains("href=\"/request.css\""));
    let docs = &bodies["/api/docs"];
    assert!(docs.contains("src=\"/api/docs/app.js\"") && docs.contains("href=\"/api/docs/app.css\""));
    for (uri, body) in &bodies {
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{uri} loads nothing remote"
        );
        assert!(!body.contains("innerHTML"), "{uri} never parses data as HTML");
        assert!(!body.contains("<script>"), "{uri} has no inline script");
    }
    assert!(
        !bodies["/request"].contains("style="),
        "inline styles would break the CSP"
    );
    assert!(
        !bodies["/api/docs"].contains("style="),
        "inline styles would break the CSP"
    );

    // The explorer reads the document; the form uses the endpoints it needs.
    let docs_js = &bodies["/api/docs/app.js"];
    assert!(docs_js.contains("/api/v1/openapi.json"));
    assert!(docs_js.contains("/api/v1/auth/login"));
    let form_js = &bodies["/request.js"];
    for needle in [
        "/api/v1/auth/login",
        "/api/v1/equipment/",
        "/api/v1/requests",
        "equipmentId",
    ] {
        assert!(form_js.contains(needle), "request.js uses {needle}");
    }

    // Next to the explorer, /api stays a JSON 404; the document it reads is public.
    let (status, body) = call(&app, Method::GET, "/api/docs/nope", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(
        call(&app, Method::GET, "/api/v1/openapi.json", None, None)
            .await
            .0,
        200
    );

    node_check(&[("request.js", form_js), ("docs.js", docs_js)]);
}

/// Syntax-checks the served scripts with `node --check` when node is installed.
fn node_check(scripts: &[(&str, &String)]) {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("node not found: skipping the syntax check of the embedded scripts");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mp-qr-docs-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, source) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, source).unwrap();
        let out = std::process::Command::new("node")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "node --check {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
