-- Webhooks: per-organization HTTP endpoints that receive the change outbox
-- (`events`), signed with a per-webhook secret, with a delivery log.
--
-- Enqueueing must never skip an event. Event ids come from an identity, and a
-- transaction that took id 10 may commit after one that took id 11, so "the
-- highest id seen so far" is not a safe cursor. Instead every event records
-- the id of the transaction that wrote it (`txid`), and the cursor is a
-- transaction id: all events written by transactions older than the current
-- snapshot's xmin are final (those transactions have ended), so the enqueuer
-- takes the events with cursor <= txid < xmin and moves the cursor to xmin.
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_org_txid_idx ON events (organization_id, txid);
-- Target of the deliveries' composite foreign key.
ALTER TABLE events ADD CONSTRAINT events_org_id_key UNIQUE (organization_id, id);

CREATE TABLE webhooks (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    -- Needed in clear to sign each delivery; never returned after creation.
    secret          text NOT NULL CHECK (length(secret) >= 16),
    -- Empty: every kind.
    event_kinds     text[] NOT NULL DEFAULT '{}',
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id)
);
CREATE INDEX webhooks_org_idx ON webhooks (organization_id, created_at DESC, id DESC);
SELECT mp_guard_tenant_table('webhooks');

-- One row per (webhook, event): the current state of its delivery.
--   pending   not tried yet; failed  last attempt failed, retried at next_attempt_at;
--   succeeded the receiver answered 2xx; dead  gave up after the last attempt.
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    webhook_id       uuid NOT NULL,
    event_id         bigint NOT NULL,
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id),
    FOREIGN KEY (organization_id, webhook_id) REFERENCES webhooks (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, event_id) REFERENCES events (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (organization_id, next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, id DESC);
SELECT mp_guard_tenant_table('webhook_deliveries');

-- Where each organization's enqueuer is in the outbox (see above).
CREATE TABLE webhook_cursors (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    txid_upto       xid8 NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
SELECT mp_guard_tenant_table('webhook_cursors');

-- The delivery worker: organizations with at least one active webhook.
CREATE FUNCTION mp_webhook_organization_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT DISTINCT w.organization_id FROM webhooks w WHERE w.active ORDER BY 1 $$;
REVOKE ALL ON FUNCTION mp_webhook_organization_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mp_webhook_organization_ids() TO maintainpro_app;
