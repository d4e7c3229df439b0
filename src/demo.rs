//! The demo: an organization with an admin, a small plant (a site, one
//! machine per gateway), devices and sensors matching a simulated fleet,
//! and faults injected early so anomalies and work orders appear within
//! minutes. Seeding is idempotent: a restart on the same data reuses it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use maintainpro_edge::{FaultKind, FaultSpec, Fleet, SimConfig};
use maintainpro_models::auth::Role;
use maintainpro_models::devices::{self, NewDevice, NewSensor};
use maintainpro_models::equipment::{self, NewEquipment};
use maintainpro_models::users::{self, NewUser};
use maintainpro_models::{organizations, readings, Db, Tenant, Tx};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub org_slug: String,
    pub devices: usize,
    pub sensors_per_device: usize,
    pub interval: Duration,
    /// Inject the demo faults (spike, step, stuck) in the first minutes.
    pub faults: bool,
    /// Readings to write for the time before the fleet goes live (at most
    /// one per second per sensor), so trends and the detectors have history
    /// from the first minute. Only on the first start: a fleet that already
    /// has readings keeps them.
    pub history: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            org_slug: "demo".into(),
            devices: 3,
            sensors_per_device: 4,
            interval: Duration::from_secs(1),
            faults: true,
            history: Duration::ZERO,
        }
    }
}

/// What the demo created, for the person at the terminal.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub org_id: Uuid,
    pub admin_email: String,
    pub admin_password: String,
    pub sim: SimConfig,
    /// The MQTT secret of each simulated gateway, by device name (rotated at
    /// every start: the demo does not keep secrets between runs).
    pub device_secrets: Vec<(String, String)>,
}

impl DemoInfo {
    /// The fleet split into one simulation per gateway, with its secret:
    /// each gateway signs in to the broker as itself.
    pub fn per_device(&self) -> Vec<(SimConfig, String)> {
        split_by_device(&self.sim)
            .into_iter()
            .filter_map(|sim| {
                let name = &sim.devices.first()?.name;
                let secret = self.device_secrets.iter().find(|(n, _)| n == name)?.1.clone();
                Some((sim, secret))
            })
            .collect()
    }
}

/// One simulation per device of `sim` (with that device's faults).
pub fn split_by_device(sim: &SimConfig) -> Vec<SimConfig> {
    sim.devices
        .iter()
        .map(|d| SimConfig {
            devices: vec![d.clone()],
            faults: sim
                .faults
                .iter()
                .filter(|f| f.device == d.name)
                .cloned()
                .collect(),
            ..sim.clone()
        })
        .collect()
}

const MACHINES: [(&str, &str); 6] = [
    ("Cooling water pump", "critical"),
    ("Air compressor", "high"),
    ("Conveyor drive", "medium"),
    ("Hydraulic press", "high"),
    ("Mixer gearbox", "medium"),
    ("Exhaust fan", "low"),
];

/// Creates (or reuses) the demo organization and fleet.
pub async fn seed(db: &Db, opts: &DemoOptions) -> anyhow::Result<DemoInfo> {
    let org_id = match organizations::id_by_slug(db, &opts.org_slug).await? {
        Some(id) => id,
        None => {
            organizations::create(db, &opts.org_slug, "Demo Manufacturing")
                .await?
                .id
        }
    };
    let tenant = Tenant::system(org_id, "demo");
    let mut sim = SimConfig::fleet(
        &opts.org_slug,
        opts.devices,
        opts.sensors_per_device,
        opts.interval,
    );
    let mut tx = db.tenant(org_id).await?;

    let admin_email = format!("admin@{}.local", opts.org_slug);
    let admin_password = random_password();
    match users::find_by_email(&mut tx, &admin_email).await? {
        Some(u) => users::set_password(&mut tx, u.id, &admin_password).await?,
        None => {
            users::create(
                &mut tx,
                &tenant,
                NewUser {
                    email: admin_email.clone(),
                    name: "Demo Admin".into(),
                    role: Role::Admin,
                    password: admin_password.clone(),
                },
            )
            .await?;
        }
    }

    let mut device_secrets = Vec::new();
    let site = ensure_equipment(&mut tx, &tenant, "SITE-1", "Plant 1 - Line A", None, "high").await?;
    for (i, device) in sim.devices.iter().enumerate() {
        let (kind, criticality) = MACHINES[i % MACHINES.len()];
        let machine = ensure_equipment(
            &mut tx,
            &tenant,
            &format!("M-{:03}", 101 + i),
            &format!("{kind} M-{:03}", 101 + i),
            Some(site),
            criticality,
        )
        .await?;
        let existing = devices::list_devices(&mut tx).await?;
        let creds = match existing.iter().find(|d| d.name == device.name) {
            Some(d) => devices::rotate_credentials(&mut tx, &tenant, d.id).await?,
            None => {
                devices::create_device(
                    &mut tx,
                    &tenant,
                    NewDevice {
                        name: device.name.clone(),
                        description: format!("Demo gateway on {kind}"),
                    },
                )
                .await?
            }
        };
        let device_id = creds.device.id;
        device_secrets.push((device.name.clone(), creds.secret));
        let sensors = devices::list_sensors(&mut tx, None, Some(device_id)).await?;
        for spec in &device.sensors {
            if sensors.iter().any(|s| s.metric == spec.metric) {
                continue;
            }
            devices::create_sensor(
                &mut tx,
                &tenant,
                NewSensor {
                    device_id,
                    equipment_id: machine,
                    metric: spec.metric.clone(),
                    name: Some(spec.metric.replace('_', " ")),
                    unit: spec.unit.clone(),
                    min_value: None,
                    max_value: None,
                },
            )
            .await?;
        }
    }
    if !opts.history.is_zero() {
        // In the seed's transaction: analytics sees the sensors, their
        // history and their cursors at once.
        backfill(&mut tx, org_id, &sim, opts.history).await?;
    }
    tx.commit().await.context("cannot commit the demo seed")?;

    if opts.faults {
        sim.faults = demo_faults(&sim);
    }
    Ok(DemoInfo {
        org_id,
        admin_email,
        admin_password,
        sim,
        device_secrets,
    })
}

/// A spike, a step and a stuck sensor on different gateways in the first
/// few minutes (the streaming detector needs about 180 readings of history
/// before it calls anything improbable). Times are counted in sampling
/// intervals, so a faster demo fleet (as the UI tests run) faults sooner.
fn demo_faults(sim: &SimConfig) -> Vec<FaultSpec> {
    let plan = [
        (0usize, 0usize, FaultKind::Spike, 240u32, 5u32, 12.0),
        (1, 1, FaultKind::Step, 270, 60, 10.0),
        (2, 2, FaultKind::Stuck, 250, 120, 0.0),
    ];
    plan.iter()
        .filter_map(|&(d, s, kind, start, dur, magnitude)| {
            let device = sim.devices.get(d)?;
            let sensor = device
                .sensors
                .get(s.min(device.sensors.len().saturating_sub(1)))?;
            Some(FaultSpec {
                device: device.name.clone(),
                metric: sensor.metric.clone(),
                kind,
                start_after: sim.interval * start,
                duration: sim.interval * dur,
                magnitude,
            })
        })
        .collect()
}

/// Rows written per statement by [`backfill`].
const BACKFILL_CHUNK: usize = 20_000;

/// Writes `span` of fault-free simulated history ending now for every sensor
/// of the fleet, one reading per `max(interval, 1 s)`, unless the
/// organization already has readings. The analytics cursors are set at the
/// end of that history: detectors learn from it (they prime on the readings
/// before their cursor) but do not raise anomalies in the past. Returns how
/// many rows it wrote.
pub async fn backfill(tx: &mut Tx, org_id: Uuid, sim: &SimConfig, span: Duration) -> anyhow::Result<u64> {
    if readings::latest_ts(tx).await?.is_some() {
        return Ok(0);
    }
    let mut ids = HashMap::new();
    for device in devices::list_devices(tx).await? {
        for sensor in devices::list_sensors(tx, None, Some(device.id)).await? {
            ids.insert((device.name.clone(), sensor.metric), sensor.id);
        }
    }
    let step = sim.interval.max(Duration::from_secs(1));
    let step_delta = TimeDelta::from_std(step).context("demo interval too large")?;
    let end = Utc::now();
    let start = end - TimeDelta::from_std(span).context("demo history too long")?;
    let clean = SimConfig {
        faults: Vec::new(),
        ..sim.clone()
    };
    let mut fleet = Fleet::new(&clean, start)?;
    let (mut sensor_ids, mut stamps, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut written = 0u64;
    let mut ts = start;
    while ts < end {
        for (device, msg) in fleet.sample(ts) {
            for (metric, value) in msg.metrics {
                if let Some(&id) = ids.get(&(device.clone(), metric)) {
                    sensor_ids.push(id);
                    stamps.push(msg.ts);
                    values.push(value);
                }
            }
        }
        ts += step_delta;
        if sensor_ids.len() >= BACKFILL_CHUNK || (ts >= end && !sensor_ids.is_empty()) {
            let r = sqlx::query(
                "INSERT INTO readings (organization_id, sensor_id, ts, value)
                 SELECT $1, * FROM UNNEST($2::uuid[], $3::timestamptz[], $4::float8[])
                 ON CONFLICT DO NOTHING",
            )
            .bind(org_id)
            .bind(&sensor_ids)
            .bind(&stamps)
            .bind(&values)
            .execute(&mut **tx)
            .await
            .context("cannot write the demo history")?;
            written += r.rows_affected();
            sensor_ids.clear();
            stamps.clear();
            values.clear();
        }
    }
    sqlx::query(
        "INSERT INTO analytics_cursors (organization_id, sensor_id, last_ts)
         SELECT $1, sensor_id, max(ts) FROM readings GROUP BY sensor_id
         ON CONFLICT (sensor_id) DO UPDATE SET last_ts = EXCLUDED.last_ts, updated_at = now()",
    )
    .bind(org_id)
    .execute(&mut **tx)
    .await
    .context("cannot set the analytics cursors after the demo history")?;
    tracing::info!(rows = written, span_s = span.as_secs(), "demo history written");
    Ok(written)
}

async fn ensure_equipment(
    tx: &mut Tx,
    tenant: &Tenant,
    tag: &str,
    name: &str,
    parent: Option<Uuid>,
    criticality: &str,
) -> anyhow::Result<Uuid> {
    if let Some(e) = equipment::find_by_tag(tx, tag).await? {
        return Ok(e.id);
    }
    Ok(equipment::create(
        tx,
        tenant,
        NewEquipment {
            name: name.into(),
            asset_tag: tag.into(),
            parent_id: parent,
            description: String::new(),
            location: "Building 1".into(),
            criticality: Some(criticality.into()),
        },
    )
    .await?
    .id)
}

fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}
