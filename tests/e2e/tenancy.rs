//! Acceptance: a user of organization A gets 404 for organization B's work
//! order and equipment, and B's rows never appear in A's lists.

use serde_json::Value;

use crate::support::App;

#[tokio::test]
async fn foreign_ids_answer_404() {
    let app = App::start().await;
    let a = app.seed_org("tenant-a", &["temp"]).await;
    let b = app.seed_org("tenant-b", &["temp"]).await;
    let token_a = app.login(&a).await;
    let token_b = app.login(&b).await;

    let created = app
        .http
        .post(app.url("/api/v1/work-orders"))
        .bearer_auth(&token_b)
        .json(&serde_json::json!({"title": "B's secret job", "equipmentId": b.equipment.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.unwrap();
    let wo_b = created["data"]["id"].as_str().unwrap().to_string();

    for path in [
        format!("/api/v1/work-orders/{wo_b}"),
        format!("/api/v1/equipment/{}", b.equipment.id),
        format!("/api/v1/sensors/{}", b.sensors[0].id),
        format!("/api/v1/sensors/{}/readings", b.sensors[0].id),
    ] {
        let (status, body) = app.get(&token_a, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        // B itself can see it.
        let (status, _) = app.get(&token_b, &path).await;
        assert_eq!(status, 200, "{path} as B");
    }
    for path in ["/api/v1/work-orders", "/api/v1/equipment", "/api/v1/sensors"] {
        let (_, body) = app.get(&token_a, path).await;
        let text = body.to_string();
        assert!(
            !text.contains(&wo_b) && !text.contains(&b.equipment.id.to_string()),
            "{path} leaks B: {text}"
        );
    }
    // A status change on B's work order is a 404 too, and changes nothing.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/work-orders/{wo_b}/status")))
        .bearer_auth(&token_a)
        .json(&serde_json::json!({"status": "cancelled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (_, body) = app.get(&token_b, &format!("/api/v1/work-orders/{wo_b}")).await;
    assert_eq!(body["data"]["status"], "open");
    app.stop().await;
}
