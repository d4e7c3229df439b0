//! Shared setup: start the system (on the embedded broker or a throwaway
//! Mosquitto), seed an organization, sign in, publish.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use maintainpro::system::{self, MqttChoice, Running, SystemConfig};
pub use maintainpro_models::testkit::SeededOrg;
use maintainpro_models::testkit::{self, test_db, TestDb};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use uuid::Uuid;

use crate::mosquitto::Mosquitto;

/// The broker a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// rumqttd inside the system (`up`'s default).
    Embedded,
    /// A Mosquitto process of the test's own, used as an external broker
    /// (`--mqtt-url`), with the embedded one off.
    Mosquitto,
}

/// Defines `mod $scenario { embedded, mosquitto }`: two tests running the
/// async fn `$scenario(BrokerKind)` once per broker, so the same suite passes
/// against both.
macro_rules! on_both_brokers {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use crate::support::BrokerKind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$scenario(BrokerKind::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                super::$scenario(BrokerKind::Mosquitto).await
            }
        }
    )*};
}
pub(crate) use on_both_brokers;

pub struct App {
    pub running: Running,
    pub db: TestDb,
    pub http: reqwest::Client,
    /// Device secrets by MQTT username `{org}/{device}`, for [`App::publish`].
    credentials: Mutex<HashMap<String, String>>,
    /// Dropped (killed) after the system stopped.
    _mosquitto: Option<Mosquitto>,
}

impl App {
    /// The system on the embedded broker.
    pub async fn start() -> App {
        Self::start_on(BrokerKind::Embedded)
            .await
            .expect("the embedded broker is always available")
    }

    /// The system on `broker`; `None` when Mosquitto is not installed and
    /// this is not CI (the test is skipped with a notice).
    pub async fn start_on(broker: BrokerKind) -> Option<App> {
        Self::start_with(broker, |_| {}).await
    }

    /// Like [`App::start_on`], with `adjust` applied to the configuration.
    pub async fn start_with(broker: BrokerKind, adjust: impl FnOnce(&mut SystemConfig)) -> Option<App> {
        // Logs when RUST_LOG is set (run with --nocapture to see them).
        if std::env::var("RUST_LOG").is_ok() {
            maintainpro::telemetry::init();
        }
        let mosquitto = match broker {
            BrokerKind::Embedded => None,
            BrokerKind::Mosquitto => Some(Mosquitto::start()?),
        };
        let db = test_db().await;
        let mut config = SystemConfig::local_test(db.url.clone());
        if let Some(m) = &mosquitto {
            config.mqtt = Some(MqttChoice::External {
                host: "127.0.0.1".into(),
                port: m.port,
            });
        }
        adjust(&mut config);
        let running = system::start(config).await.unwrap();
        Some(App {
            running,
            db,
            http: reqwest::Client::new(),
            credentials: Mutex::new(HashMap::new()),
            _mosquitto: mosquitto,
        })
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
        let org = testkit::seed_org(&self.running.db, slug, metrics).await;
        self.register_device(&org.slug, &org.device.name, &org.device_secret);
        org
    }

    /// Remembers a device's secret: [`App::publish`] signs in as it.
    pub fn register_device(&self, org_slug: &str, device: &str, secret: &str) {
        self.credentials
            .lock()
            .unwrap()
            .insert(format!("{org_slug}/{device}"), secret.to_string());
    }

    /// The (username, password) a gateway of `org` uses on this system's
    /// broker: the seeded device's when devices must sign in, none otherwise.
    pub fn device_login(&self, org: &SeededOrg) -> (Option<String>, Option<String>) {
        if self.running.mqtt_device_auth {
            (
                Some(format!("{}/{}", org.slug, org.device.name)),
                Some(org.device_secret.clone()),
            )
        } else {
            (None, None)
        }
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

    /// Publishes raw payloads at QoS 1 (any number) and waits for every
    /// PUBACK. When devices must sign in (embedded broker), each topic's
    /// messages are sent, in order, by the device that owns the topic
    /// (registered with [`App::register_device`]); input no registered device
    /// can send — unknown devices, malformed topics — is injected on the
    /// broker's internal port, as a trusted bridge would, so ingest's own
    /// checks are exercised.
    pub async fn publish(&self, messages: &[(String, Vec<u8>)]) {
        if !self.running.mqtt_device_auth {
            return self.publish_as(None, messages).await;
        }
        // (owner's username, its messages in order)
        type Batch = Vec<(String, Vec<u8>)>;
        let mut groups: Vec<(Option<String>, Batch)> = Vec::new();
        for (topic, payload) in messages {
            let owner = topic_owner(topic).filter(|u| self.credentials.lock().unwrap().contains_key(u));
            match groups.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, batch)) => batch.push((topic.clone(), payload.clone())),
                None => groups.push((owner, vec![(topic.clone(), payload.clone())])),
            }
        }
        for (owner, batch) in groups {
            let login = owner.map(|u| {
                let secret = self.credentials.lock().unwrap()[&u].clone();
                (u, secret)
            });
            self.publish_as(login, &batch).await;
        }
    }

    /// Publishes at QoS 1 signed in as `login` (username, secret), or
    /// anonymously on the broker's internal port when `None`; waits for
    /// every PUBACK.
    pub async fn publish_as(&self, login: Option<(String, String)>, messages: &[(String, Vec<u8>)]) {
        let port = match login {
            Some(_) => self.running.mqtt_port,
            None => self.running.mqtt_internal_port,
        };
        let mut opts = MqttOptions::new(
            format!("test-{}", Uuid::new_v4().simple()),
            &self.running.mqtt_host,
            port,
        );
        // Generous: on a loaded machine a starved event loop must not miss
        // its pings and be dropped by the broker mid-test.
        opts.set_keep_alive(Duration::from_secs(30));
        if let Some((user, secret)) = login {
            opts.set_credentials(user, secret);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 100);
        // The event loop runs beside the publishing: the request queue holds
        // only 100 and drains only while it is polled.
        let expected = messages.len();
        let acks = tokio::spawn(async move {
            let mut acked = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked < expected {
                assert!(
                    Instant::now() < deadline,
                    "broker acknowledged {acked} of {expected} in time"
                );
                match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("mqtt error: {e}"),
                    Err(_) => {}
                }
            }
            eventloop
        });
        for (topic, payload) in messages {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
        let mut eventloop = acks.await.unwrap();
        let _ = client.disconnect().await;
        // Let the DISCONNECT go out.
        let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
    }
}

/// The MQTT username `{org}/{device}` a telemetry topic belongs to.
pub fn topic_owner(topic: &str) -> Option<String> {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        ["mp", "v1", org, device, ..] if !org.is_empty() && !device.is_empty() => {
            Some(format!("{org}/{device}"))
        }
        ["spBv1.0", group, _, node, ..] => Some(format!("{group}/{node}")),
        _ => None,
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
