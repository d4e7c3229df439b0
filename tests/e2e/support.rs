//! Shared setup: start the system, seed an organization, sign in, publish.

use std::time::{Duration, Instant};

use maintainpro::system::{self, Running, SystemConfig};
pub use maintainpro_models::testkit::SeededOrg;
use maintainpro_models::testkit::{self, test_db, TestDb};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use uuid::Uuid;

pub struct App {
    pub running: Running,
    pub db: TestDb,
    pub http: reqwest::Client,
}

impl App {
    pub async fn start() -> App {
        // Logs when RUST_LOG is set (run with --nocapture to see them).
        if std::env::var("RUST_LOG").is_ok() {
            maintainpro::telemetry::init();
        }
        let db = test_db().await;
        let running = system::start(SystemConfig::local_test(db.url.clone()))
            .await
            .unwrap();
        App {
            running,
            db,
            http: reqwest::Client::new(),
        }
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.db.cleanup().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.api_url().unwrap())
    }

    /// An organization with an admin, one machine, one gateway `gw-01` and
    /// a sensor per metric.
    pub async fn seed_org(&self, slug: &str, metrics: &[&str]) -> SeededOrg {
        testkit::seed_org(&self.running.db, slug, metrics).await
    }

    pub async fn login(&self, org: &SeededOrg) -> String {
        let r: Value = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": org.admin.email, "password": org.password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["data"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {r}"))
            .to_string()
    }

    /// GET with a token; returns (status, body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Publishes raw payloads at QoS 1 and waits for every PUBACK.
    pub async fn publish(&self, messages: &[(String, Vec<u8>)]) {
        let mut opts = MqttOptions::new(
            format!("test-{}", Uuid::new_v4().simple()),
            &self.running.mqtt_host,
            self.running.mqtt_port,
        );
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 100);
        for (topic, payload) in messages {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
        let mut acked = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked < messages.len() {
            assert!(Instant::now() < deadline, "broker did not acknowledge in time");
            match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("mqtt error: {e}"),
                Err(_) => {}
            }
        }
        let _ = client.disconnect().await;
    }
}

/// Polls `check` every 100 ms until it returns Some, or fails after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
