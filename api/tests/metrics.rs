//! `GET /metrics`: the Prometheus text format (checked line by line by a
//! small parser), HTTP counters by matched route, the ingest and analytics
//! figures of stats handed over in the configuration, turning it off, and
//! `/readyz` following the in-process broker connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use axum::Router;
use common::{app, call, login};
use http_body_util::BodyExt;
use maintainpro_analytics::AnalyticsStats;
use maintainpro_api::metrics::MetricsSources;
use maintainpro_api::{router, ApiConfig, AppState};
use maintainpro_ingest::IngestStats;
use maintainpro_models::testkit::{seed_org, test_db};
use tower::ServiceExt;
use uuid::Uuid;

async fn get(app: &Router, uri: &str) -> (u16, HeaderMap, String) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn config() -> ApiConfig {
    ApiConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), "s".repeat(40))
}

/// One sample line.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The family a sample belongs to (histogram series carry suffixes).
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    if types.contains_key(name) {
        return name;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return base;
            }
        }
    }
    name
}

/// Parses the text format strictly: HELP and TYPE before a family's
/// samples, a family's samples together, valid names, quoted and escaped
/// label values, numeric values.
fn parse(page: &str) -> Vec<Sample> {
    let mut helps = HashSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut out = Vec::new();
    assert!(page.ends_with('\n'), "the page ends with a newline");
    for line in page.lines() {
        assert!(!line.is_empty(), "no empty lines");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(helps.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(helps.contains(name), "HELP before TYPE: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {line}"
            );
            if let Some(prev) = current.replace(name.to_string()) {
                finished.insert(prev);
            }
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        // name{labels} value
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(valid_name(name), "{line}");
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end = loop {
                let (i, c) = chars.next().unwrap();
                if c == '}' {
                    break i;
                }
                // label name up to '='
                let mut key = String::from(c);
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert!(
                    valid_name(&key) && !key.contains(':'),
                    "label name {key:?}: {line}"
                );
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().unwrap();
                    match c {
                        '"' => break,
                        '\\' => match chars.next().unwrap().1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => panic!("bad escape \\{other}: {line}"),
                        },
                        '\n' => panic!("raw newline in a label value"),
                        c => value.push(c),
                    }
                }
                assert!(labels.insert(key, value).is_none(), "label twice: {line}");
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    _ => panic!("expected , or }}: {line}"),
                }
            };
            rest = &body[end + 1..];
        }
        let value = rest.strip_prefix(' ').unwrap();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let family = family_of(name, &types);
        assert!(types.contains_key(family), "TYPE before samples: {line}");
        assert_eq!(
            current.as_deref(),
            Some(family),
            "samples of a family together: {line}"
        );
        assert!(!finished.contains(family), "{line}");
        out.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    out
}

/// The value of the sample with this name and (a subset of) these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
}

#[test]
fn the_parser_rejects_broken_pages() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\n\\\\\"} 1\n";
    let s = parse(ok);
    assert_eq!(s[0].labels["x"], "q\"\n\\");
    for bad in [
        "a_total 1\n",                                                     // no TYPE
        "# HELP a A.\n# TYPE a gauge\na{x=\"1\" 1\n",                      // unterminated labels
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                         // unquoted
        "# HELP a A.\n# TYPE a gauge\na one\n",                            // not a number
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                           // bad name
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n", // not together
    ] {
        let r = std::panic::catch_unwind(|| parse(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
}

#[tokio::test]
async fn metrics_page_counts_requests_by_matched_route() {
    let tdb = test_db().await;
    let org = seed_org(&tdb.db, "acme", &["temp"]).await;
    let app = app(&tdb.db);
    let token = login(&app, &org.admin.email).await;
    assert_eq!(get(&app, "/healthz").await.0, 200);
    let missing = Uuid::new_v4();
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/work-orders/{missing}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(get(&app, "/no/such/page").await.0, 404);

    let (status, headers, page) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples = parse(&page);
    let requests = "maintainpro_http_requests_total";
    let get_route = |route| [("method", "GET"), ("route", route)];
    assert_eq!(
        value(&samples, requests, &[("route", "/healthz"), ("status", "2xx")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            requests,
            &[&get_route("/api/v1/work-orders/{id}")[..], &[("status", "4xx")]].concat()
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, requests, &[("route", "/api/v1/me"), ("status", "4xx")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            requests,
            &[("route", "/api/v1/auth/login"), ("method", "POST")]
        ),
        Some(1.0)
    );
    // Never the raw path: no series per id or per unknown URL.
    assert!(!page.contains(&missing.to_string()));
    assert!(!page.contains("/no/such/page"));
    let count = "maintainpro_http_request_duration_seconds_count";
    assert_eq!(value(&samples, count, &get_route("/healthz")), Some(1.0));
    let inf = "maintainpro_http_request_duration_seconds_bucket";
    assert_eq!(
        value(&samples, inf, &[("route", "/healthz"), ("le", "+Inf")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "maintainpro_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(value(&samples, "maintainpro_uptime_seconds", &[]).unwrap() >= 0.0);
    assert!(value(&samples, "maintainpro_db_pool_connections", &[]).unwrap() >= 1.0);
    assert!(value(&samples, "maintainpro_db_pool_idle_connections", &[]).is_some());
    // No ingest or analytics in this process: their figures are absent.
    assert!(!page.contains("maintainpro_ingest_"));
    assert!(!page.contains("maintainpro_analytics_"));

    // The scrape itself is counted on the next one.
    let (_, _, page) = get(&app, "/metrics").await;
    let samples = parse(&page);
    assert_eq!(value(&samples, requests, &get_route("/metrics")), Some(1.0));
    tdb.cleanup().await;
}

#[tokio::test]
async fn in_process_stats_are_exposed() {
    let tdb = test_db().await;
    let ingest = Arc::new(IngestStats::new());
    for _ in 0..5 {
        ingest.message_received();
    }
    ingest.batch_committed(7, 9, 3, &[40, 2_000]);
    ingest.batch_timing(9, Some(Duration::from_millis(30)), Some(chrono::Utc::now()));
    ingest.dead_lettered("unknown_sensor", 2);
    ingest.dead_lettered("bad \"reason\"\n", 1);
    ingest.set_connected(true);
    let analytics = Arc::new(AnalyticsStats::default());
    analytics.anomalies_opened.store(3, Ordering::Relaxed);
    analytics.work_orders_created.store(2, Ordering::Relaxed);
    analytics.passes.store(11, Ordering::Relaxed);
    let mut cfg = config();
    cfg.metrics_sources = MetricsSources {
        ingest: Some(ingest.clone()),
        analytics: Some(analytics.clone()),
    };
    let app = router(AppState::new(tdb.db.clone(), cfg));

    let (status, _, page) = get(&app, "/metrics").await;
    assert_eq!(status, 200);
    let s = parse(&page);
    let v = |name: &str| value(&s, name, &[]);
    assert_eq!(v("maintainpro_ingest_messages_total"), Some(5.0));
    assert_eq!(v("maintainpro_ingest_readings_total"), Some(7.0));
    assert_eq!(v("maintainpro_ingest_duplicates_total"), Some(2.0));
    assert_eq!(v("maintainpro_ingest_batches_total"), Some(1.0));
    let dead = "maintainpro_ingest_dead_letters_total";
    assert_eq!(value(&s, dead, &[("reason", "unknown_sensor")]), Some(2.0));
    assert_eq!(value(&s, dead, &[("reason", "bad_topic")]), Some(0.0));
    assert_eq!(value(&s, dead, &[("reason", "bad \"reason\"\n")]), Some(1.0));
    assert_eq!(v("maintainpro_ingest_batch_readings_count"), Some(1.0));
    assert_eq!(v("maintainpro_ingest_batch_readings_sum"), Some(9.0));
    let batch_bucket = "maintainpro_ingest_batch_readings_bucket";
    assert_eq!(value(&s, batch_bucket, &[("le", "5")]), Some(0.0));
    assert_eq!(value(&s, batch_bucket, &[("le", "10")]), Some(1.0));
    assert_eq!(v("maintainpro_ingest_commit_latency_seconds_count"), Some(1.0));
    let sample_bucket = "maintainpro_ingest_sample_to_commit_seconds_bucket";
    assert_eq!(value(&s, sample_bucket, &[("le", "0.05")]), Some(1.0));
    assert_eq!(value(&s, sample_bucket, &[("le", "2.5")]), Some(2.0));
    assert_eq!(v("maintainpro_ingest_sample_to_commit_seconds_count"), Some(2.0));
    let lag = v("maintainpro_ingest_lag_seconds").unwrap();
    assert!((0.0..3600.0).contains(&lag), "{lag}");
    assert_eq!(v("maintainpro_ingest_broker_connected"), Some(1.0));
    assert_eq!(v("maintainpro_analytics_anomalies_opened_total"), Some(3.0));
    assert_eq!(v("maintainpro_analytics_work_orders_created_total"), Some(2.0));
    assert_eq!(v("maintainpro_analytics_work_orders_updated_total"), Some(0.0));
    assert_eq!(v("maintainpro_analytics_passes_total"), Some(11.0));

    // Counters follow the stats objects.
    ingest.batch_committed(4, 4, 0, &[]);
    let (_, _, page) = get(&app, "/metrics").await;
    assert_eq!(
        value(&parse(&page), "maintainpro_ingest_readings_total", &[]),
        Some(11.0)
    );

    // Readiness follows the broker connection of in-process ingest.
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!((status, body.contains("\"ready\"")), (200, true));
    ingest.set_connected(false);
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "broker");
    let (_, _, page) = get(&app, "/metrics").await;
    assert_eq!(
        value(&parse(&page), "maintainpro_ingest_broker_connected", &[]),
        Some(0.0)
    );
    tdb.cleanup().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let tdb = test_db().await;
    let mut cfg = config();
    cfg.metrics = false;
    let app = router(AppState::new(tdb.db.clone(), cfg));
    assert_eq!(get(&app, "/metrics").await.0, 404);
    // Readiness does not depend on it (and without ingest here, only the database counts).
    assert_eq!(get(&app, "/readyz").await.0, 200);
    tdb.cleanup().await;
}
