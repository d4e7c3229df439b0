//! Builds the application (routes + middleware) and serves it until cancelled.

use std::path::Path as FsPath;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{any, get};
use axum::Router;
use maintainpro_models::Db;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::middleware::{envelope_errors, request_id, X_REQUEST_ID};
use crate::routes::{self, system};
use crate::state::AppState;
use crate::{access, metrics};

/// The whole application: `/api/v1`, probes, and the web UI or a hint at `/`.
pub fn router(state: AppState) -> Router {
    let mut app = routes::api_v1()
        // Only matched /api/v1 routes: unknown paths fall through to the 404s below.
        .route_layer(from_fn_with_state(state.clone(), access::enforce))
        // Anything else under /api is a 404 in the envelope.
        .route("/api", any(system::not_found))
        // The API explorer: static paths win over the catch-all below.
        .merge(routes::docs::router())
        .route("/api/{*rest}", any(system::not_found))
        .merge(probe_routes(state.config.metrics));

    // The request form that asset QR codes open (`/request?asset=…`) is a
    // page of the web UI when it is served; without it, a small
    // server-rendered form keeps printed codes working.
    app = match state.config.static_dir.as_deref().filter(|dir| dir.is_dir()) {
        Some(dir) => app.fallback_service(spa(dir)),
        None => app
            .merge(routes::qr::pages())
            .route("/", get(system::root_hint))
            .fallback(system::not_found),
    };

    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let request_id = req
                .headers()
                .get(&X_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "http_request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
            )
        })
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        );

    // Layers run outside-in from the last one added: request id first, so
    // the trace span and every envelope carry it.
    if state.config.metrics {
        // Innermost, so the matched route is known; counts every answer.
        app = app.layer(from_fn_with_state(state.metrics.clone(), metrics::track));
    }
    app.layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(envelope_errors))
        .layer(trace)
        .layer(from_fn(request_id))
        .with_state(state)
}

/// The built web UI, with client-side routes falling back to index.html.
fn spa(dir: &FsPath) -> ServeDir<ServeFile> {
    ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish.
pub async fn run(
    db: Db,
    config: ApiConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    config.validate()?;
    crate::access::check_document()?;
    let addr = listener.local_addr()?;
    if addr.ip().is_unspecified() && config.public_url.contains("://localhost") {
        tracing::warn!(
            public_url = %config.public_url,
            "asset QR codes link to localhost, which phones cannot reach; set MP_PUBLIC_URL"
        );
    }
    if let Some(dir) = &config.static_dir {
        if dir.is_dir() {
            tracing::info!(dir = %dir.display(), "serving web ui");
        } else {
            tracing::warn!(dir = %dir.display(), "web ui directory not found; serving the api only");
        }
    }
    let state = AppState::new(db, config);
    tracing::info!(%addr, "api listening");
    // Peer addresses feed the sign-in rate limiter (`auth::ClientIp`).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            tracing::info!("api shutting down");
        })
        .await?;
    tracing::info!("api stopped");
    Ok(())
}

/// The probes (`/healthz`, `/readyz`) and `/metrics` alone: the HTTP face of
/// a process that runs ingest or analytics without the API
/// (`maintainpro ingest --probe-bind …`), so each instance can be scraped
/// and checked by an orchestrator.
pub fn probes_router(state: AppState) -> Router {
    probe_routes(state.config.metrics).with_state(state)
}

/// `/healthz`, `/readyz` and (unless turned off) `/metrics`: served by the
/// API and, alone, by [`probes_router`].
fn probe_routes(with_metrics: bool) -> Router<AppState> {
    let app = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz));
    if with_metrics {
        app.route("/metrics", get(metrics::metrics))
    } else {
        app
    }
}

/// Serves [`probes_router`] on `listener` until `shutdown` is cancelled.
pub async fn run_probes(
    db: Db,
    config: ApiConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ApiError> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "probes and metrics listening");
    axum::serve(listener, probes_router(AppState::new(db, config)))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
