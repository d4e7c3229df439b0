//! Acceptance: a fault published over MQTT becomes an anomaly and an auto
//! work order visible through the API; a second identical fault while the
//! first is open adds to it instead of creating another. Runs on the
//! embedded broker and on Mosquitto.

use std::time::Duration;

use chrono::Utc;
use maintainpro_edge::{FaultKind, FaultSpec, MqttTarget, SimConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{eventually, on_both_brokers, App, BrokerKind, SeededOrg};

/// Runs the simulator for `samples` seconds of synthetic data from `origin`,
/// with one spike on bearing_temp `spike_after` into it.
async fn simulate(app: &App, org: &SeededOrg, origin: chrono::DateTime<Utc>, samples: u64, spike_after: u64) {
    let mut sim = SimConfig::fleet(&org.slug, 1, 2, Duration::from_secs(1));
    sim.time_origin = Some(origin);
    sim.max_samples = Some(samples);
    sim.batch = 10;
    sim.faults = vec![FaultSpec {
        device: "gw-01".into(),
        metric: "bearing_temp".into(),
        kind: FaultKind::Spike,
        start_after: Duration::from_secs(spike_after),
        duration: Duration::from_secs(3),
        magnitude: 15.0,
    }];
    let (username, password) = app.device_login(org);
    let target = MqttTarget {
        host: app.running.mqtt_host.clone(),
        port: app.running.mqtt_port,
        client_id: format!("sim-{}", uuid::Uuid::new_v4().simple()),
        username,
        password,
    };
    let report = maintainpro_edge::simulate(target, sim, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.faults.len(), 1, "the spike was injected");
}

on_both_brokers!(a_fault_raises_one_auto_work_order_linked_to_its_anomaly);

async fn a_fault_raises_one_auto_work_order_linked_to_its_anomaly(broker: BrokerKind) {
    let Some(app) = App::start_on(broker).await else {
        return;
    };
    let org = app.seed_org("loop", &["bearing_temp", "vibration"]).await;
    let token = app.login(&org).await;
    let origin = Utc::now() - chrono::Duration::hours(1);

    simulate(&app, &org, origin, 300, 200).await;
    let wos: Vec<Value> = eventually(Duration::from_secs(60), "an auto work order", || async {
        let (status, body) = app.get(&token, "/api/v1/work-orders?source=auto").await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(wos.len(), 1, "{wos:?}");
    let wo = &wos[0];
    assert_eq!(wo["source"], "auto");
    assert_eq!(wo["status"], "open");
    assert_eq!(
        wo["equipmentId"].as_str(),
        Some(org.equipment.id.to_string().as_str())
    );
    assert!(wo["code"].as_str().unwrap().starts_with("WO-"));
    let anomaly_id = wo["anomalyId"].as_str().expect("linked anomaly").to_string();

    let (status, anomaly) = app.get(&token, &format!("/api/v1/anomalies/{anomaly_id}")).await;
    assert_eq!(status, 200, "{anomaly}");
    let a = &anomaly["data"];
    let wo_id = wo["id"].as_str().unwrap();
    assert_eq!(a["workOrderId"].as_str(), Some(wo_id));
    assert_eq!(a["kind"], "high");
    assert_eq!(
        a["sensorId"].as_str(),
        Some(org.sensors[0].id.to_string().as_str())
    );

    // The same fault again, later, while the work order is still open.
    simulate(&app, &org, origin + chrono::Duration::seconds(300), 300, 200).await;
    let anomalies: Vec<Value> = eventually(Duration::from_secs(60), "the second anomaly", || async {
        let (_, body) = app.get(&token, "/api/v1/anomalies").await;
        let items = body["data"].as_array().cloned().unwrap_or_default();
        (items.len() >= 2).then_some(items)
    })
    .await;
    assert_eq!(
        anomalies.len(),
        2,
        "exactly the two injected spikes: {anomalies:?}"
    );
    for a in &anomalies {
        assert_eq!(a["workOrderId"].as_str(), Some(wo_id));
    }
    let (_, body) = app.get(&token, "/api/v1/work-orders?source=auto").await;
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "still one auto work order: {items:?}");
    assert_eq!(items[0]["occurrenceCount"].as_i64(), Some(2));

    // Readings arrived: the trend endpoint has buckets for the whole span.
    let (status, trend) = app
        .get(
            &token,
            &format!(
                "/api/v1/sensors/{}/readings?from={}&to={}&maxPoints=60",
                org.sensors[0].id,
                (origin - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                (origin + chrono::Duration::seconds(601)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        )
        .await;
    assert_eq!(status, 200, "{trend}");
    let buckets = trend["data"]["buckets"].as_array().unwrap();
    assert!(
        buckets.len() >= 50 && buckets.len() <= 61,
        "{} buckets",
        buckets.len()
    );
    let total: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 600);
    app.stop().await;
}
