//! Shared setup: start the system, seed an organization, sign in, publish.

use std::time::{Duration, Instant};

use maintainpro::system::{self, Running, SystemConfig};
use maintainpro_models::auth::Role;
use maintainpro_models::devices::{self, NewDevice, NewSensor};
use maintainpro_models::equipment::{self, NewEquipment};
use maintainpro_models::testkit::{test_db, TestDb};
use maintainpro_models::users::{self, NewUser};
use maintainpro_models::{organizations, Tenant};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use uuid::Uuid;

pub struct App {
    pub running: Running,
    pub db: TestDb,
    pub http: reqwest::Client,
}

pub struct SeededOrg {
    pub slug: String,
    pub email: String,
    pub password: String,
    pub equipment_id: Uuid,
    pub sensor_ids: Vec<Uuid>,
    pub device: String,
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
        let db = &self.running.db;
        let org = organizations::create(db, slug, slug).await.unwrap();
        let tenant = Tenant::system(org.id, "test");
        let mut tx = db.tenant(org.id).await.unwrap();
        let email = format!("admin@{slug}.test");
        let password = "correct horse battery".to_string();
        users::create(
            &mut tx,
            &tenant,
            NewUser {
                email: email.clone(),
                name: "Admin".into(),
                role: Role::Admin,
                password: password.clone(),
            },
        )
        .await
        .unwrap();
        let eq = equipment::create(
            &mut tx,
            &tenant,
            NewEquipment {
                name: "Cooling pump".into(),
                asset_tag: "P-101".into(),
                parent_id: None,
                description: String::new(),
                location: String::new(),
                criticality: Some("high".into()),
            },
        )
        .await
        .unwrap();
        let dev = devices::create_device(
            &mut tx,
            &tenant,
            NewDevice {
                name: "gw-01".into(),
                description: String::new(),
            },
        )
        .await
        .unwrap();
        let mut sensor_ids = Vec::new();
        for m in metrics {
            let s = devices::create_sensor(
                &mut tx,
                &tenant,
                NewSensor {
                    device_id: dev.device.id,
                    equipment_id: eq.id,
                    metric: m.to_string(),
                    name: None,
                    unit: String::new(),
                    min_value: None,
                    max_value: None,
                },
            )
            .await
            .unwrap();
            sensor_ids.push(s.id);
        }
        tx.commit().await.unwrap();
        SeededOrg {
            slug: slug.into(),
            email,
            password,
            equipment_id: eq.id,
            sensor_ids,
            device: "gw-01".into(),
        }
    }

    pub async fn login(&self, org: &SeededOrg) -> String {
        let r: Value = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": org.email, "password": org.password}))
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
