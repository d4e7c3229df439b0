//! The `maintainpro` command: parses the command line and hands over to the
//! library (`maintainpro::system` and friends).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use maintainpro::demo::DemoOptions;
use maintainpro::system::{self, MqttChoice, SystemConfig};
use maintainpro::{bench, telemetry};
use maintainpro_models::auth::Role;
use maintainpro_models::db::DbConfig;
use maintainpro_models::users::{self, NewUser};
use maintainpro_models::{organizations, Db, Tenant};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "maintainpro",
    version,
    about = "IoT telemetry ingestion, predictive maintenance and CMMS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: database (self-managed unless
    /// DATABASE_URL is set), MQTT broker, ingest, analytics and the API.
    Up(UpArgs),
    /// Run only the API (needs DATABASE_URL).
    Api(ServiceArgs),
    /// Run only ingest (needs DATABASE_URL and a broker).
    Ingest(ServiceArgs),
    /// Run only analytics (needs DATABASE_URL).
    Analytics(ServiceArgs),
    /// Apply database migrations (needs DATABASE_URL).
    Migrate(DbArgs),
    /// Administration: organizations and users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Benchmarks that print their figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Detector quality on labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Replay the detector (or a variant of its setting) over stored
    /// readings: what it would have raised. Writes nothing.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Organization slug.
    #[arg(long)]
    org: String,
    /// Sensor id (repeat for several).
    #[arg(long = "sensor", required = true)]
    sensors: Vec<uuid::Uuid>,
    /// Start of the range (RFC 3339).
    #[arg(long)]
    from: chrono::DateTime<chrono::Utc>,
    /// End of the range (RFC 3339; default now).
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// |z| needed to open an episode (default: the live setting).
    #[arg(long)]
    z_threshold: Option<f64>,
    /// Anomaly probability needed (default: the live setting).
    #[arg(long)]
    probability_threshold: Option<f64>,
    /// Scale of both thresholds (default: each sensor's tuned scale).
    #[arg(long)]
    threshold_scale: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Run the streaming detector over a NAB-format corpus (no look-ahead),
    /// write NAB results files and print the normalized NAB scores.
    Nab {
        /// Corpus directory: `<category>/<name>.csv` and `windows.json`
        /// (e.g. analytics/testdata/nab-dev), or NAB's own checkout (data/ and labels/).
        dir: std::path::PathBuf,
        /// Where results files go.
        #[arg(long, default_value = "target/nab-results")]
        out: std::path::PathBuf,
    },
}

#[derive(Args, Clone)]
struct DbArgs {
    /// PostgreSQL URL of the owner role (runs migrations).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Optional URL of a login role without BYPASSRLS for the services;
    /// by default they use DATABASE_URL and switch to maintainpro_app.
    #[arg(long, env = "APP_DATABASE_URL", hide_env_values = true)]
    app_database_url: Option<String>,
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Also seed a demo organization and run a simulated fleet with faults.
    #[arg(long)]
    demo: bool,
    /// Where the API (and UI) listens.
    #[arg(long, env = "MP_API_BIND", default_value = "127.0.0.1:8080")]
    api_bind: SocketAddr,
    /// Where people reach the API, for links such as asset QR codes
    /// (default: http://localhost:{api port}).
    #[arg(long, env = "MP_PUBLIC_URL")]
    public_url: Option<String>,
    /// Let webhooks target loopback and private addresses (off: such
    /// targets are refused, so a webhook cannot probe the internal network).
    #[arg(long, env = "MP_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Serve Prometheus metrics at /metrics on the API port (on|off). The
    /// page needs no sign-in and shows counts: turn it off, or keep the
    /// path off the public proxy, where the API port is public.
    #[arg(long, env = "MP_METRICS", default_value = "on", action = clap::ArgAction::Set, hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    metrics: bool,
    /// Standalone `ingest` / `analytics`: serve /healthz, /readyz and
    /// /metrics on this address (e.g. 0.0.0.0:9100); `up` and `api` serve
    /// them on the API port.
    #[arg(long, env = "MP_PROBE_BIND")]
    probe_bind: Option<SocketAddr>,
    /// Port of the embedded MQTT broker.
    #[arg(long, env = "MP_MQTT_PORT", default_value_t = 1883)]
    mqtt_port: u16,
    /// Address the embedded broker listens on (0.0.0.0 to accept gateways
    /// from other machines).
    #[arg(long, env = "MP_MQTT_BIND", default_value = "127.0.0.1")]
    mqtt_bind: std::net::IpAddr,
    /// Use this broker instead of the embedded one (mqtt://host:port, or
    /// mqtt://user:pass@host:port for ingest's own login there).
    #[arg(long, env = "MP_MQTT_URL", hide_env_values = true)]
    mqtt_url: Option<String>,
    /// Embedded broker: let anyone connect without device credentials and
    /// publish to any topic (development only; logs a warning). By default
    /// devices sign in as `{orgSlug}/{deviceName}` with their secret.
    #[arg(long, env = "MP_MQTT_ALLOW_ANONYMOUS", default_value = "false", action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    mqtt_allow_anonymous: bool,
    /// Subscribe through `$share/GROUP/…` so several ingest instances split
    /// the load (MQTT 5 shared subscriptions; supported by Mosquitto and EMQX).
    #[arg(long, env = "MP_MQTT_SHARED_GROUP")]
    mqtt_shared_group: Option<String>,
    /// Ingest's MQTT client id: stable, so the broker keeps its session;
    /// give each ingest instance its own.
    #[arg(long, env = "MP_MQTT_CLIENT_ID", default_value = "maintainpro-ingest")]
    mqtt_client_id: String,
    /// Data directory of the self-managed PostgreSQL and local secrets.
    #[arg(long, env = "MP_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Built web UI to serve at / (default: web/dist when present).
    #[arg(long, env = "MP_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// HS256 key for access tokens (default: generated once, kept in the data directory).
    #[arg(long, env = "MP_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Demo: simulated gateways, sensors per gateway, and sample interval (ms).
    #[arg(long, default_value_t = 3)]
    demo_devices: usize,
    #[arg(long, default_value_t = 4)]
    demo_sensors: usize,
    #[arg(long, default_value_t = 1000)]
    demo_interval_ms: u64,
    /// Demo: simulated history written before the fleet goes live (first start only), e.g. 3h, 30m, 0.
    #[arg(long, default_value = "3h", value_parser = maintainpro_edge::parse_duration)]
    demo_history: Duration,
}

#[derive(Args, Clone)]
struct ServiceArgs {
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an organization.
    CreateOrg {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// Create a user in an organization (password from MP_NEW_PASSWORD).
    CreateUser {
        #[command(flatten)]
        db: DbArgs,
        /// Organization slug.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin | manager | technician | requester
        #[arg(long)]
        role: String,
        #[arg(long, env = "MP_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// MQTT → committed readings/s, and publish→commit p50/p99 at half that rate.
    Ingest {
        #[arg(long, default_value_t = 500_000)]
        readings: u64,
        #[arg(long, default_value_t = 20)]
        devices: usize,
        #[arg(long, default_value_t = 10)]
        sensors: usize,
        /// Samples per MQTT message.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        #[arg(long, default_value_t = 10)]
        latency_seconds: u64,
        /// Devices publish to the broker directly, without the front door's
        /// sign-in and topic checks (to measure what those cost).
        #[arg(long)]
        no_device_auth: bool,
    },
    /// Trend-query p50/p99 over a large readings table (seeded once into
    /// DATABASE_URL and reused) while live readings are written.
    Trend {
        /// Readings to store: 40 sensors × 30 days at 1 Hz ≈ 104 M.
        #[arg(long, default_value_t = 40 * 30 * 86_400)]
        readings: u64,
        #[arg(long, default_value_t = 40)]
        sensors: usize,
        /// Span of the stored series and of each query.
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long, default_value_t = 500)]
        queries: usize,
        #[arg(long, default_value_t = 1000)]
        max_points: i64,
        /// Live readings/s committed through the ingest writer meanwhile.
        #[arg(long, default_value_t = 2000)]
        ingest_rate: u64,
    },
    /// Detectors on one core, no database: streaming points/s and bytes of
    /// state per sensor; the multivariate (PCA) detector's fit time, model
    /// bytes and scored rows/s.
    Detector {
        /// Streaming detectors (one per sensor).
        #[arg(long, default_value_t = 10_000)]
        sensors: usize,
        /// Streaming points in all (sensors × rounds).
        #[arg(long, default_value_t = 5_000_000)]
        points: u64,
        /// Seconds between two points of one sensor.
        #[arg(long, default_value_t = 300)]
        interval_secs: i64,
        /// Each phase stops early after this many seconds.
        #[arg(long, default_value_t = 20.0)]
        max_seconds: f64,
        /// Sensors per row of the multivariate detector.
        #[arg(long, default_value_t = 8)]
        mv_sensors: usize,
        /// Multivariate training rows (10080 = one week of minutes).
        #[arg(long, default_value_t = 10_080)]
        train_rows: usize,
        /// Rows scored by the multivariate detector.
        #[arg(long, default_value_t = 2_000_000)]
        mv_points: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up(args, Services::All).await,
        Command::Api(a) => up(a.up, Services::Api).await,
        Command::Ingest(a) => up(a.up, Services::Ingest).await,
        Command::Analytics(a) => up(a.up, Services::Analytics).await,
        Command::Migrate(db) => {
            let url = require_url(&db)?;
            Db::migrate(&url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(cmd) => admin(cmd).await,
        Command::Replay(args) => replay(args).await,
        Command::Bench(BenchCommand::Ingest {
            readings,
            devices,
            sensors,
            batch,
            latency_seconds,
            no_device_auth,
        }) => {
            let r = bench::ingest(bench::IngestBenchOptions {
                readings,
                devices,
                sensors_per_device: sensors,
                batch,
                latency_seconds,
                device_auth: !no_device_auth,
            })
            .await?;
            println!(
                "RESULT ingest: {:.0} readings/s ({} readings in {:.2} s); publish→commit at {:.0} readings/s: p50 {} ms, p99 {} ms, max {} ms; database: {}",
                r.readings_per_sec, r.readings, r.seconds, r.latency_rate, r.p50_ms, r.p99_ms, r.max_ms, r.database
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Trend {
            readings,
            sensors,
            days,
            queries,
            max_points,
            ingest_rate,
        }) => {
            let r = maintainpro::bench_trend::trend(maintainpro::bench_trend::TrendBenchOptions {
                readings,
                sensors,
                days,
                queries,
                max_points,
                ingest_rate,
            })
            .await?;
            println!(
                "RESULT trend: {} queries over {} stored readings ({days}-day window, ≤ {max_points} points): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; resolution {}, {} buckets, {} rows scanned per query; {} live readings written meanwhile; database: {}",
                r.queries, r.stored, r.p50_ms, r.p99_ms, r.max_ms, r.resolution.as_str(), r.buckets, r.rows_scanned, r.ingested, r.database
            );
            Ok(())
        }
        Command::Eval(EvalCommand::Nab { dir, out }) => {
            let lines = maintainpro::eval::nab(&dir, &out)?;
            println!("profile               threshold  score (normalized)  TP  FP  FN  swept threshold  Numenta HTM");
            for l in &lines {
                println!(
                    "{:<21} {:>9.3}  {:>18.2}  {:>2}  {:>3} {:>3}  {:>15.2}  {}",
                    l.profile,
                    l.threshold,
                    l.normalized,
                    l.tp,
                    l.fp,
                    l.fn_,
                    l.swept,
                    l.reference.map_or("-".into(), |r| format!("{r:.2}"))
                );
            }
            println!(
                "results files: {}",
                out.join(maintainpro::eval::DETECTOR).display()
            );
            Ok(())
        }
        Command::Bench(BenchCommand::Detector {
            sensors,
            points,
            interval_secs,
            max_seconds,
            mv_sensors,
            train_rows,
            mv_points,
        }) => {
            use maintainpro::bench_detector::{detector, DetectorBenchOptions};
            let r = detector(DetectorBenchOptions {
                sensors,
                points,
                interval_secs,
                max_seconds,
                mv_sensors,
                train_rows,
                mv_points,
            })?;
            let per_cpu = r
                .stream_points_per_cpu_sec
                .map_or(String::new(), |v| format!(", {v:.0} points per CPU-second"));
            println!(
                "RESULT detector stream: {:.0} points/s on one core{per_cpu} ({} sensors × {} rounds = {} points in {:.2} s; {:.3} % scored anomalous)",
                r.stream_points_per_sec, r.sensors, r.stream_rounds, r.stream_points, r.stream_seconds, 100.0 * r.stream_flagged_share
            );
            let rss = r.rss_increase_bytes.map_or("n/a".to_string(), |b| {
                format!(
                    "{:.0} bytes/sensor ({:.1} MB in all)",
                    b as f64 / r.sensors as f64,
                    b as f64 / 1e6
                )
            });
            println!(
                "RESULT detector stream state: {:.0} bytes/sensor (memory_bytes); peak RSS increase {rss}",
                r.state_bytes_per_sensor
            );
            println!(
                "RESULT detector live: {:.0} points/s on one core, {:.0} bytes/sensor (stream detector + z gate, limits, stuck and drift checks; {} points)",
                r.live_points_per_sec, r.live_bytes_per_sensor, r.live_points
            );
            println!(
                "RESULT detector multivariate fit: {:.1} ms for {} rows × {} sensors; {} components; model {} bytes in memory, {} bytes as JSON",
                r.fit_ms, r.train_rows, r.mv_sensors, r.components, r.model_bytes, r.model_json_bytes
            );
            println!(
                "RESULT detector multivariate score: {:.0} rows/s on one core (rows of {} sensors; {} rows in {:.2} s; {:.3} % of healthy rows flagged)",
                r.mv_rows_per_sec, r.mv_sensors, r.mv_rows, r.mv_seconds, 100.0 * r.mv_flagged_share
            );
            Ok(())
        }
    }
}

fn require_url(db: &DbArgs) -> anyhow::Result<String> {
    db.database_url.clone().context(
        "DATABASE_URL is not set (or pass --database-url); `maintainpro up` can manage its own database",
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Services {
    All,
    Api,
    Ingest,
    Analytics,
}

async fn up(args: UpArgs, services: Services) -> anyhow::Result<()> {
    if services != Services::All {
        // A standalone service shares its database with the others.
        require_url(&args.db)?;
    }
    // Ingest's own login on an external broker (`mqtt://user:pass@host:port`).
    let mut mqtt_login = (None, None);
    let mqtt = match (services, &args.mqtt_url) {
        (Services::Api | Services::Analytics, _) => None,
        (_, Some(url)) => {
            let (host, port, user, pass) = parse_mqtt_url(url)?;
            mqtt_login = (user, pass);
            Some(MqttChoice::External { host, port })
        }
        // Standalone ingest reads from a broker that runs elsewhere.
        (Services::Ingest, None) => Some(MqttChoice::External {
            host: "127.0.0.1".into(),
            port: args.mqtt_port,
        }),
        (Services::All, None) => Some(MqttChoice::Embedded {
            listen: SocketAddr::new(args.mqtt_bind, args.mqtt_port),
            any_port_if_taken: args.demo,
        }),
    };
    let api_bind = matches!(services, Services::All | Services::Api).then_some(args.api_bind);
    let jwt_secret = match &args.jwt_secret {
        Some(s) => Some(s.clone()),
        None => Some(local_secret(&args.data_dir)?),
    };
    let static_dir = args.web_dir.clone().or_else(|| {
        let default = PathBuf::from("web/dist");
        default.join("index.html").exists().then_some(default)
    });
    let serves_ui = static_dir.as_ref().is_some_and(|d| d.join("index.html").exists());
    let config = SystemConfig {
        database_url: args.db.database_url.clone(),
        app_database_url: args.db.app_database_url.clone(),
        data_dir: args.data_dir.clone(),
        mqtt,
        mqtt_device_auth: !args.mqtt_allow_anonymous,
        api_bind,
        jwt_secret,
        static_dir,
        public_url: args.public_url.clone(),
        webhooks_allow_private: args.webhooks_allow_private,
        metrics: args.metrics,
        probe_bind: args.probe_bind.filter(|_| api_bind.is_none()),
        ingest: maintainpro_ingest::IngestConfig {
            shared_group: args.mqtt_shared_group.clone(),
            client_id: args.mqtt_client_id.clone(),
            username: mqtt_login.0,
            password: mqtt_login.1,
            ..Default::default()
        },
        analytics: Default::default(),
        with_analytics: matches!(services, Services::All | Services::Analytics),
        demo: (args.demo && services == Services::All).then(|| DemoOptions {
            devices: args.demo_devices,
            sensors_per_device: args.demo_sensors,
            interval: Duration::from_millis(args.demo_interval_ms.max(10)),
            history: args.demo_history,
            ..DemoOptions::default()
        }),
    };
    let mut running = system::start(config).await?;
    println!();
    println!("MaintAInPro is up");
    let api = running.api_url().unwrap_or_default();
    if running.api_addr.is_some() {
        if serves_ui {
            println!("  Web UI   {api}/");
        } else {
            println!("  Web UI   not built: run scripts/up (or `npm --prefix web run build`) to serve it");
        }
        println!("  API      {api}/api/v1  (OpenAPI: {api}/api/v1/openapi.json)");
        println!("  Docs     {api}/api/docs  (interactive: every operation, its permission, try it)");
    }
    if running.mqtt_port != 0 {
        println!(
            "  MQTT     mqtt://{}:{}  topic mp/v1/{{org}}/{{device}}/telemetry",
            running.mqtt_host, running.mqtt_port
        );
        if running.mqtt_device_auth {
            println!(
                "           sign in as {{org}}/{{device}} with the device secret (POST /api/v1/devices)"
            );
        }
    }
    if let Some(demo) = &running.demo {
        println!(
            "  Demo     organization 'demo', {} simulated gateways",
            demo.sim.devices.len()
        );
        println!("  Sign in  {}  /  {}", demo.admin_email, demo.admin_password);
        println!(
            "  Try      curl -s {api}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'",
            demo.admin_email,
            demo.admin_password
        );
    }
    println!("  Stop     Ctrl-C");
    println!();

    let progress = spawn_progress(&running);
    let ctrl_c = tokio::signal::ctrl_c();
    let result = tokio::select! {
        _ = ctrl_c => { tracing::info!("shutting down"); Ok(()) }
        r = running.wait() => r,
    };
    progress.cancel();
    running.stop().await;
    result
}

/// Logs a progress line every 10 s: readings flowing, anomalies, work orders.
fn spawn_progress(running: &system::Running) -> CancellationToken {
    let stop = CancellationToken::new();
    let (ingest, analytics, token) = (
        running.ingest_stats.clone(),
        running.analytics_stats.clone(),
        stop.clone(),
    );
    tokio::spawn(async move {
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let s = ingest.snapshot();
            tracing::info!(
                readings = s.readings,
                readings_per_s = (s.readings - last) / 10,
                messages = s.messages,
                dead_letters = s.dead_letters,
                anomalies = analytics.anomalies_opened.load(Ordering::Relaxed),
                auto_work_orders = analytics.work_orders_created.load(Ordering::Relaxed),
                "progress"
            );
            last = s.readings;
        }
    });
    stop
}

/// The token key kept in the data directory, created on first use.
fn local_secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 32 {
            return Ok(s.trim().to_string());
        }
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    use rand::distributions::{Alphanumeric, DistString};
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    Ok(secret)
}

/// `mqtt://[user[:pass]@]host[:port]` (user and password percent-encoded):
/// host, port and the optional login.
type MqttUrl = (String, u16, Option<String>, Option<String>);

fn parse_mqtt_url(url: &str) -> anyhow::Result<MqttUrl> {
    let t = maintainpro_edge::MqttTarget::from_url(url, "maintainpro")?;
    if t.host.is_empty() {
        bail!("no host in MQTT URL");
    }
    Ok((t.host, t.port, t.username, t.password))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use maintainpro_analytics::replay::{self, ReplayRequest};
    let url = require_url(&args.db)?;
    let pool = Db::connect(&DbConfig::new(url)).await?;
    let org_id = organizations::id_by_slug(&pool, &args.org)
        .await?
        .with_context(|| format!("no organization '{}'", args.org))?;
    let req = ReplayRequest {
        sensor_ids: args.sensors,
        from: args.from,
        to: args.to.unwrap_or_else(chrono::Utc::now),
        z_threshold: args.z_threshold,
        probability_threshold: args.probability_threshold,
        threshold_scale: args.threshold_scale,
    };
    if req.to <= req.from {
        bail!("--to must be after --from");
    }
    let mut tx = pool.tenant(org_id).await?;
    let report = replay::replay(&mut tx, maintainpro_analytics::DetectorConfig::default(), &req).await?;
    tx.rollback().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "replay {} .. {} (|z| ≥ {}, probability ≥ {}): {} anomalies would have been raised; nothing was written",
        report.from, report.to, report.z_threshold, report.probability_threshold, report.anomalies
    );
    for s in &report.sensors {
        let cut = if s.truncated {
            " (stopped at the replay limit)"
        } else {
            ""
        };
        println!(
            "{} ({}): {} readings{cut}, threshold scale {:.2}",
            s.name, s.sensor_id, s.points, s.threshold_scale
        );
        for a in &s.anomalies {
            println!(
                "  {}  {:<12} {:<8} peak {:.3}  z {:.1}  p {:.3}  {} points → {} work order{}",
                a.started_at.to_rfc3339(),
                a.kind,
                a.severity,
                a.peak_value,
                a.score,
                a.probability,
                a.points,
                a.work_order_kind,
                a.ended_at
                    .map_or(" (still open at the end)".to_string(), |e| format!(
                        ", ended {}",
                        e.to_rfc3339()
                    ))
            );
        }
    }
    Ok(())
}

async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::CreateOrg { db, slug, name } => {
            let url = require_url(&db)?;
            Db::migrate(&url).await?;
            let pool = Db::connect(&DbConfig::new(url)).await?;
            let org = organizations::create(&pool, &slug, &name).await?;
            println!("organization {} created: {}", org.slug, org.id);
        }
        AdminCommand::CreateUser {
            db,
            org,
            email,
            name,
            role,
            password,
        } => {
            let url = require_url(&db)?;
            let pool = Db::connect(&DbConfig::new(url)).await?;
            let org_id = organizations::id_by_slug(&pool, &org)
                .await?
                .with_context(|| format!("no organization '{org}'"))?;
            let role: Role = role.parse()?;
            let mut tx = pool.tenant(org_id).await?;
            let user = users::create(
                &mut tx,
                &Tenant::system(org_id, "admin-cli"),
                NewUser {
                    email,
                    name,
                    role,
                    password,
                },
            )
            .await?;
            tx.commit().await?;
            println!("user {} ({}) created: {}", user.email, user.role, user.id);
        }
    }
    Ok(())
}
