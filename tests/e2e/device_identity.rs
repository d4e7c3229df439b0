//! Acceptance: device identity on the embedded broker. A device signs in
//! with the credentials the API issued and its readings are stored; a wrong
//! secret is refused at CONNACK; a device publishing under another device's
//! or another organization's topic stores nothing for the victim, leaves a
//! dead letter with the reason, and keeps its connection; rotating the
//! secret refuses the old one (and drops connections made with it) and
//! accepts the new one; a revoked device cannot connect.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{eventually, App};

/// Connects with `login`; the broker's CONNACK answer and the live client.
async fn connect(
    app: &App,
    login: Option<(&str, &str)>,
) -> Result<(AsyncClient, rumqttc::EventLoop), ConnectReturnCode> {
    let mut opts = MqttOptions::new(
        format!("id-test-{}", Uuid::new_v4().simple()),
        &app.running.mqtt_host,
        app.running.mqtt_port,
    );
    opts.set_keep_alive(Duration::from_secs(5));
    if let Some((user, pass)) = login {
        opts.set_credentials(user, pass);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, eventloop)),
            Ok(Ok(_)) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => return Err(code),
            Ok(Err(e)) => panic!("unexpected MQTT error: {e}"),
            Err(_) => panic!("no CONNACK within 10 s"),
        }
    }
}

async fn refused(app: &App, user: &str, pass: &str) -> ConnectReturnCode {
    match connect(app, Some((user, pass))).await {
        Ok(_) => panic!("{user} was let in"),
        Err(code) => code,
    }
}

async fn post(app: &App, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn count_readings(app: &App, sensor: Uuid) -> i64 {
    let owner = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM readings WHERE sensor_id = $1")
        .bind(sensor)
        .fetch_one(&owner)
        .await
        .unwrap();
    owner.close().await;
    n
}

fn reading(value: f64) -> Vec<u8> {
    format!(
        r#"{{"ts":"{}","metrics":{{"temp":{value}}}}}"#,
        chrono::Utc::now().to_rfc3339()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_sign_in_and_publish_only_as_themselves() {
    let app = App::start().await;
    assert!(app.running.mqtt_device_auth, "device auth is on by default");
    let a = app.seed_org("ident-a", &["temp"]).await;
    let b = app.seed_org("ident-b", &["temp"]).await;
    let token_a = app.login(&a).await;
    let token_b = app.login(&b).await;
    let user_a = format!("{}/{}", a.slug, a.device.name);

    // A second gateway of organization A, with a sensor, through the API.
    let (status, created) = post(
        &app,
        &token_a,
        "/api/v1/devices",
        serde_json::json!({"name": "gw-02"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let gw2 = created["data"]["device"]["id"].as_str().unwrap().to_string();
    let gw2_secret = created["data"]["secret"].as_str().unwrap().to_string();
    let (status, sensor) = post(
        &app,
        &token_a,
        "/api/v1/sensors",
        serde_json::json!({"deviceId": gw2, "equipmentId": a.equipment.id, "metric": "temp"}),
    )
    .await;
    assert_eq!(status, 201, "{sensor}");
    let gw2_sensor: Uuid = sensor["data"]["id"].as_str().unwrap().parse().unwrap();
    let (status, one) = app.get(&token_a, &format!("/api/v1/devices/{gw2}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"]["name"], "gw-02");
    assert!(one["data"].get("secret").is_none() && one["data"].get("secretHash").is_none());

    // Wrong, unknown or missing credentials: refused at CONNACK.
    assert_eq!(
        refused(&app, &user_a, "not-the-secret").await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        refused(&app, "ident-a/ghost", "x").await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        refused(&app, "no-slash", "x").await,
        ConnectReturnCode::BadUserNamePassword
    );
    assert!(matches!(
        connect(&app, None).await,
        Err(ConnectReturnCode::NotAuthorized)
    ));
    // B's secret does not open A's device.
    assert_eq!(
        refused(&app, &user_a, &b.device_secret).await,
        ConnectReturnCode::BadUserNamePassword
    );

    // A's gateway publishes its own reading, then under gw-02 (same
    // organization), under B's gateway and B's Sparkplug edge node, then its
    // own again — all on one connection, every one acknowledged.
    let own = format!("mp/v1/{}/{}/telemetry", a.slug, a.device.name);
    let same_org = format!("mp/v1/{}/gw-02/telemetry", a.slug);
    let other_org = format!("mp/v1/{}/{}/telemetry", b.slug, b.device.name);
    let sparkplug = format!("spBv1.0/{}/NDATA/{}", b.slug, b.device.name);
    app.publish_as(
        Some((user_a.clone(), a.device_secret.clone())),
        &[
            (own.clone(), reading(1.0)),
            (same_org.clone(), reading(66.0)),
            (other_org.clone(), reading(66.0)),
            (sparkplug.clone(), vec![0x08, 0x01]),
            (own.clone(), reading(2.0)),
        ],
    )
    .await;
    eventually(Duration::from_secs(20), "A's own readings", || async {
        (count_readings(&app, a.sensors[0].id).await == 2).then_some(())
    })
    .await;
    let letters: Vec<Value> = eventually(Duration::from_secs(20), "the dead letters", || async {
        let (status, body) = app.get(&token_a, "/api/v1/dead-letters").await;
        assert_eq!(status, 200, "{body}");
        let items = body["data"].as_array().cloned().unwrap_or_default();
        (items.len() >= 3).then_some(items)
    })
    .await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    for topic in [&same_org, &other_org, &sparkplug] {
        let l = letters
            .iter()
            .find(|l| l["topic"] == **topic)
            .unwrap_or_else(|| panic!("no dead letter for {topic}: {letters:?}"));
        assert_eq!(l["reason"], "topic_not_allowed");
        assert_eq!(
            l["detail"].as_str().unwrap(),
            format!("device {user_a} may not publish to {topic}")
        );
    }
    let counted = app
        .running
        .ingest_stats
        .dead_letters_by_reason()
        .into_iter()
        .find(|(reason, _)| reason == "topic_not_allowed")
        .map(|(_, n)| n);
    assert_eq!(
        counted,
        Some(3),
        "refused publishes are counted in the dead-letter metric"
    );
    assert_eq!(
        count_readings(&app, gw2_sensor).await,
        0,
        "nothing stored for gw-02"
    );
    assert_eq!(
        count_readings(&app, b.sensors[0].id).await,
        0,
        "nothing stored for B"
    );
    let (_, b_letters) = app.get(&token_b, "/api/v1/dead-letters").await;
    assert_eq!(b_letters["data"].as_array().map(Vec::len), Some(0), "{b_letters}");

    // Subscribing outside its own topics is refused.
    let (client, mut eventloop) = connect(&app, Some((&user_a, &a.device_secret))).await.unwrap();
    client
        .subscribe("mp/v1/+/+/telemetry", QoS::AtLeastOnce)
        .await
        .unwrap();
    let suback = loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => break s,
            Ok(Ok(_)) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    };
    assert_eq!(suback.return_codes, vec![rumqttc::SubscribeReasonCode::Failure]);
    client.disconnect().await.unwrap();

    // Rotation: the old secret is refused at once, the new one works, and
    // a connection made with the old one is closed.
    let (_, mut old_conn) = connect(&app, Some(("ident-a/gw-02", &gw2_secret))).await.unwrap();
    let (status, rotated) = post(
        &app,
        &token_a,
        &format!("/api/v1/devices/{gw2}/credentials"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["data"]["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, gw2_secret);
    assert_eq!(
        refused(&app, "ident-a/gw-02", &gw2_secret).await,
        ConnectReturnCode::BadUserNamePassword
    );
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if old_conn.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection with the old secret was closed");
    app.publish_as(
        Some(("ident-a/gw-02".into(), new_secret.clone())),
        &[(same_org.clone(), reading(3.0))],
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "gw-02's reading with the new secret",
        || async { (count_readings(&app, gw2_sensor).await == 1).then_some(()) },
    )
    .await;

    // Another organization's admin cannot touch the device.
    let (status, _) = post(
        &app,
        &token_b,
        &format!("/api/v1/devices/{gw2}/credentials"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        &app,
        &token_b,
        &format!("/api/v1/devices/{gw2}/revoke"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);

    // Revocation: refused from then on.
    let (status, revoked) = post(
        &app,
        &token_a,
        &format!("/api/v1/devices/{gw2}/revoke"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["data"]["active"], false);
    assert_eq!(
        refused(&app, "ident-a/gw-02", &new_secret).await,
        ConnectReturnCode::NotAuthorized
    );
    // The other device is unaffected.
    assert!(connect(&app, Some((&user_a, &a.device_secret))).await.is_ok());

    // Both changes are in the outbox.
    let owner = sqlx::PgPool::connect(&app.db.url).await.unwrap();
    let kinds: Vec<(String,)> =
        sqlx::query_as("SELECT kind FROM events WHERE subject_id = $1 AND kind LIKE 'device.%' ORDER BY id")
            .bind(gw2.parse::<Uuid>().unwrap())
            .fetch_all(&owner)
            .await
            .unwrap();
    let kinds: Vec<&str> = kinds.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["device.created", "device.credentials_rotated", "device.revoked"]
    );
    owner.close().await;
    app.stop().await;
}

/// `--mqtt-allow-anonymous`: the embedded broker without the front door.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_mode_accepts_unauthenticated_devices() {
    let app = App::start_with(crate::support::BrokerKind::Embedded, |c| {
        c.mqtt_device_auth = false;
        c.with_analytics = false;
    })
    .await
    .unwrap();
    assert!(!app.running.mqtt_device_auth);
    let org = app.seed_org("anon", &["temp"]).await;
    let topic = format!("mp/v1/{}/{}/telemetry", org.slug, org.device.name);
    app.publish_as(None, &[(topic, reading(5.0))]).await;
    eventually(Duration::from_secs(20), "the anonymous reading", || async {
        (count_readings(&app, org.sensors[0].id).await == 1).then_some(())
    })
    .await;
    app.stop().await;
}
