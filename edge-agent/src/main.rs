//! `maintainpro-edge` CLI: run the fleet simulator or replay a CSV file to an MQTT broker.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use maintainpro_edge::{parse_timestamp, replay, simulate, FaultSpec, MqttTarget, ReplayOptions, SimConfig};
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
}

impl BrokerArgs {
    fn target(&self) -> Result<MqttTarget> {
        let client_id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("maintainpro-edge-{}-{}", self.org, std::process::id()));
        Ok(MqttTarget::from_url(&self.broker, &client_id)?)
    }
}

#[derive(Debug, Args)]
struct SimulateArgs {
    #[command(flatten)]
    broker: BrokerArgs,
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
            config.time_origin = args
                .synthetic_start
                .as_deref()
                .map(parse_timestamp)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--synthetic-start")?;
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
        }
        Command::Replay(args) => {
            let target = args.broker.target()?;
            let opts = ReplayOptions {
                speed: args.speed,
                batch: args.batch,
                device: args.device,
                metric: args.metric,
            };
            let report = replay(target, &args.broker.org, &args.file, opts, shutdown).await?;
            println!(
                "published {} messages, {} readings from {} rows",
                report.published_messages, report.published_readings, report.rows
            );
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
    }
}
