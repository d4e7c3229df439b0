//! Starting and stopping the whole system in one process: database
//! (migrated), MQTT broker, ingest, analytics, API and, with `demo`, a
//! simulated fleet. `maintainpro up`, the end-to-end tests and the
//! benchmarks all start the system through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use maintainpro_analytics::{AnalyticsConfig, AnalyticsStats};
use maintainpro_api::ApiConfig;
use maintainpro_ingest::{IngestConfig, IngestStats};
use maintainpro_models::db::DbConfig;
use maintainpro_models::Db;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::database::Database;
use crate::{broker, demo, frontdoor};

/// Which MQTT broker to use.
#[derive(Debug, Clone)]
pub enum MqttChoice {
    /// Start the embedded broker on this address. With `any_port_if_taken`,
    /// a free port is used when this one is taken.
    Embedded {
        listen: SocketAddr,
        any_port_if_taken: bool,
    },
    /// Use a running broker.
    External { host: String, port: u16 },
}

#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// `None`: a self-managed PostgreSQL in `data_dir/postgres`.
    pub database_url: Option<String>,
    pub app_database_url: Option<String>,
    pub data_dir: PathBuf,
    /// The broker ingest reads from; `None` runs no ingest.
    pub mqtt: Option<MqttChoice>,
    /// Embedded broker: devices must sign in with their credentials
    /// (`{orgSlug}/{deviceName}` and the secret issued by the API) and may
    /// publish only to their own topics (see [`frontdoor`]). Off: anyone may
    /// connect and publish anywhere (development only).
    pub mqtt_device_auth: bool,
    /// Where the API listens; `None` runs no API.
    pub api_bind: Option<SocketAddr>,
    /// HS256 key for access tokens; random for this run when `None`.
    pub jwt_secret: Option<String>,
    pub static_dir: Option<PathBuf>,
    /// Where people reach the API (QR-code links); `None`: derived from the bind address.
    pub public_url: Option<String>,
    /// Allow webhook targets in loopback/private ranges.
    pub webhooks_allow_private: bool,
    /// Serve Prometheus metrics at `/metrics` on the API port.
    pub metrics: bool,
    /// Without the API (standalone ingest/analytics): serve `/healthz`,
    /// `/readyz` and `/metrics` here.
    pub probe_bind: Option<SocketAddr>,
    pub ingest: IngestConfig,
    pub analytics: AnalyticsConfig,
    /// Run analytics in this process.
    pub with_analytics: bool,
    pub demo: Option<demo::DemoOptions>,
}

impl SystemConfig {
    /// Everything on free local ports, for tests and benchmarks.
    pub fn local_test(database_url: String) -> Self {
        Self {
            database_url: Some(database_url),
            app_database_url: None,
            data_dir: std::env::temp_dir(),
            mqtt: Some(MqttChoice::Embedded {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                any_port_if_taken: true,
            }),
            mqtt_device_auth: true,
            api_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            jwt_secret: None,
            static_dir: None,
            public_url: None,
            webhooks_allow_private: false,
            metrics: true,
            probe_bind: None,
            ingest: IngestConfig {
                flush_interval: Duration::from_millis(50),
                ..IngestConfig::default()
            },
            analytics: AnalyticsConfig {
                interval: Duration::from_millis(200),
                ..AnalyticsConfig::default()
            },
            with_analytics: true,
            demo: None,
        }
    }
}

/// A running system.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    /// The broker (empty host and port 0 when ingest does not run): where
    /// devices connect.
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// Where the system's own services reach the broker: the embedded
    /// broker's loopback port behind the device front door (on `mqtt_host`
    /// otherwise, the same as `mqtt_port`).
    pub mqtt_internal_port: u16,
    /// Whether devices must authenticate (the embedded broker's front door runs).
    pub mqtt_device_auth: bool,
    pub db: Db,
    /// Owner URL of the database (migrations, admin tasks).
    pub database_url: String,
    pub ingest_stats: Arc<IngestStats>,
    pub analytics_stats: Arc<AnalyticsStats>,
    pub demo: Option<demo::DemoInfo>,
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    database: Option<Database>,
}

/// Starts every part; returns once all are up.
pub async fn start(config: SystemConfig) -> anyhow::Result<Running> {
    let database = Database::open(
        config.database_url.clone(),
        config.app_database_url.clone(),
        config.data_dir.clone(),
    )
    .await?;
    Db::migrate(&database.url)
        .await
        .context("database migrations failed")?;
    let db = Db::connect(&DbConfig {
        url: database.url.clone(),
        app_url: database.app_url.clone(),
        max_connections: 16,
    })
    .await
    .context("cannot connect to the database")?;

    let mut front_door = None;
    let (mqtt_host, mqtt_port, mqtt_internal_port) = match &config.mqtt {
        None => (String::new(), 0, 0),
        Some(MqttChoice::Embedded {
            listen,
            any_port_if_taken,
        }) => {
            let mut listen = *listen;
            if listen.port() == 0 || (*any_port_if_taken && broker::port_taken(listen)) {
                let requested = listen.port();
                listen.set_port(broker::free_port()?);
                if requested != 0 {
                    tracing::warn!(
                        requested,
                        using = listen.port(),
                        "MQTT port taken; the embedded broker uses another"
                    );
                }
            }
            let host = if listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                listen.ip().to_string()
            };
            if config.mqtt_device_auth {
                // rumqttd on loopback for our own services; devices go
                // through the front door on the public address.
                let internal = SocketAddr::from(([127, 0, 0, 1], broker::free_port()?));
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen} for MQTT (use --mqtt-port)"))?;
                broker::start(internal)?;
                tracing::info!(%listen, %internal, "embedded MQTT broker listening; devices must sign in");
                front_door = Some((listener, internal));
                (host, listen.port(), internal.port())
            } else {
                broker::start(listen)?;
                tracing::warn!(
                    %listen,
                    "embedded MQTT broker listening WITHOUT device authentication: anyone who reaches \
                     this port can publish as any device of any organization (development only)"
                );
                (host, listen.port(), listen.port())
            }
        }
        Some(MqttChoice::External { host, port }) => (host.clone(), *port, *port),
    };

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let ingest_stats = Arc::new(IngestStats::new());
    let ingest_config = IngestConfig {
        mqtt_host: if front_door.is_some() {
            "127.0.0.1".to_string()
        } else {
            mqtt_host.clone()
        },
        mqtt_port: mqtt_internal_port,
        ..config.ingest.clone()
    };
    let mqtt_device_auth = front_door.is_some();
    if let Some((listener, internal)) = front_door {
        let (db, stats, token) = (db.clone(), ingest_stats.clone(), shutdown.clone());
        tasks.spawn(async move {
            let config = frontdoor::FrontDoorConfig::new(internal);
            let r = frontdoor::run(listener, config, db, stats, token).await;
            ("mqtt front door", r)
        });
    }
    if config.mqtt.is_some() {
        let (db, stats, token) = (db.clone(), ingest_stats.clone(), shutdown.clone());
        tasks.spawn(async move {
            let r = maintainpro_ingest::run(db, ingest_config, stats, token).await;
            ("ingest", r.map_err(anyhow::Error::from))
        });
    }

    let analytics_stats = Arc::new(AnalyticsStats::default());
    if config.with_analytics {
        let running_db = db.clone();
        let (db, stats, token, cfg) = (
            db.clone(),
            analytics_stats.clone(),
            shutdown.clone(),
            config.analytics.clone(),
        );
        tasks.spawn(async move {
            maintainpro_analytics::run(db, cfg, stats, token).await;
            ("analytics", Ok(()))
        });
        let (jobs_db, token) = (running_db.clone(), shutdown.clone());
        tasks.spawn(async move {
            maintainpro_analytics::jobs::run(jobs_db, Default::default(), token).await;
            ("scheduler", Ok(()))
        });
    }

    let api_addr = match config.api_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} for the API (use --api-bind)"))?;
            let addr = listener.local_addr()?;
            let mut api_config =
                ApiConfig::new(addr, config.jwt_secret.clone().unwrap_or_else(random_secret));
            api_config.static_dir = config.static_dir.clone();
            if let Some(url) = &config.public_url {
                api_config.public_url = url.clone();
            }
            api_config.allow_private_webhook_targets = config.webhooks_allow_private;
            // /metrics and /readyz see the services of this process.
            api_config.metrics = config.metrics;
            api_config.metrics_sources = maintainpro_api::metrics::MetricsSources {
                ingest: config.mqtt.is_some().then(|| ingest_stats.clone()),
                analytics: config.with_analytics.then(|| analytics_stats.clone()),
            };
            let (hooks_db, hooks_token) = (db.clone(), shutdown.clone());
            tasks.spawn(async move {
                let cfg = maintainpro_api::webhook_delivery::DeliveryConfig::default();
                maintainpro_api::webhook_delivery::run(hooks_db, cfg, hooks_token).await;
                ("webhooks", Ok(()))
            });
            let (db, token) = (db.clone(), shutdown.clone());
            tasks.spawn(async move {
                let r = maintainpro_api::run(db, api_config, listener, token).await;
                ("api", r.map_err(anyhow::Error::from))
            });
            Some(addr)
        }
        None => {
            if let Some(bind) = config.probe_bind {
                let listener = tokio::net::TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("cannot listen on {bind} for probes (use --probe-bind)"))?;
                let mut probe_config = ApiConfig::new(listener.local_addr()?, random_secret());
                probe_config.metrics = config.metrics;
                probe_config.metrics_sources = maintainpro_api::metrics::MetricsSources {
                    ingest: config.mqtt.is_some().then(|| ingest_stats.clone()),
                    analytics: config.with_analytics.then(|| analytics_stats.clone()),
                };
                let (db, token) = (db.clone(), shutdown.clone());
                tasks.spawn(async move {
                    let r = maintainpro_api::run_probes(db, probe_config, listener, token).await;
                    ("probes", r.map_err(anyhow::Error::from))
                });
            }
            None
        }
    };

    let demo = match (&config.demo, config.mqtt.is_some()) {
        (Some(opts), true) => {
            let info = demo::seed(&db, opts)
                .await
                .context("cannot seed the demo organization")?;
            // One connection per gateway, each signed in as its device.
            for (sim, secret) in info.per_device() {
                let device = sim.devices.first().map(|d| d.name.clone()).unwrap_or_default();
                let target = maintainpro_edge::MqttTarget {
                    host: mqtt_host.clone(),
                    port: mqtt_port,
                    client_id: format!("maintainpro-demo-{device}"),
                    username: Some(format!("{}/{device}", sim.org)),
                    password: Some(secret),
                };
                let token = shutdown.clone();
                tasks.spawn(async move {
                    let r = maintainpro_edge::simulate(target, sim, token).await;
                    ("demo fleet", r.map(|_| ()).map_err(anyhow::Error::from))
                });
            }
            Some(info)
        }
        _ => None,
    };

    Ok(Running {
        api_addr,
        mqtt_host,
        mqtt_port,
        mqtt_internal_port,
        mqtt_device_auth,
        db,
        database_url: database.url.clone(),
        ingest_stats,
        analytics_stats,
        demo,
        shutdown,
        tasks,
        database: Some(database),
    })
}

impl Running {
    /// The API's base URL, e.g. `http://127.0.0.1:8080`, when it runs.
    pub fn api_url(&self) -> Option<String> {
        self.api_addr.map(|a| format!("http://{a}"))
    }

    /// A token that stops the system when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until a service stops by itself (an error) or `shutdown` fires.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        tokio::select! {
            _ = self.shutdown.cancelled() => Ok(()),
            done = self.tasks.join_next() => match done {
                Some(Ok((name, Err(e)))) => Err(e.context(format!("{name} stopped"))),
                Some(Ok((name, Ok(())))) => {
                    tracing::info!(service = name, "service finished");
                    Ok(())
                }
                Some(Err(e)) => Err(anyhow::anyhow!("a service task failed: {e}")),
                None => Ok(()),
            },
        }
    }

    /// Stops every service, then the database if we manage it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let drain = async {
            while let Some(done) = self.tasks.join_next().await {
                if let Ok((name, Err(e))) = done {
                    tracing::warn!(service = name, error = %e, "service stopped with an error");
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(15), drain)
            .await
            .is_err()
        {
            tracing::warn!("services did not stop within 15 s; aborting them");
            self.tasks.abort_all();
        }
        self.db.close().await;
        if let Some(d) = self.database.take() {
            d.stop().await;
        }
    }
}

fn random_secret() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 48)
}
