//! Work-order attachments through the API as a browser would send them
//! (multipart/form-data): types sniffed from content, size and count
//! limits, downloads with safe headers, tenancy, requester visibility,
//! delete rules, events and the audit log.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request};
use axum::Router;
use common::{add_user, app, call, login};
use http_body_util::BodyExt;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_models::attachments::{FileType, Limits};
use maintainpro_models::auth::Role;
use maintainpro_models::testkit::{seed_org, test_db};
use maintainpro_models::Db;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

/// A complete 1×1 transparent PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\nIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";

/// A minimal PDF (an empty document).
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n\
2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n";

/// The start of an x86-64 ELF executable.
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0";

const HTML: &[u8] = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";

const BOUNDARY: &str = "----mp-test-boundary-7MA4YWxkTrZu0gW";

/// One multipart part.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: &'a str,
    data: &'a [u8],
}

fn file(filename: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    multipart(&[Part {
        name: "file",
        filename: Some(filename),
        content_type,
        data,
    }])
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match p.filename {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\n",
                p.name
            ),
            None => format!("Content-Disposition: form-data; name=\"{}\"\r\n", p.name),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(format!("Content-Type: {}\r\n\r\n", p.content_type).as_bytes());
        body.extend_from_slice(p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A request through the router; returns status, headers and raw body.
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: &str,
    content_type: Option<&str>,
    content_length: Option<usize>,
    body: Vec<u8>,
) -> (u16, HeaderMap, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(len) = content_length {
        req = req.header("content-length", len);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// POSTs a multipart body (without Content-Length, as a streamed upload).
async fn upload(app: &Router, token: &str, wo: &str, body: Vec<u8>) -> (u16, Value) {
    let (status, _, bytes) = send(
        app,
        Method::POST,
        &format!("/api/v1/work-orders/{wo}/attachments"),
        token,
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        None,
        body,
    )
    .await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn download(app: &Router, token: &str, wo: &str, id: &str) -> (u16, HeaderMap, Bytes) {
    let uri = format!("/api/v1/work-orders/{wo}/attachments/{id}");
    send(app, Method::GET, &uri, token, None, None, Vec::new()).await
}

async fn list(app: &Router, token: &str, wo: &str) -> (u16, Value) {
    call(
        app,
        Method::GET,
        &format!("/api/v1/work-orders/{wo}/attachments"),
        Some(token),
        None,
    )
    .await
}

async fn delete(app: &Router, token: &str, wo: &str, id: &str) -> u16 {
    let uri = format!("/api/v1/work-orders/{wo}/attachments/{id}");
    call(app, Method::DELETE, &uri, Some(token), None).await.0
}

async fn work_order(app: &Router, token: &str, title: &str) -> String {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v1/work-orders",
        Some(token),
        Some(json!({ "title": title })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_string()
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap().to_string())
        .collect()
}

async fn count(db: &Db, org: Uuid, sql: &str) -> i64 {
    let mut tx = db.tenant(org).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn upload_list_download_and_refusals() {
    let t = test_db().await;
    let a = seed_org(&t.db, "att-a", &[]).await;
    let b = seed_org(&t.db, "att-b", &[]).await;
    let org = a.tenant.org_id;
    let app = app(&t.db);
    let admin = login(&app, &a.admin.email).await;
    let admin_b = login(&app, &b.admin.email).await;
    let wo = work_order(&app, &admin, "Pump vibrates").await;

    // A PNG and a PDF; the client's claimed types are ignored (the PDF
    // claims to be octet-stream), the content decides.
    let (status, png) = upload(&app, &admin, &wo, file("pump.png", "image/png", PNG)).await;
    assert_eq!(status, 201, "{png}");
    assert_eq!(png["data"]["contentType"], "image/png");
    assert_eq!(png["data"]["filename"], "pump.png");
    assert_eq!(png["data"]["sizeBytes"], PNG.len());
    assert_eq!(png["data"]["workOrderId"], wo.as_str());
    assert_eq!(png["data"]["uploadedBy"], a.admin.id.to_string());
    let sha = png["data"]["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let (status, pdf) = upload(
        &app,
        &admin,
        &wo,
        file(
            "C:\\scans\\Prüfbericht\u{202E}.pdf",
            "application/octet-stream",
            PDF,
        ),
    )
    .await;
    assert_eq!(status, 201, "{pdf}");
    assert_eq!(pdf["data"]["contentType"], "application/pdf");
    assert_eq!(
        pdf["data"]["filename"], "Prüfbericht.pdf",
        "path and bidi override stripped"
    );
    let png_id = png["data"]["id"].as_str().unwrap().to_string();
    let pdf_id = pdf["data"]["id"].as_str().unwrap().to_string();

    // Text and CSV are accepted too; a PNG named .html gets a .png name.
    let (status, csv) = upload(&app, &admin, &wo, file("readings.csv", "text/csv", b"t,v\n1,2\n")).await;
    assert_eq!(
        (status, csv["data"]["contentType"].as_str()),
        (201, Some("text/csv; charset=utf-8"))
    );
    let (status, renamed) = upload(&app, &admin, &wo, file("page.html", "text/html", PNG)).await;
    assert_eq!(status, 201, "{renamed}");
    assert_eq!(renamed["data"]["filename"], "page.html.png");

    let (status, listed) = list(&app, &admin, &wo).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        names(&listed),
        vec!["pump.png", "Prüfbericht.pdf", "readings.csv", "page.html.png"]
    );
    assert!(
        listed["data"][0].get("data").is_none(),
        "listing carries no bytes"
    );

    // Download: the same bytes, the stored type, and headers that keep the
    // file from running in the API's origin.
    let (status, headers, bytes) = download(&app, &admin, &wo, &png_id).await;
    assert_eq!(status, 200);
    assert_eq!(&bytes[..], PNG);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"pump.png\"; filename*=UTF-8''pump.png"
    );
    let (status, headers, bytes) = download(&app, &admin, &wo, &pdf_id).await;
    assert_eq!(status, 200);
    assert_eq!(&bytes[..], PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"Pr_fbericht.pdf\"; filename*=UTF-8''Pr%C3%BCfbericht.pdf"
    );

    // Executables and markup disguised as images are refused (415, naming
    // what is allowed), whatever the name and declared type say.
    for (name, data) in [
        ("photo.png", ELF),
        ("photo.png", HTML),
        ("setup.exe", b"MZ\x90\0\x03\0" as &[u8]),
    ] {
        let (status, body) = upload(&app, &admin, &wo, file(name, "image/png", data)).await;
        assert_eq!(status, 415, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("allowed: PNG, JPEG, GIF, WebP, PDF"),
            "{message}"
        );
    }
    // Not multipart, no file field, an empty file.
    let (status, _, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{wo}/attachments"),
        &admin,
        Some("application/json"),
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let note = Part {
        name: "note",
        filename: None,
        content_type: "text/plain",
        data: b"hello",
    };
    let (status, body) = upload(&app, &admin, &wo, multipart(&[note])).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "file");
    let (status, body) = upload(&app, &admin, &wo, file("empty.txt", "text/plain", b"")).await;
    assert_eq!(status, 422, "{body}");

    // Too large (default limit 10 MiB): refused while streaming, and when
    // the declared length already says so; nothing is stored either way.
    let mut big = PNG.to_vec();
    big.resize(10 * 1024 * 1024 + 1, 0);
    let (status, body) = upload(&app, &admin, &wo, file("big.png", "image/png", &big)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    let (status, _, bytes) = send(
        &app,
        Method::POST,
        &format!("/api/v1/work-orders/{wo}/attachments"),
        &admin,
        Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
        Some(64 * 1024 * 1024),
        file("big.png", "image/png", PNG),
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&bytes));
    // Exactly at the limit is fine.
    big.truncate(10 * 1024 * 1024);
    let (status, at_limit) = upload(&app, &admin, &wo, file("big.png", "image/png", &big)).await;
    assert_eq!(status, 201, "{at_limit}");
    let (_, listed) = list(&app, &admin, &wo).await;
    assert_eq!(names(&listed).len(), 5, "refused uploads stored nothing");
    assert_eq!(
        count(&t.db, org, "SELECT count(*) FROM attachment_blobs").await,
        5
    );

    // Another organization sees none of it: 404 for list, download, upload
    // and delete, also when it puts our attachment under its own work order.
    assert_eq!(list(&app, &admin_b, &wo).await.0, 404);
    assert_eq!(download(&app, &admin_b, &wo, &png_id).await.0, 404);
    assert_eq!(delete(&app, &admin_b, &wo, &png_id).await, 404);
    assert_eq!(
        upload(&app, &admin_b, &wo, file("x.png", "image/png", PNG))
            .await
            .0,
        404
    );
    let wo_b = work_order(&app, &admin_b, "Theirs").await;
    assert_eq!(download(&app, &admin_b, &wo_b, &png_id).await.0, 404);
    // Within the organization, an attachment belongs to its own work order.
    let other = work_order(&app, &admin, "Another").await;
    assert_eq!(download(&app, &admin, &other, &png_id).await.0, 404);
    let unknown = Uuid::now_v7();
    assert_eq!(download(&app, &admin, &wo, &unknown.to_string()).await.0, 404);
    assert_eq!(list(&app, &admin, &unknown.to_string()).await.0, 404);
    let (status, _, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders/{wo}/attachments/not-a-uuid"),
        &admin,
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status, 400);

    // Each upload wrote an event; the audit log holds the metadata rows but
    // never the bytes.
    let added = count(
        &t.db,
        org,
        "SELECT count(*) FROM events WHERE kind = 'work_order.attachment_added'",
    )
    .await;
    assert_eq!(added, 5);
    let audited = count(
        &t.db,
        org,
        "SELECT count(*) FROM audit_log WHERE table_name = 'attachments' AND action = 'insert' \
         AND after ? 'sha256' AND NOT after ? 'data'",
    )
    .await;
    assert_eq!(audited, 5);
    assert_eq!(
        count(
            &t.db,
            org,
            "SELECT count(*) FROM audit_log WHERE table_name = 'attachment_blobs'"
        )
        .await,
        0
    );

    // The OpenAPI document describes the multipart body and the binary download.
    let (status, doc) = call(&app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let post = &doc["paths"]["/api/v1/work-orders/{id}/attachments"]["post"];
    assert!(
        post["requestBody"]["content"]["multipart/form-data"].is_object(),
        "{post}"
    );
    assert_eq!(post["security"][0]["bearer"][0], "work_orders:update");
    let get = &doc["paths"]["/api/v1/work-orders/{id}/attachments/{attachmentId}"]["get"];
    assert!(
        get["responses"]["200"]["content"]["application/pdf"].is_object(),
        "{get}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn requesters_deletion_and_configured_limits() {
    let t = test_db().await;
    let a = seed_org(&t.db, "att-c", &[]).await;
    let org = a.tenant.org_id;
    for (email, role) in [
        ("ann@att-c.test", Role::Requester),
        ("bob@att-c.test", Role::Requester),
        ("tess@att-c.test", Role::Technician),
        ("tom@att-c.test", Role::Technician),
        ("mia@att-c.test", Role::Manager),
    ] {
        add_user(&t.db, &a, email, role).await;
    }
    let mut config = ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), "s".repeat(40));
    config.attachments = Limits {
        max_bytes: 1024,
        allowed: vec![FileType::Png, FileType::Text],
        max_per_work_order: 3,
    };
    let app = router(AppState::new(t.db.clone(), config));
    let ann = login(&app, "ann@att-c.test").await;
    let bob = login(&app, "bob@att-c.test").await;
    let tess = login(&app, "tess@att-c.test").await;
    let tom = login(&app, "tom@att-c.test").await;
    let mia = login(&app, "mia@att-c.test").await;

    // Ann's own work order; a technician attaches a photo to it.
    let anns = work_order(&app, &ann, "Door sticks").await;
    let others = work_order(&app, &mia, "Boiler service").await;
    let (status, photo) = upload(&app, &tess, &anns, file("door.png", "image/png", PNG)).await;
    assert_eq!(status, 201, "{photo}");
    let photo_id = photo["data"]["id"].as_str().unwrap().to_string();
    let (status, plan) = upload(
        &app,
        &tom,
        &others,
        file("plan.txt", "text/plain", b"drain first"),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    let plan_id = plan["data"]["id"].as_str().unwrap().to_string();

    // Requesters see attachments of the work orders they requested, only.
    let (status, listed) = list(&app, &ann, &anns).await;
    assert_eq!((status, names(&listed)), (200, vec!["door.png".to_string()]));
    let (status, _, bytes) = download(&app, &ann, &anns, &photo_id).await;
    assert_eq!((status, &bytes[..]), (200, PNG));
    assert_eq!(list(&app, &ann, &others).await.0, 404);
    assert_eq!(download(&app, &ann, &others, &plan_id).await.0, 404);
    assert_eq!(list(&app, &bob, &anns).await.0, 404);
    // … and may neither upload nor delete (no work_orders:update).
    assert_eq!(
        upload(&app, &ann, &anns, file("x.png", "image/png", PNG)).await.0,
        403
    );
    assert_eq!(delete(&app, &ann, &anns, &photo_id).await, 403);

    // Configured limits: 1 KiB, PNG and plain text only, three per work order.
    let (status, body) = upload(&app, &tess, &anns, file("a.pdf", "application/pdf", PDF)).await;
    assert_eq!(status, 415, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .ends_with("allowed: PNG, plain text"));
    let (status, _) = upload(&app, &tess, &anns, file("r.csv", "text/csv", b"a,b\n")).await;
    assert_eq!(status, 415, "CSV is not among the allowed types");
    let (status, _) = upload(&app, &tess, &anns, file("big.txt", "text/plain", &[b'x'; 1025])).await;
    assert_eq!(status, 413);
    // Skipped fields count against the body limit too.
    let padding = vec![b'p'; 100 * 1024];
    let body = multipart(&[
        Part {
            name: "padding",
            filename: None,
            content_type: "text/plain",
            data: &padding,
        },
        Part {
            name: "file",
            filename: Some("small.txt"),
            content_type: "text/plain",
            data: b"ok",
        },
    ]);
    let (status, body) = upload(&app, &tess, &anns, body).await;
    assert_eq!(status, 413, "{body}");
    for n in 2..=3 {
        let (status, body) = upload(&app, &tess, &anns, file(&format!("{n}.txt"), "text/plain", b"ok")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = upload(&app, &tess, &anns, file("4.txt", "text/plain", b"ok")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "CONFLICT");

    // Deleting: not another technician's upload; the uploader may, and so
    // may a manager (work_orders:delete). The bytes go with the row.
    assert_eq!(delete(&app, &tom, &anns, &photo_id).await, 403);
    assert_eq!(delete(&app, &tess, &anns, &photo_id).await, 204);
    assert_eq!(download(&app, &tess, &anns, &photo_id).await.0, 404);
    assert_eq!(delete(&app, &tess, &anns, &photo_id).await, 404);
    assert_eq!(delete(&app, &mia, &others, &plan_id).await, 204);
    assert_eq!(
        count(&t.db, org, "SELECT count(*) FROM attachment_blobs").await,
        2
    );
    let removed = count(
        &t.db,
        org,
        "SELECT count(*) FROM events WHERE kind = 'work_order.attachment_removed'",
    )
    .await;
    assert_eq!(removed, 2);
    // A freed slot can be used again.
    let (status, body) = upload(&app, &tess, &anns, file("again.png", "image/png", PNG)).await;
    assert_eq!(status, 201, "{body}");
    t.cleanup().await;
}
