//! Webhooks and their delivery log: registering endpoints, turning outbox
//! events into deliveries (gap-free, see `migrations/0006_webhooks.sql`),
//! claiming due deliveries safely across several workers, and recording
//! each attempt with exponential backoff.
//!
//! The network side (target checks, signing, HTTP) lives in the API crate's
//! delivery worker; this module is persistence and rules only.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{Tenant, Tx};
use crate::error::{ModelError, Result};
use crate::events;

/// Longest accepted webhook URL.
pub const MAX_URL_CHARS: usize = 2000;
/// Most event kinds one webhook may filter on.
pub const MAX_EVENT_KINDS: usize = 50;

/// An outbox event as sent to clients (WebSocket frames and webhook bodies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    pub id: i64,
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A registered webhook (the secret is shown only once, at creation).
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// Kinds delivered; empty means every kind.
    pub event_kinds: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// What a new webhook needs; the caller generates the secret.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub event_kinds: Vec<String>,
}

/// State of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            "dead" => Ok(Self::Dead),
            other => Err(ModelError::Conflict(format!("unknown delivery status '{other}'"))),
        }
    }
}

/// One (webhook, event) delivery and its latest attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: Uuid,
    pub event_id: i64,
    pub event_kind: String,
    /// Attempts made so far.
    pub attempt: i32,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: Uuid,
    event_id: i64,
    event_kind: String,
    attempt: i32,
    status: String,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = ModelError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        let status = DeliveryStatus::parse(&r.status)?;
        let retrying = matches!(status, DeliveryStatus::Pending | DeliveryStatus::Failed);
        Ok(Delivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_kind: r.event_kind,
            attempt: r.attempt,
            status,
            next_attempt_at: retrying.then_some(r.next_attempt_at),
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A delivery claimed by a worker: everything needed to send it.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub organization_id: Uuid,
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: String,
    /// Attempts made before this one.
    pub attempt: i32,
    pub event_id: i64,
    pub kind: String,
    pub subject_id: Option<Uuid>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl ClaimedDelivery {
    /// The event as the receiver gets it.
    pub fn message(&self) -> EventMessage {
        EventMessage {
            id: self.event_id,
            kind: self.kind.clone(),
            subject_id: self.subject_id,
            payload: self.payload.clone(),
            created_at: self.created_at,
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Succeeded { status_code: u16 },
    /// Non-2xx answer, or no answer (`status_code` None) with an error.
    Failed { status_code: Option<u16>, error: String },
}

/// Retry schedule: the delay after the n-th failed attempt is `base` times
/// 1, 6, 24, 120, 720, 1440, 2880 (with base 5 s: 5 s, 30 s, 2 min, 10 min,
/// 1 h, 2 h, 4 h); after `max_attempts` attempts the delivery is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max_attempts: i32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    const FACTORS: [u32; 7] = [1, 6, 24, 120, 720, 1440, 2880];

    /// Delay before the next attempt after `attempts` failed ones (>= 1).
    pub fn delay_after(&self, attempts: i32) -> Duration {
        let i = usize::try_from(attempts.max(1) - 1).unwrap_or(0);
        let factor = Self::FACTORS[i.min(Self::FACTORS.len() - 1)];
        self.base.saturating_mul(factor)
    }
}

fn validate_kinds(kinds: &[String]) -> Result<Vec<String>> {
    if kinds.len() > MAX_EVENT_KINDS {
        return Err(ModelError::invalid(
            "eventKinds",
            format!("at most {MAX_EVENT_KINDS} event kinds"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let k = kind.trim();
        let valid = !k.is_empty()
            && k.len() <= 100
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(ModelError::invalid(
                "eventKinds",
                format!("'{kind}' is not an event kind (letters, digits, '.', '_', '-')"),
            ));
        }
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    Ok(out)
}

/// Registers a webhook. The URL must already have been checked by the caller
/// (scheme, host, address ranges); here only its length is.
pub async fn create(tx: &mut Tx, tenant: &Tenant, new: &NewWebhook) -> Result<Webhook> {
    let url = new.url.trim();
    if url.is_empty() || url.chars().count() > MAX_URL_CHARS {
        return Err(ModelError::invalid(
            "url",
            format!("must be 1 to {MAX_URL_CHARS} characters"),
        ));
    }
    let kinds = validate_kinds(&new.event_kinds)?;
    let webhook = sqlx::query_as::<_, Webhook>(
        "INSERT INTO webhooks (id, organization_id, url, secret, event_kinds) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, url, event_kinds, active, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.org_id)
    .bind(url)
    .bind(&new.secret)
    .bind(&kinds)
    .fetch_one(&mut **tx)
    .await?;
    // The organization's enqueue cursor starts at "now" (see the migration).
    sqlx::query(
        "INSERT INTO webhook_cursors (organization_id, txid_upto) \
         VALUES ($1, pg_snapshot_xmin(pg_current_snapshot())) ON CONFLICT (organization_id) DO NOTHING",
    )
    .bind(tenant.org_id)
    .execute(&mut **tx)
    .await?;
    events::emit(
        tx,
        tenant,
        "webhook.created",
        Some(webhook.id),
        &serde_json::json!({ "id": webhook.id, "url": webhook.url, "eventKinds": webhook.event_kinds }),
    )
    .await?;
    Ok(webhook)
}

/// The organization's webhooks, newest first.
pub async fn list(tx: &mut Tx) -> Result<Vec<Webhook>> {
    Ok(sqlx::query_as::<_, Webhook>(
        "SELECT id, url, event_kinds, active, created_at FROM webhooks ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// One webhook.
pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Webhook> {
    sqlx::query_as::<_, Webhook>(
        "SELECT id, url, event_kinds, active, created_at FROM webhooks WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ModelError::NotFound("webhook"))
}

/// Deletes a webhook and its delivery log.
pub async fn delete(tx: &mut Tx, tenant: &Tenant, id: Uuid) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ModelError::NotFound("webhook"));
    }
    events::emit(
        tx,
        tenant,
        "webhook.deleted",
        Some(id),
        &serde_json::json!({ "id": id }),
    )
    .await?;
    Ok(())
}

/// A webhook's deliveries, newest first (at most `limit`).
pub async fn deliveries(tx: &mut Tx, webhook_id: Uuid, limit: i64) -> Result<Vec<Delivery>> {
    get(tx, webhook_id).await?;
    let rows = sqlx::query_as::<_, DeliveryRow>(
        "SELECT d.id, d.webhook_id, d.event_id, e.kind AS event_kind, d.attempt, d.status, \
                d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at \
         FROM webhook_deliveries d JOIN events e ON e.organization_id = d.organization_id AND e.id = d.event_id \
         WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Delivery::try_from).collect()
}

/// Organizations with at least one active webhook (for the worker).
pub async fn organizations_with_webhooks(tx: &mut Tx) -> Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar::<_, Uuid>("SELECT mp_webhook_organization_ids()")
            .fetch_all(&mut **tx)
            .await?,
    )
}

/// Creates the deliveries for the tenant's events that became final since the
/// last call, for every active webhook whose kinds match and that existed when
/// the event happened, and advances the cursor in the same transaction.
/// Concurrent callers serialize on the cursor row. Returns deliveries created.
pub async fn enqueue(tx: &mut Tx, tenant: &Tenant) -> Result<u64> {
    // One horizon for the whole pass: the events taken and the cursor's new
    // position must come from the same snapshot xmin, or a transaction that
    // ends between two statements would be skipped.
    let bounds: Option<(String, String)> = sqlx::query_as(
        "SELECT txid_upto::text, pg_snapshot_xmin(pg_current_snapshot())::text \
         FROM webhook_cursors WHERE organization_id = $1 FOR UPDATE",
    )
    .bind(tenant.org_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((lo, hi)) = bounds else {
        sqlx::query(
            "INSERT INTO webhook_cursors (organization_id, txid_upto) \
             VALUES ($1, pg_snapshot_xmin(pg_current_snapshot())) ON CONFLICT (organization_id) DO NOTHING",
        )
        .bind(tenant.org_id)
        .execute(&mut **tx)
        .await?;
        return Ok(0);
    };
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (organization_id, webhook_id, event_id) \
         SELECT e.organization_id, w.id, e.id \
         FROM events e \
         JOIN webhooks w ON w.organization_id = e.organization_id AND w.active \
              AND w.created_at <= e.created_at \
              AND (cardinality(w.event_kinds) = 0 OR e.kind = ANY (w.event_kinds)) \
         WHERE e.organization_id = $1 AND e.txid >= $2::xid8 AND e.txid < $3::xid8 \
         ORDER BY e.id \
         ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING",
    )
    .bind(tenant.org_id)
    .bind(&lo)
    .bind(&hi)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE webhook_cursors SET txid_upto = GREATEST(txid_upto, $2::xid8), updated_at = now() \
         WHERE organization_id = $1",
    )
    .bind(tenant.org_id)
    .bind(&hi)
    .execute(&mut **tx)
    .await?;
    Ok(inserted)
}

/// Claims up to `limit` due deliveries of the tenant (skipping rows other
/// workers hold) and leases them for `lease`: their next attempt moves to
/// now + lease, so a worker that dies mid-send leaves them to be retried.
/// Commit the transaction before sending.
pub async fn claim_due(tx: &mut Tx, limit: i64, lease: Duration) -> Result<Vec<ClaimedDelivery>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    Ok(sqlx::query_as::<_, ClaimedDelivery>(
        "WITH due AS ( \
             SELECT d.id FROM webhook_deliveries d \
             WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= now() \
             ORDER BY d.next_attempt_at, d.id LIMIT $1 FOR UPDATE SKIP LOCKED \
         ), leased AS ( \
             UPDATE webhook_deliveries d \
             SET next_attempt_at = clock_timestamp() + make_interval(secs => $2::double precision / 1000) \
             FROM due WHERE d.id = due.id \
             RETURNING d.id, d.organization_id, d.webhook_id, d.event_id, d.attempt \
         ) \
         SELECT l.id, l.organization_id, l.webhook_id, w.url, w.secret, l.attempt, \
                l.event_id, e.kind, e.subject_id, e.payload, e.created_at \
         FROM leased l \
         JOIN webhooks w ON w.organization_id = l.organization_id AND w.id = l.webhook_id \
         JOIN events e ON e.organization_id = l.organization_id AND e.id = l.event_id \
         ORDER BY l.event_id",
    )
    .bind(limit)
    .bind(lease_ms)
    .fetch_all(&mut **tx)
    .await?)
}

/// Records the outcome of one attempt of a claimed delivery and schedules
/// the next one (or marks it dead). Returns the new status.
pub async fn record_attempt(
    tx: &mut Tx,
    delivery_id: i64,
    outcome: &AttemptOutcome,
    backoff: &Backoff,
) -> Result<DeliveryStatus> {
    let attempt: i32 = sqlx::query_scalar("SELECT attempt FROM webhook_deliveries WHERE id = $1 FOR UPDATE")
        .bind(delivery_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ModelError::NotFound("webhook delivery"))?;
    let attempt = attempt.saturating_add(1);
    let (status, code, error, delay) = match outcome {
        AttemptOutcome::Succeeded { status_code } => (
            DeliveryStatus::Succeeded,
            Some(*status_code),
            None,
            Duration::ZERO,
        ),
        AttemptOutcome::Failed { status_code, error } => {
            let status = if attempt >= backoff.max_attempts {
                DeliveryStatus::Dead
            } else {
                DeliveryStatus::Failed
            };
            let error: String = error.chars().take(1000).collect();
            (status, *status_code, Some(error), backoff.delay_after(attempt))
        }
    };
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE webhook_deliveries SET attempt = $2, status = $3, last_status_code = $4, last_error = $5, \
                next_attempt_at = clock_timestamp() + make_interval(secs => $6::double precision / 1000), \
                updated_at = now() \
         WHERE id = $1",
    )
    .bind(delivery_id)
    .bind(attempt)
    .bind(status.as_str())
    .bind(code.map(i32::from))
    .bind(error)
    .bind(delay_ms)
    .execute(&mut **tx)
    .await?;
    Ok(status)
}

/// The tenant's events after `after_id`, oldest first, as sent to clients.
pub async fn messages_after(tx: &mut Tx, after_id: i64, limit: i64) -> Result<Vec<EventMessage>> {
    Ok(sqlx::query_as::<_, EventMessage>(
        "SELECT id, kind, subject_id, payload, created_at FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}

/// Transaction horizon of a snapshot: every transaction with an id below
/// `xmin` has ended; every one that had started when it was taken is below `xmax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub xmin: u64,
    pub xmax: u64,
}

/// The current snapshot's horizon (see [`Horizon`]).
pub async fn horizon(tx: &mut Tx) -> Result<Horizon> {
    let (xmin, xmax): (String, String) = sqlx::query_as(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM (SELECT pg_current_snapshot() AS s) q",
    )
    .fetch_one(&mut **tx)
    .await?;
    let parse = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| ModelError::Conflict(format!("unexpected transaction id '{v}'")))
    };
    Ok(Horizon {
        xmin: parse(&xmin)?,
        xmax: parse(&xmax)?,
    })
}

/// The tenant's newest event id (0 when there is none).
pub async fn latest_event_id(tx: &mut Tx) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM events")
        .fetch_one(&mut **tx)
        .await?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay_after(1), Duration::from_secs(5));
        assert_eq!(b.delay_after(2), Duration::from_secs(30));
        assert_eq!(b.delay_after(3), Duration::from_secs(120));
        assert_eq!(b.delay_after(5), Duration::from_secs(3600));
        assert_eq!(b.delay_after(40), Duration::from_secs(5 * 2880));
    }

    #[test]
    fn kinds_are_validated_and_deduplicated() {
        let ok = validate_kinds(&["work_order.created".into(), "work_order.created".into()]);
        assert_eq!(ok.ok(), Some(vec!["work_order.created".to_string()]));
        assert!(validate_kinds(&["bad kind".into()]).is_err());
        assert!(validate_kinds(&[String::new()]).is_err());
    }
}
