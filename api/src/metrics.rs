//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of this
//! process — HTTP requests, ingest and analytics counters when those run in
//! the same process, the database pool, uptime and build info.
//!
//! No global registry: the HTTP counters live in [`Metrics`] (part of
//! [`AppState`]), the other figures are read from the stats objects handed
//! over in [`MetricsSources`] when the page is rendered. [`Exposition`] is
//! the small writer that formats it all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maintainpro_analytics::AnalyticsStats;
use maintainpro_ingest::stats::BucketsSnapshot;
use maintainpro_ingest::IngestStats;

use crate::state::AppState;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the HTTP request duration buckets.
const HTTP_SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Stats objects of services running in this process. A service that runs
/// elsewhere (`maintainpro ingest` in its own process) is `None`, and its
/// metrics are missing from this page — scrape that process instead.
#[derive(Clone, Default)]
pub struct MetricsSources {
    pub ingest: Option<Arc<IngestStats>>,
    pub analytics: Option<Arc<AnalyticsStats>>,
}

impl std::fmt::Debug for MetricsSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSources")
            .field("ingest", &self.ingest.is_some())
            .field("analytics", &self.analytics.is_some())
            .finish()
    }
}

/// The metric kinds of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A minimal writer of the Prometheus text format: one `family` (HELP and
/// TYPE lines) followed by its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a metric family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram series (`_bucket` with `le`, `_sum`, `_count`).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &BucketsSnapshot) {
        let bucket = format!("{name}_bucket");
        let bounds = h.buckets.iter().map(|(b, c)| (format_value(*b), *c as f64));
        for (le, count) in bounds.chain([("+Inf".to_string(), h.count as f64)]) {
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values escape backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Integers without a fraction, `+Inf`/`-Inf`/`NaN` as the format spells them.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One HTTP series: `{method, route, status class}`.
type SeriesKey = (&'static str, String, &'static str);

#[derive(Debug, Clone)]
struct Series {
    /// Observations per duration bucket (not cumulative); the last is `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The HTTP counters and everything `/metrics` renders.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    sources: MetricsSources,
    http: Mutex<BTreeMap<SeriesKey, Series>>,
}

impl Metrics {
    pub fn new(sources: MetricsSources) -> Self {
        Self {
            started: Instant::now(),
            sources,
            http: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn sources(&self) -> &MetricsSources {
        &self.sources
    }

    /// Counts one answered request. `route` is the matched route pattern
    /// (never the raw path, which would make a series per id).
    pub fn record_http(&self, method: &Method, route: Option<&str>, status: u16, seconds: f64) {
        let key = (
            method_label(method),
            route.unwrap_or("unmatched").to_string(),
            status_class(status),
        );
        let Ok(mut http) = self.http.lock() else { return };
        let series = http.entry(key).or_insert_with(|| Series {
            buckets: vec![0; HTTP_SECONDS_BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        });
        let i = HTTP_SECONDS_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(HTTP_SECONDS_BUCKETS.len());
        if let Some(c) = series.buckets.get_mut(i) {
            *c += 1;
        }
        series.sum += seconds;
        series.count += 1;
    }

    /// The whole page.
    pub fn render(&self, pool_size: u32, pool_idle: usize) -> String {
        let mut e = Exposition::new();
        e.family(
            "maintainpro_build_info",
            Kind::Gauge,
            "Always 1; the version of this build is a label.",
        );
        e.sample(
            "maintainpro_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        e.single(
            "maintainpro_uptime_seconds",
            Kind::Gauge,
            "Seconds since the API started.",
            self.started.elapsed().as_secs_f64(),
        );
        e.single(
            "maintainpro_db_pool_connections",
            Kind::Gauge,
            "Open connections in the database pool.",
            f64::from(pool_size),
        );
        e.single(
            "maintainpro_db_pool_idle_connections",
            Kind::Gauge,
            "Idle connections in the database pool.",
            pool_idle as f64,
        );
        self.render_http(&mut e);
        if let Some(s) = &self.sources.ingest {
            render_ingest(&mut e, s);
        }
        if let Some(s) = &self.sources.analytics {
            render_analytics(&mut e, s);
        }
        e.finish()
    }

    fn render_http(&self, e: &mut Exposition) {
        let http = self.http.lock().map(|m| m.clone()).unwrap_or_default();
        e.family(
            "maintainpro_http_requests_total",
            Kind::Counter,
            "HTTP requests answered, by method, matched route and status class.",
        );
        for ((method, route, status), s) in &http {
            let labels = [
                ("method", *method),
                ("route", route.as_str()),
                ("status", *status),
            ];
            e.sample("maintainpro_http_requests_total", &labels, s.count as f64);
        }
        e.family(
            "maintainpro_http_request_duration_seconds",
            Kind::Histogram,
            "Time to answer an HTTP request (until the response head), in seconds.",
        );
        for ((method, route, status), s) in &http {
            let labels = [
                ("method", *method),
                ("route", route.as_str()),
                ("status", *status),
            ];
            let mut acc = 0;
            let snapshot = BucketsSnapshot {
                buckets: HTTP_SECONDS_BUCKETS
                    .iter()
                    .zip(&s.buckets)
                    .map(|(b, c)| {
                        acc += c;
                        (*b, acc)
                    })
                    .collect(),
                sum: s.sum,
                count: s.count,
            };
            e.histogram("maintainpro_http_request_duration_seconds", &labels, &snapshot);
        }
    }
}

fn render_ingest(e: &mut Exposition, s: &IngestStats) {
    let snap = s.snapshot();
    let counters = [
        (
            "maintainpro_ingest_messages_total",
            "MQTT messages received.",
            snap.messages,
        ),
        (
            "maintainpro_ingest_readings_total",
            "Readings committed (duplicates excluded).",
            snap.readings,
        ),
        (
            "maintainpro_ingest_duplicates_total",
            "Readings skipped because the sensor already had a reading at that timestamp.",
            snap.duplicates,
        ),
        (
            "maintainpro_ingest_batches_total",
            "Batches committed.",
            snap.batches,
        ),
        (
            "maintainpro_ingest_sparkplug_messages_total",
            "Sparkplug B messages decoded (any type).",
            snap.sparkplug_messages,
        ),
        (
            "maintainpro_ingest_sparkplug_seq_gaps_total",
            "Sparkplug sequence-number gaps (messages lost or reordered between edge node and ingest).",
            snap.sparkplug_seq_gaps,
        ),
        (
            "maintainpro_ingest_sparkplug_skipped_metrics_total",
            "Sparkplug metrics skipped: null, or a data type that is not a reading.",
            snap.sparkplug_skipped_metrics,
        ),
        (
            "maintainpro_ingest_sparkplug_rebirth_requests_total",
            "Rebirth commands (NCMD) sent to edge nodes whose aliases ingest does not know.",
            snap.sparkplug_rebirth_requests,
        ),
    ];
    for (name, help, v) in counters {
        e.single(name, Kind::Counter, help, v as f64);
    }
    e.single(
        "maintainpro_ingest_sparkplug_stale_devices",
        Kind::Gauge,
        "Sparkplug devices that died (NDEATH/DDEATH) and were not reborn since.",
        snap.sparkplug_stale_devices as f64,
    );
    e.family(
        "maintainpro_ingest_dead_letters_total",
        Kind::Counter,
        "Dead letters stored, by reason.",
    );
    for (reason, n) in s.dead_letters_by_reason() {
        e.sample(
            "maintainpro_ingest_dead_letters_total",
            &[("reason", &reason)],
            n as f64,
        );
    }
    let histograms = [
        (
            "maintainpro_ingest_batch_readings",
            "Readings per committed batch.",
            s.batch_sizes(),
        ),
        (
            "maintainpro_ingest_commit_latency_seconds",
            "Seconds from a batch's first message to its commit.",
            s.commit_seconds(),
        ),
        (
            "maintainpro_ingest_sample_to_commit_seconds",
            "Seconds from a reading's sample timestamp to its commit.",
            s.sample_to_commit_seconds(),
        ),
    ];
    for (name, help, h) in histograms {
        e.family(name, Kind::Histogram, help);
        e.histogram(name, &[], &h);
    }
    if let Some(newest) = s.newest_committed() {
        let lag = (chrono::Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
        e.single(
            "maintainpro_ingest_lag_seconds",
            Kind::Gauge,
            "Seconds between now and the newest committed sample timestamp.",
            lag,
        );
    }
    e.single(
        "maintainpro_ingest_broker_connected",
        Kind::Gauge,
        "1 while ingest is connected to the MQTT broker, else 0.",
        if s.is_connected() { 1.0 } else { 0.0 },
    );
}

fn render_analytics(e: &mut Exposition, s: &AnalyticsStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let counters = [
        (
            "maintainpro_analytics_points_total",
            "Readings scored by the anomaly detectors.",
            &s.points,
        ),
        (
            "maintainpro_analytics_anomalies_opened_total",
            "Anomaly episodes opened.",
            &s.anomalies_opened,
        ),
        (
            "maintainpro_analytics_work_orders_created_total",
            "Work orders raised automatically from anomalies.",
            &s.work_orders_created,
        ),
        (
            "maintainpro_analytics_work_orders_updated_total",
            "Open automatic work orders updated by a new anomaly.",
            &s.work_orders_updated,
        ),
        (
            "maintainpro_analytics_passes_total",
            "Analytics rounds over all organizations.",
            &s.passes,
        ),
    ];
    for (name, help, v) in counters {
        e.single(name, Kind::Counter, help, v.load(Relaxed) as f64);
    }
}

/// Standard methods by name; anything else is `other` (no series per
/// made-up method).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware (added with `Router::layer`, so the matched route is known):
/// counts and times every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.record_http(
        &method,
        route.as_deref(),
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// `GET /metrics` (not under `/api/v1`, unauthenticated; turn it off with
/// `--metrics off` / `MP_METRICS=off`).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.db.pool();
    let body = state.metrics.render(pool.size(), pool.num_idle());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("line\nnext"), "line\\nnext");
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "Help with \\ and\nnewline.");
        e.sample("x_total", &[("reason", "say \"hi\"\\\n")], 3.0);
        assert_eq!(
            e.finish(),
            "# HELP x_total Help with \\\\ and\\nnewline.\n# TYPE x_total counter\n\
             x_total{reason=\"say \\\"hi\\\"\\\\\\n\"} 3\n"
        );
    }

    #[test]
    fn values_use_the_text_format_spelling() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn histograms_end_with_inf_sum_and_count() {
        let mut e = Exposition::new();
        let h = BucketsSnapshot {
            buckets: vec![(0.5, 1), (1.0, 2)],
            sum: 4.25,
            count: 3,
        };
        e.histogram("h_seconds", &[("route", "/x")], &h);
        assert_eq!(
            e.finish(),
            "h_seconds_bucket{route=\"/x\",le=\"0.5\"} 1\nh_seconds_bucket{route=\"/x\",le=\"1\"} 2\n\
             h_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\nh_seconds_sum{route=\"/x\"} 4.25\n\
             h_seconds_count{route=\"/x\"} 3\n"
        );
    }

    #[test]
    fn http_requests_are_counted_by_route_and_class() {
        let m = Metrics::new(MetricsSources::default());
        m.record_http(&Method::GET, Some("/api/v1/work-orders/{id}"), 200, 0.01);
        m.record_http(&Method::GET, Some("/api/v1/work-orders/{id}"), 204, 0.02);
        m.record_http(&Method::from_bytes(b"BREW").expect("method"), None, 404, 0.001);
        let page = m.render(2, 1);
        assert!(page.contains(
            "maintainpro_http_requests_total{method=\"GET\",route=\"/api/v1/work-orders/{id}\",status=\"2xx\"} 2\n"
        ));
        assert!(page.contains(
            "maintainpro_http_requests_total{method=\"other\",route=\"unmatched\",status=\"4xx\"} 1\n"
        ));
        assert!(page.contains("maintainpro_db_pool_connections 2\n"));
    }
}
