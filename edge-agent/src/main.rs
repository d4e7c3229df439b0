//! `maintainpro-edge` CLI: run the fleet simulator or replay a CSV file to an MQTT broker.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use maintainpro_edge::{
    parse_duration, parse_timestamp, replay, serve_metrics, simulate, EdgeStatus, FaultSpec, FsyncPolicy,
    FullPolicy, MqttTarget, OutboxConfig, OutboxStats, ReplayOptions, SimConfig, DEFAULT_OUTBOX_MAX_BYTES,
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// MaintAInPro gateway agent: publishes telemetry to `mp/v1/{org}/{device}/telemetry` (MQTT QoS 1).
#[derive(Debug, Parser)]
#[command(name = "maintainpro-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a fleet of gateways with optional injected faults.
    Simulate(SimulateArgs),
    /// Replay a CSV file (`ts,device,metric,value`, or NAB `timestamp,value` with --device/--metric).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
struct BrokerArgs {
    /// Broker URL: mqtt://[user:pass@]host[:port], tcp://host:port or host:port.
    #[arg(long, env = "MP_EDGE_BROKER", default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Organization slug (topic level).
    #[arg(long, env = "MP_EDGE_ORG", default_value = "demo")]
    org: String,
    /// MQTT client id [default: maintainpro-edge-<org>-<pid>].
    #[arg(long)]
    client_id: Option<String>,
    /// MQTT username (overrides the URL's). MaintAInPro's embedded broker
    /// expects `{org}/{device}`: the agent may then publish only that
    /// device's topics, so run one agent per device.
    #[arg(long, env = "MP_EDGE_USERNAME")]
    username: Option<String>,
    /// MQTT password: the device secret issued by the API (overrides the URL's).
    #[arg(long, env = "MP_EDGE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl BrokerArgs {
    fn target(&self) -> Result<MqttTarget> {
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("maintainpro-edge-{}-{}", self.org, std::process::id()));
        let mut target = MqttTarget::from_url(&self.broker, &client_id)?;
        if let Some(user) = &self.username {
            target.username = Some(user.clone());
        }
        if let Some(pass) = &self.password {
            target.password = Some(pass.clone());
        }
        Ok(target)
    }
}

/// Store-and-forward: every message is written to an on-disk outbox first and forwarded from
/// there, so broker outages and agent restarts lose nothing (see README).
#[derive(Debug, Args)]
struct OutboxArgs {
    /// Outbox directory (one running agent per directory)
    /// [default: $XDG_DATA_HOME or ~/.local/share /maintainpro/edge-outbox/<org>, else ./data/edge-outbox/<org>].
    #[arg(long, value_name = "DIR", env = "MP_EDGE_OUTBOX")]
    outbox: Option<PathBuf>,
    /// Publish directly without an outbox (messages in flight are lost if the agent dies).
    #[arg(long, conflicts_with = "outbox")]
    no_outbox: bool,
    /// Bound on the outbox size on disk (bytes; K, M, G, KiB, MiB, GiB suffixes allowed).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value_t = DEFAULT_OUTBOX_MAX_BYTES)]
    outbox_max_bytes: u64,
    /// When the outbox is full: drop-oldest (newest data wins, drops are counted) or block
    /// (the source pauses until the broker acknowledges).
    #[arg(long, value_name = "POLICY", default_value = "drop-oldest")]
    outbox_full: FullPolicy,
    /// fsync policy: `always` (survives power loss, slower) or an interval such as 100ms
    /// (a power loss may lose that much; a killed agent loses nothing either way).
    #[arg(long, value_name = "POLICY", default_value = "100ms")]
    outbox_fsync: FsyncPolicy,
    /// How long a finished run waits for the broker to acknowledge the outbox before exiting
    /// (what is left is sent by the next run).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    drain_timeout: Duration,
    /// Serve the outbox counters and uplink state for Prometheus at http://ADDR/metrics
    /// (e.g. 127.0.0.1:9102; see docs/edge-agent.md).
    #[arg(
        long,
        value_name = "ADDR",
        env = "MP_EDGE_METRICS_LISTEN",
        conflicts_with = "no_outbox"
    )]
    metrics_listen: Option<std::net::SocketAddr>,
}

impl OutboxArgs {
    fn config(&self, org: &str) -> Option<OutboxConfig> {
        if self.no_outbox {
            return None;
        }
        let dir = self.outbox.clone().unwrap_or_else(|| default_outbox_dir(org));
        Some(OutboxConfig {
            max_bytes: self.outbox_max_bytes,
            full: self.outbox_full,
            fsync: self.outbox_fsync,
            drain_timeout: self.drain_timeout,
            ..OutboxConfig::new(dir)
        })
    }
}

/// With `--metrics-listen`: binds the page and hooks it to the outbox configuration.
async fn start_metrics(
    args: &OutboxArgs,
    outbox: &mut Option<OutboxConfig>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let (Some(addr), Some(outbox)) = (args.metrics_listen, outbox.as_mut()) else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen {addr}"))?;
    let status = EdgeStatus::new();
    outbox.status = Some(status.clone());
    tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    tokio::spawn(serve_metrics(listener, status, shutdown.clone()));
    Ok(())
}

/// `$XDG_DATA_HOME/maintainpro/edge-outbox/<org>`, `~/.local/share/…`, else `./data/edge-outbox/<org>`.
fn default_outbox_dir(org: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match base {
        Some(base) => base.join("maintainpro").join("edge-outbox").join(org),
        None => PathBuf::from("data").join("edge-outbox").join(org),
    }
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a byte size"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}`")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

/// Prints the outbox counters; an error if some messages still wait for the broker.
fn outbox_summary(stats: Option<OutboxStats>, dir: Option<&OutboxConfig>) -> Result<()> {
    let (Some(s), Some(cfg)) = (stats, dir) else {
        return Ok(());
    };
    println!(
        "outbox: {} buffered ({} bytes), {} acknowledged, {} dropped, {} replayed from an earlier run",
        s.buffered_records, s.buffered_bytes, s.acked_records, s.dropped_records, s.replayed_records
    );
    if s.buffered_records > 0 {
        anyhow::bail!(
            "{} messages are still waiting in the outbox {} (broker unreachable?); the next run sends them",
            s.buffered_records,
            cfg.dir.display()
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
struct SimulateArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    /// Number of devices (gw-01, gw-02, …).
    #[arg(long, default_value_t = 3)]
    devices: usize,
    /// Sensors per device (bearing_temp, vibration, motor_current, pressure, flow, oil_temp, rpm, humidity, …).
    #[arg(long, default_value_t = 4)]
    sensors: usize,
    /// Milliseconds between samples of each device.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Inject a fault: DEVICE/METRIC:KIND@START+DURATION*MAGNITUDE, e.g. gw-01/bearing_temp:spike@60s+5s*10
    /// (kinds: spike, drift, step, stuck, dropout; magnitude in noise-scale units). Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<FaultSpec>,
    /// Samples per MQTT message (>1 publishes JSON arrays).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Stop after this many samples per device (default: run until Ctrl-C).
    #[arg(long)]
    samples: Option<u64>,
    /// Noise seed.
    #[arg(long, default_value_t = maintainpro_edge::DEFAULT_SEED)]
    seed: u64,
    /// Use synthetic timestamps starting here (RFC 3339 or epoch ms) and publish as fast as possible.
    #[arg(long, value_name = "TS")]
    synthetic_start: Option<String>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// CSV file to replay.
    file: PathBuf,
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    outbox: OutboxArgs,
    /// Playback speed relative to the file's timestamps (1.0 = real time); default: as fast as possible.
    #[arg(long)]
    speed: Option<f64>,
    /// Device name for `timestamp,value` files.
    #[arg(long)]
    device: Option<String>,
    /// Metric name for `timestamp,value` files.
    #[arg(long)]
    metric: Option<String>,
    /// Messages per MQTT payload (>1 publishes JSON arrays).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C received; finishing up (waiting for outstanding PUBACKs)");
            on_signal.cancel();
        }
    });

    match cli.command {
        Command::Simulate(args) => {
            let target = args.broker.target()?;
            let mut config = SimConfig::fleet(
                &args.broker.org,
                args.devices,
                args.sensors,
                Duration::from_millis(args.interval_ms),
            );
            config.faults = args.faults;
            config.batch = args.batch;
            config.max_samples = args.samples;
            config.seed = args.seed;
            config.outbox = args.outbox.config(&args.broker.org);
            start_metrics(&args.outbox, &mut config.outbox, &shutdown).await?;
            config.time_origin = args
                .synthetic_start
                .as_deref()
                .map(parse_timestamp)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--synthetic-start")?;
            let config_outbox = config.outbox.clone();
            let report = simulate(target, config, shutdown).await?;
            println!(
                "published {} messages, {} readings, {} faults",
                report.published_messages,
                report.published_readings,
                report.faults.len()
            );
            for fault in &report.faults {
                println!("{}", serde_json::to_string(fault)?);
            }
            outbox_summary(report.outbox, config_outbox.as_ref())?;
        }
        Command::Replay(args) => {
            let target = args.broker.target()?;
            let mut opts = ReplayOptions {
                speed: args.speed,
                batch: args.batch,
                device: args.device,
                metric: args.metric,
                outbox: args.outbox.config(&args.broker.org),
            };
            start_metrics(&args.outbox, &mut opts.outbox, &shutdown).await?;
            let config_outbox = opts.outbox.clone();
            let report = replay(target, &args.broker.org, &args.file, opts, shutdown).await?;
            println!(
                "published {} messages, {} readings from {} rows",
                report.published_messages, report.published_readings, report.rows
            );
            outbox_summary(report.outbox, config_outbox.as_ref())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_simulate_args() {
        let cli = Cli::try_parse_from([
            "maintainpro-edge",
            "simulate",
            "--broker",
            "mqtt://127.0.0.1:1883",
            "--org",
            "acme",
            "--devices",
            "5",
            "--fault",
            "gw-01/bearing_temp:spike@60s+5s*10",
            "--fault",
            "gw-02/vibration:drift@1m+10m*3",
            "--samples",
            "10",
        ])
        .unwrap();
        let Command::Simulate(args) = cli.command else {
            panic!("expected simulate");
        };
        assert_eq!(args.devices, 5);
        assert_eq!(args.faults.len(), 2);
        assert_eq!(args.samples, Some(10));
        assert_eq!(args.broker.org, "acme");
        let outbox = args.outbox.config("acme").unwrap();
        assert!(outbox.dir.ends_with("edge-outbox/acme"));
        assert_eq!(outbox.max_bytes, DEFAULT_OUTBOX_MAX_BYTES);
        assert!(Cli::try_parse_from(["maintainpro-edge", "simulate", "--fault", "bogus"]).is_err());
    }

    #[test]
    fn parses_replay_args() {
        let cli = Cli::try_parse_from([
            "maintainpro-edge",
            "replay",
            "nab.csv",
            "--speed",
            "2",
            "--device",
            "d",
            "--metric",
            "m",
        ])
        .unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("expected replay");
        };
        assert_eq!(args.file, PathBuf::from("nab.csv"));
        assert_eq!(args.speed, Some(2.0));
        assert!(args.outbox.config("demo").is_some(), "the CLI buffers by default");
    }

    #[test]
    fn parses_outbox_args() {
        let cli = Cli::try_parse_from([
            "maintainpro-edge",
            "replay",
            "x.csv",
            "--outbox",
            "/tmp/ob",
            "--outbox-max-bytes",
            "16MiB",
            "--outbox-full",
            "block",
            "--outbox-fsync",
            "always",
            "--drain-timeout",
            "2s",
        ])
        .unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("expected replay");
        };
        let c = args.outbox.config("demo").unwrap();
        assert_eq!(c.dir, PathBuf::from("/tmp/ob"));
        assert_eq!(c.max_bytes, 16 << 20);
        assert_eq!(c.full, FullPolicy::Block);
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.drain_timeout, Duration::from_secs(2));
        let cli = Cli::try_parse_from(["maintainpro-edge", "simulate", "--no-outbox"]).unwrap();
        let Command::Simulate(args) = cli.command else {
            panic!("expected simulate");
        };
        assert!(args.outbox.config("demo").is_none());
        assert!(Cli::try_parse_from(["maintainpro-edge", "simulate", "--outbox-full", "x"]).is_err());
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("1XB").is_err());
    }
}
