//! The `up --demo` path: a self-managed PostgreSQL in a data directory, the
//! demo organization seeded, simulated readings flowing, and the printed
//! credentials signing in. A second start on the same data reuses it.

use std::time::Duration;

use maintainpro::demo::DemoOptions;
use maintainpro::system::{self, SystemConfig};

use crate::support::eventually;

#[tokio::test]
async fn demo_on_a_self_managed_database() {
    let data_dir = std::env::temp_dir().join(format!("mp-demo-{}", uuid::Uuid::new_v4().simple()));
    let config = SystemConfig {
        database_url: None,
        data_dir: data_dir.clone(),
        demo: Some(DemoOptions {
            interval: Duration::from_millis(100),
            faults: false,
            ..DemoOptions::default()
        }),
        ..SystemConfig::local_test(String::new())
    };
    for round in 0..2 {
        let running = system::start(config.clone()).await.unwrap();
        let demo = running.demo.clone().unwrap();
        let stats = running.ingest_stats.clone();
        eventually(Duration::from_secs(30), "demo readings", || async {
            (stats.snapshot().readings >= 100).then_some(())
        })
        .await;
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{}/api/v1/auth/login", running.api_url().unwrap()))
            .json(&serde_json::json!({"email": demo.admin_email, "password": demo.admin_password}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "round {round}: the printed credentials sign in"
        );
        let token = r.json::<serde_json::Value>().await.unwrap()["data"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        let tree: serde_json::Value = http
            .get(format!("{}/api/v1/equipment/tree", running.api_url().unwrap()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let roots = tree["data"].as_array().unwrap();
        assert_eq!(
            roots.len(),
            1,
            "round {round}: one site, not duplicated by a restart"
        );
        assert_eq!(roots[0]["children"].as_array().unwrap().len(), 3);
        running.stop().await;
    }
    assert!(
        data_dir.join("postgres").join("PG_VERSION").exists(),
        "the cluster persists in the data directory"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
