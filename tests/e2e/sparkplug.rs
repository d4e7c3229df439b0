//! Acceptance: Sparkplug B end to end, the second codec: an edge node's
//! NBIRTH defines aliases, NDATA by alias is stored as readings, an alias no
//! birth defined is dead-lettered (and a rebirth is asked for), and NDEATH
//! marks the node stale until its next birth. Runs on both brokers.

use std::time::Duration;

use chrono::Utc;
use maintainpro_ingest::sparkplug::datatype;
use maintainpro_ingest::sparkplug::proto::metric::Value as V;
use maintainpro_ingest::sparkplug::proto::{Metric, Payload};
use prost::Message as _;
use serde_json::Value;

use crate::support::{eventually, on_both_brokers, App, BrokerKind};

on_both_brokers!(sparkplug_births_data_and_deaths);

fn metric(name: Option<&str>, alias: Option<u64>, dt: u32, ts: u64, v: V) -> Metric {
    Metric {
        name: name.map(Into::into),
        alias,
        timestamp: Some(ts),
        datatype: Some(dt),
        value: Some(v),
        ..Default::default()
    }
}

async fn sparkplug_births_data_and_deaths(broker: BrokerKind) {
    let Some(app) = App::start_on(broker).await else {
        return;
    };
    let org = app.seed_org("spb", &["temp", "motor.current"]).await;
    let token = app.login(&org).await;
    let node = &org.device.name;
    let topic = |kind: &str| format!("spBv1.0/{}/{kind}/{node}", org.slug);
    let t0 = (Utc::now().timestamp_millis() - 60_000) as u64;

    let birth = Payload {
        timestamp: Some(t0),
        seq: Some(0),
        metrics: vec![
            metric(Some("bdSeq"), None, datatype::INT64, t0, V::LongValue(7)),
            metric(Some("temp"), Some(1), datatype::DOUBLE, t0, V::DoubleValue(20.5)),
            // Sparkplug folders ('/') map onto '.' in sensor metrics.
            metric(
                Some("motor/current"),
                Some(2),
                datatype::FLOAT,
                t0,
                V::FloatValue(1.5),
            ),
        ],
    };
    let data = Payload {
        timestamp: Some(t0 + 1000),
        seq: Some(1),
        metrics: vec![
            metric(None, Some(1), datatype::DOUBLE, t0 + 1000, V::DoubleValue(21.25)),
            metric(None, Some(2), datatype::FLOAT, t0 + 1000, V::FloatValue(1.75)),
        ],
    };
    let unknown_alias = Payload {
        timestamp: Some(t0 + 2000),
        seq: Some(2),
        metrics: vec![metric(
            None,
            Some(99),
            datatype::DOUBLE,
            t0 + 2000,
            V::DoubleValue(1.0),
        )],
    };
    app.publish(&[
        (topic("NBIRTH"), birth.encode_to_vec()),
        (topic("NDATA"), data.encode_to_vec()),
        (topic("NDATA"), unknown_alias.encode_to_vec()),
        (topic("NDATA"), b"not protobuf \xff\xff".to_vec()),
    ])
    .await;

    // Birth values and data by alias are readings of the node's sensors.
    for (sensor, expected) in org.sensors.iter().zip([[20.5, 21.25], [1.5, 1.75]]) {
        let path = format!(
            "/api/v1/sensors/{}/readings?from={}&to={}&maxPoints=10",
            sensor.id,
            urlencode(
                &chrono::DateTime::from_timestamp_millis(t0 as i64 - 1000)
                    .unwrap()
                    .to_rfc3339()
            ),
            urlencode(&Utc::now().to_rfc3339()),
        );
        let buckets: Vec<Value> = eventually(Duration::from_secs(20), "sparkplug readings", || async {
            let (status, body) = app.get(&token, &path).await;
            assert_eq!(status, 200, "{body}");
            let buckets = body["data"]["buckets"].as_array().cloned().unwrap_or_default();
            let n: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
            (n == 2).then_some(buckets)
        })
        .await;
        let min = buckets
            .iter()
            .map(|b| b["min"].as_f64().unwrap())
            .fold(f64::MAX, f64::min);
        let max = buckets
            .iter()
            .map(|b| b["max"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!([min, max], expected, "sensor {}", sensor.metric);
    }

    let letters: Vec<Value> = eventually(Duration::from_secs(20), "sparkplug dead letters", || async {
        let (status, body) = app.get(&token, "/api/v1/dead-letters").await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"].as_array().cloned().unwrap_or_default();
        (items.len() >= 2).then_some(items)
    })
    .await;
    let mut reasons: Vec<&str> = letters.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons, ["malformed_payload", "unknown_alias"], "{letters:?}");
    let alias = letters.iter().find(|l| l["reason"] == "unknown_alias").unwrap();
    assert!(alias["detail"].as_str().unwrap().contains("99"), "{alias}");

    // Death with the birth's bdSeq: the node is stale until it is reborn.
    let death = Payload {
        timestamp: Some(t0 + 3000),
        seq: None,
        metrics: vec![metric(
            Some("bdSeq"),
            None,
            datatype::INT64,
            t0 + 3000,
            V::LongValue(7),
        )],
    };
    app.publish(&[(topic("NDEATH"), death.encode_to_vec())]).await;
    let stats = app.running.ingest_stats.clone();
    eventually(Duration::from_secs(20), "node marked stale", || async {
        let stale = stats.stale_devices();
        stale.iter().any(|d| &d.device == node).then_some(())
    })
    .await;
    let reborn = Payload {
        seq: Some(0),
        ..birth
    };
    app.publish(&[(topic("NBIRTH"), reborn.encode_to_vec())]).await;
    eventually(
        Duration::from_secs(20),
        "stale mark cleared by a birth",
        || async { stats.stale_devices().is_empty().then_some(()) },
    )
    .await;
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
