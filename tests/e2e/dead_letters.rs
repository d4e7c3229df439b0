//! Acceptance: malformed payloads, unknown devices and non-numeric values
//! land in dead_letters with a reason, and ingest keeps going. Runs on the
//! embedded broker and on Mosquitto.

use std::time::Duration;

use serde_json::Value;

use crate::support::{eventually, on_both_brokers, App, BrokerKind};

on_both_brokers!(bad_input_is_dead_lettered_and_ingest_keeps_running);

async fn bad_input_is_dead_lettered_and_ingest_keeps_running(broker: BrokerKind) {
    let Some(app) = App::start_on(broker).await else {
        return;
    };
    let org = app.seed_org("dl", &["temp"]).await;
    let token = app.login(&org).await;
    let topic = format!("mp/v1/{}/{}/telemetry", org.slug, org.device.name);
    let now = chrono::Utc::now().to_rfc3339();
    app.publish(&[
        (topic.clone(), b"{not json".to_vec()),
        (
            format!("mp/v1/{}/ghost-device/telemetry", org.slug),
            format!(r#"{{"ts":"{now}","metrics":{{"temp":1}}}}"#).into_bytes(),
        ),
        (
            topic.clone(),
            format!(r#"{{"ts":"{now}","metrics":{{"temp":"hot"}}}}"#).into_bytes(),
        ),
        (
            topic.clone(),
            format!(r#"{{"ts":"{now}","metrics":{{"pressure":3}}}}"#).into_bytes(),
        ),
        ("mp/v1/no-such-org/gw/telemetry".to_string(), b"{}".to_vec()),
        ("mp/v1//gw-01/telemetry".to_string(), b"{}".to_vec()),
    ])
    .await;

    let letters: Vec<Value> = eventually(Duration::from_secs(20), "dead letters", || async {
        let (status, body) = app.get(&token, "/api/v1/dead-letters").await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"].as_array().cloned().unwrap_or_default();
        (items.len() >= 4).then_some(items)
    })
    .await;
    let mut reasons: Vec<&str> = letters.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "invalid_value",
            "malformed_payload",
            "unknown_device",
            "unknown_sensor"
        ]
    );
    for l in &letters {
        assert!(
            !l["detail"].as_str().unwrap().is_empty(),
            "every dead letter explains itself: {l}"
        );
    }
    let invalid = letters.iter().find(|l| l["reason"] == "invalid_value").unwrap();
    assert!(invalid["detail"].as_str().unwrap().contains("temp"), "{invalid}");

    // Unattributable input is kept too, but no tenant sees it.
    let owner = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let orphans: Vec<(String,)> =
        sqlx::query_as("SELECT reason FROM dead_letters WHERE organization_id IS NULL ORDER BY reason")
            .fetch_all(&owner)
            .await
            .unwrap();
    let orphans: Vec<&str> = orphans.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(orphans, vec!["bad_topic", "unknown_device"]);
    owner.close().await;

    // Still running: a good reading after all that is stored.
    app.publish(&[(
        topic,
        format!(r#"{{"ts":"{now}","metrics":{{"temp":21.5}}}}"#).into_bytes(),
    )])
    .await;
    let sensor = org.sensors[0].id;
    eventually(Duration::from_secs(20), "the good reading", || async {
        let (_, body) = app
            .get(&token, &format!("/api/v1/sensors/{sensor}/readings"))
            .await;
        let n: i64 = body["data"]["buckets"]
            .as_array()?
            .iter()
            .filter_map(|b| b["count"].as_i64())
            .sum();
        (n == 1).then_some(())
    })
    .await;
    app.stop().await;
}
