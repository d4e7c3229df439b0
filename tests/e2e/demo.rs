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
            history: Duration::from_secs(30 * 60),
            ..DemoOptions::default()
        }),
        ..SystemConfig::local_test(String::new())
    };
    let first_start = chrono::Utc::now();
    let mut history_rows = None;
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

        // Thirty minutes of history, one reading per second per sensor,
        // written on the first start only; the detectors start after it.
        let mut tx = running.db.tenant(demo.org_id).await.unwrap();
        let (history, cursors, past_anomalies): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM readings WHERE ts < $1),
                    (SELECT count(*) FROM analytics_cursors),
                    (SELECT count(*) FROM anomalies WHERE started_at < $1)",
        )
        .bind(first_start)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        // The history ends when the seed ran, a few seconds after `first_start`.
        assert!(
            (12 * 1700..=12 * 1801).contains(&history),
            "round {round}: 30 min of history for 12 sensors (got {history})"
        );
        let first = *history_rows.get_or_insert(history);
        assert_eq!(history, first, "round {round}: the history is written once");
        assert_eq!(
            cursors, 12,
            "round {round}: every sensor's detector starts after the history"
        );
        assert_eq!(past_anomalies, 0, "round {round}: nothing raised in the history");
        running.stop().await;
    }
    assert!(
        data_dir.join("postgres").join("PG_VERSION").exists(),
        "the cluster persists in the data directory"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
