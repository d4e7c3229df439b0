//! Acceptance: two ingest instances on one shared subscription
//! (`$share/{group}/mp/v1/+/+/telemetry`, distinct client ids, one database)
//! split the load and lose nothing — every numbered reading sent is stored
//! exactly once and each instance stored a real share. Runs on the embedded
//! broker (rumqttd 0.19 supports `$share`, round robin) and on Mosquitto
//! (`$share` for MQTT 3.1.1 clients, which rumqttc's default client is).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use maintainpro_ingest::{IngestConfig, IngestStats};
use maintainpro_models::devices::{self, NewDevice, NewSensor};
use tokio_util::sync::CancellationToken;

use crate::support::{eventually, on_both_brokers, App, BrokerKind};

const GROUP: &str = "ingest";
const DEVICES: usize = 20;
const PER_DEVICE: usize = 500;

on_both_brokers!(two_ingest_instances_share_the_load_and_lose_nothing);

async fn two_ingest_instances_share_the_load_and_lose_nothing(broker: BrokerKind) {
    let Some(app) = App::start_with(broker, |c| {
        c.with_analytics = false;
        c.ingest.client_id = "ingest-a".into();
        c.ingest.shared_group = Some(GROUP.into());
    })
    .await
    else {
        return;
    };
    let org = app.seed_org("share", &["v"]).await;
    let mut names = vec![org.device.name.clone()];
    {
        let mut tx = app.running.db.tenant(org.tenant.org_id).await.unwrap();
        for d in 1..DEVICES {
            let name = format!("gw-{:02}", d + 1);
            let creds = devices::create_device(
                &mut tx,
                &org.tenant,
                NewDevice {
                    name: name.clone(),
                    description: String::new(),
                },
            )
            .await
            .unwrap();
            app.register_device(&org.slug, &name, &creds.secret);
            let device = creds.device;
            let sensor = NewSensor {
                device_id: device.id,
                equipment_id: org.equipment.id,
                metric: "v".into(),
                name: None,
                unit: String::new(),
                min_value: None,
                max_value: None,
            };
            devices::create_sensor(&mut tx, &org.tenant, sensor)
                .await
                .unwrap();
            names.push(name);
        }
        tx.commit().await.unwrap();
    }

    // The second instance: same database, same group, its own client id.
    let a = app.running.ingest_stats.clone();
    let b = Arc::new(IngestStats::new());
    let stop_b = CancellationToken::new();
    let config_b = IngestConfig {
        mqtt_host: app.running.mqtt_host.clone(),
        // A service of the system: the broker's internal port.
        mqtt_port: app.running.mqtt_internal_port,
        client_id: "ingest-b".into(),
        shared_group: Some(GROUP.into()),
        flush_interval: Duration::from_millis(50),
        ..IngestConfig::default()
    };
    let instance_b = tokio::spawn(maintainpro_ingest::run(
        app.running.db.clone(),
        config_b,
        b.clone(),
        stop_b.clone(),
    ));

    let topic = |device: &str| format!("mp/v1/{}/{device}/telemetry", org.slug);
    let base_ms = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis();

    // Both instances subscribed: probe (readings a day earlier, outside the
    // checked range) until each has received one.
    let mut probe = 0i64;
    eventually(Duration::from_secs(30), "both instances subscribed", || {
        probe += 1;
        let payload = format!(
            r#"{{"ts":{},"metrics":{{"v":-1}}}}"#,
            base_ms - 86_400_000 + probe
        );
        let (app, topic, a, b) = (&app, topic(&names[0]), a.clone(), b.clone());
        async move {
            app.publish(&[(topic, payload.into_bytes())]).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            (a.snapshot().messages > 0 && b.snapshot().messages > 0).then_some(())
        }
    })
    .await;
    // Wait for the probes to be committed so the counters below are ours.
    let probes = eventually(Duration::from_secs(30), "the probes stored", || async {
        let n = a.snapshot().readings + b.snapshot().readings;
        (n == probe as u64).then_some(n)
    })
    .await;
    let (a0, b0) = (a.snapshot(), b.snapshot());
    assert_eq!(a0.readings + b0.readings, probes);

    // N numbered readings: device d, message i → ts base+i ms, value d*100000+i.
    let mut sent = HashSet::new();
    let mut batches: [Vec<(String, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    for i in 0..PER_DEVICE {
        for (d, name) in names.iter().enumerate() {
            let (ts, value) = (base_ms + i as i64, (d * 100_000 + i) as i64);
            sent.insert((name.clone(), ts, value));
            let payload = format!(r#"{{"ts":{ts},"metrics":{{"v":{value}}}}}"#);
            batches[d % 2].push((topic(name), payload.into_bytes()));
        }
    }
    let total = (DEVICES * PER_DEVICE) as u64;
    // Two publishers at once.
    tokio::join!(app.publish(&batches[0]), app.publish(&batches[1]));

    eventually(Duration::from_secs(120), "every reading stored", || async {
        let stored = a.snapshot().readings + b.snapshot().readings - probes;
        (stored >= total).then_some(())
    })
    .await;

    let owner = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT d.name, (extract(epoch FROM r.ts) * 1000)::bigint, r.value
           FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN devices d ON d.id = s.device_id
          WHERE r.organization_id = $1 AND r.ts >= to_timestamp($2::double precision / 1000)",
    )
    .bind(org.tenant.org_id)
    .bind(base_ms)
    .fetch_all(&owner)
    .await
    .unwrap();
    owner.close().await;
    assert_eq!(rows.len(), sent.len(), "one row per reading sent");
    let stored: HashSet<(String, i64, i64)> = rows
        .into_iter()
        .map(|(name, ts, value)| (name, ts, value as i64))
        .collect();
    let missing: Vec<_> = sent.difference(&stored).take(5).collect();
    let extra: Vec<_> = stored.difference(&sent).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "stored set differs from sent set ({broker:?}): missing {missing:?}, unexpected {extra:?}"
    );

    let (a1, b1) = (a.snapshot(), b.snapshot());
    let (share_a, share_b) = (a1.readings - a0.readings, b1.readings - b0.readings);
    eprintln!(
        "{broker:?}: instance a stored {share_a} ({} messages, {} duplicates), \
         instance b stored {share_b} ({} messages, {} duplicates)",
        a1.messages - a0.messages,
        a1.duplicates - a0.duplicates,
        b1.messages - b0.messages,
        b1.duplicates - b0.duplicates,
    );
    assert_eq!(
        share_a + share_b,
        total,
        "each reading stored by exactly one instance"
    );
    assert!(
        share_a > total / 10 && share_b > total / 10,
        "both instances took a real share ({broker:?}): a {share_a}, b {share_b} of {total}"
    );

    stop_b.cancel();
    instance_b.await.unwrap().unwrap();
    app.stop().await;
}
