//! The writer's commit path against a real PostgreSQL: what the binary COPY
//! sends is exactly what is stored (timestamps to the microsecond, before and
//! after PostgreSQL's 2000 epoch, every float bit), and a redelivered batch
//! stores nothing twice.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use maintainpro_ingest::writer::{commit, Row};
use maintainpro_models::testkit::{seed_org, test_db};

#[tokio::test]
async fn binary_copy_stores_exactly_what_was_sent_once() {
    let t = test_db().await;
    let org = seed_org(&t.db, "copy", &["a", "b"]).await;
    let ts = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let sent = vec![
        (org.sensors[0].id, ts("1999-12-31T23:59:59.999999Z"), -0.0),
        (org.sensors[0].id, ts("2000-01-01T00:00:00Z"), f64::MIN_POSITIVE),
        (org.sensors[0].id, ts("2026-11-24T12:34:56.123456Z"), 0.1 + 0.2),
        (org.sensors[1].id, ts("2026-11-24T12:34:56.123456Z"), -1.5e300),
        (org.sensors[1].id, ts("1970-01-01T00:00:00.000001Z"), 42.0),
    ];
    let rows: Vec<Row> = sent
        .iter()
        .map(|&(sensor_id, ts, value)| Row {
            organization_id: org.tenant.org_id,
            sensor_id,
            ts,
            value,
        })
        .collect();
    assert_eq!(commit(&t.db, &rows, &[]).await.unwrap(), 5);
    // A redelivery of the same batch (the ack was lost) stores nothing.
    assert_eq!(commit(&t.db, &rows, &[]).await.unwrap(), 0);

    let mut tx = t.db.tenant(org.tenant.org_id).await.unwrap();
    let mut stored: Vec<(uuid::Uuid, DateTime<Utc>, f64)> =
        sqlx::query_as("SELECT sensor_id, ts, value FROM readings")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    stored.sort_by_key(|r| (r.0, r.1));
    let mut expected = sent.clone();
    expected.sort_by_key(|r| (r.0, r.1));
    assert_eq!(stored.len(), expected.len());
    for (s, e) in stored.iter().zip(&expected) {
        assert_eq!((s.0, s.1), (e.0, e.1));
        assert_eq!(s.2.to_bits(), e.2.to_bits(), "value of {:?}", e);
    }
}
