-- MaintAInPro initial schema.
--
-- Tenancy: every tenant table carries organization_id and is guarded by
-- row-level security (ENABLE + FORCE). The services run as the role
-- `maintainpro_app`, which owns nothing and cannot bypass RLS; each
-- transaction says which organization it acts for with
--   SELECT set_config('app.org_id', '<uuid>', true)
-- and sees only that organization's rows. The few lookups that must cross
-- organizations before one is known (login by e-mail, resolving a device from
-- its MQTT topic, listing organizations for background jobs) are SECURITY
-- DEFINER functions at the end of this file.
--
-- References between tenant rows use composite foreign keys that include
-- organization_id, so a row can never point at another organization's row.

-- The runtime role. Created idempotently: roles are cluster-wide and several
-- databases (tests) may migrate at once.
DO $$
BEGIN
    CREATE ROLE maintainpro_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The migrating role must be able to `SET ROLE maintainpro_app`.
DO $$
BEGIN
    EXECUTE format('GRANT maintainpro_app TO %I', current_user);
EXCEPTION WHEN duplicate_object OR unique_violation OR invalid_grant_operation THEN
    NULL;
END
$$;

-- The organization the current transaction acts for, or NULL.
CREATE FUNCTION mp_current_org() RETURNS uuid
    LANGUAGE sql STABLE
AS $$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$;

-- Applies the standard tenant policy to a table: rows of the current
-- organization only, for reads and writes. The migrating role (owner of the
-- SECURITY DEFINER lookups below) may read everything.
CREATE FUNCTION mp_guard_tenant_table(tbl regclass) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s USING (organization_id = mp_current_org()) '
        'WITH CHECK (organization_id = mp_current_org())', tbl);
    EXECUTE format('CREATE POLICY owner_lookup ON %s FOR SELECT TO %I USING (true)', tbl, current_user);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO maintainpro_app', tbl);
END
$$;

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organizations
    USING (id = mp_current_org()) WITH CHECK (id = mp_current_org());
CREATE POLICY owner_lookup ON organizations FOR SELECT TO CURRENT_USER USING (true);
GRANT SELECT, INSERT, UPDATE ON organizations TO maintainpro_app;

-- Per-organization counters (work-order numbers). Taking a number locks the
-- counter row, so concurrent creations get consecutive numbers without gaps
-- (a rolled-back transaction rolls its increment back too).
CREATE TABLE org_counters (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    value           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, name)
);
SELECT mp_guard_tenant_table('org_counters');

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role            text NOT NULL CHECK (role IN ('admin', 'manager', 'technician', 'requester')),
    password_hash   text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id)
);
-- E-mail identifies a user at login, before the organization is known.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
SELECT mp_guard_tenant_table('users');

CREATE TABLE equipment (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    parent_id       uuid,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    asset_tag       text NOT NULL CHECK (length(asset_tag) BETWEEN 1 AND 64),
    description     text NOT NULL DEFAULT '',
    location        text NOT NULL DEFAULT '',
    criticality     text NOT NULL DEFAULT 'medium' CHECK (criticality IN ('low', 'medium', 'high', 'critical')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'maintenance', 'decommissioned', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT equipment_asset_tag_key UNIQUE (organization_id, asset_tag),
    CHECK (parent_id IS DISTINCT FROM id),
    FOREIGN KEY (organization_id, parent_id) REFERENCES equipment (organization_id, id)
);
CREATE INDEX equipment_parent_idx ON equipment (organization_id, parent_id);
SELECT mp_guard_tenant_table('equipment');

-- Gateways and devices that publish telemetry. `name` is the {device} part
-- of the MQTT topic mp/v1/{org}/{device}/telemetry.
CREATE TABLE devices (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    description     text NOT NULL DEFAULT '',
    secret_hash     text,
    active          boolean NOT NULL DEFAULT true,
    last_seen_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT devices_name_key UNIQUE (organization_id, name)
);
SELECT mp_guard_tenant_table('devices');

-- A sensor is one metric of one device, mounted on one piece of equipment.
CREATE TABLE sensors (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    device_id       uuid NOT NULL,
    equipment_id    uuid NOT NULL,
    metric          text NOT NULL CHECK (metric ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    unit            text NOT NULL DEFAULT '',
    min_value       double precision,
    max_value       double precision,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT sensors_metric_key UNIQUE (device_id, metric),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value < max_value),
    FOREIGN KEY (organization_id, device_id) REFERENCES devices (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id)
);
CREATE INDEX sensors_equipment_idx ON sensors (organization_id, equipment_id);
SELECT mp_guard_tenant_table('sensors');

-- Telemetry: narrow and typed. Unique per (sensor, ts) so a replayed message
-- stores nothing twice. No foreign key to sensors: ingest only writes ids it
-- has resolved, and a per-row FK check would halve insert throughput.
CREATE TABLE readings (
    organization_id uuid NOT NULL,
    sensor_id       uuid NOT NULL,
    ts              timestamptz NOT NULL,
    value           double precision NOT NULL,
    PRIMARY KEY (sensor_id, ts)
);
-- Analytics scans "everything newer than T"; BRIN is tiny and fits
-- append-mostly time series.
CREATE INDEX readings_ts_brin ON readings USING brin (ts);
SELECT mp_guard_tenant_table('readings');

-- Input that could not be stored, with the reason. Unattributable input
-- (unknown organization or device) has no organization and is visible to
-- operators only, never to a tenant.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX dead_letters_org_idx ON dead_letters (organization_id, received_at DESC);
ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE dead_letters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON dead_letters FOR SELECT USING (organization_id = mp_current_org());
CREATE POLICY tenant_insert ON dead_letters FOR INSERT
    WITH CHECK (organization_id IS NOT DISTINCT FROM mp_current_org());
CREATE POLICY owner_lookup ON dead_letters FOR SELECT TO CURRENT_USER USING (true);
GRANT SELECT, INSERT ON dead_letters TO maintainpro_app;

CREATE TABLE work_orders (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    number             bigint NOT NULL,
    code               text GENERATED ALWAYS AS ('WO-' || lpad(number::text, 6, '0')) STORED,
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description        text NOT NULL DEFAULT '',
    kind               text NOT NULL CHECK (kind IN ('corrective', 'preventive', 'inspection', 'emergency')),
    status             text NOT NULL DEFAULT 'open'
                       CHECK (status IN ('open', 'in_progress', 'on_hold', 'completed', 'verified', 'cancelled')),
    priority           text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    source             text NOT NULL CHECK (source IN ('manual', 'auto')),
    equipment_id       uuid,
    sensor_id          uuid,
    -- For auto work orders: what "the same problem" means (one open work
    -- order per equipment and dedup key; further anomalies add occurrences).
    dedup_key          text,
    anomaly_id         uuid,
    occurrence_count   integer NOT NULL DEFAULT 1,
    last_occurrence_at timestamptz,
    requested_by       uuid,
    assigned_to        uuid,
    due_at             timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    search             tsvector GENERATED ALWAYS AS (
                           to_tsvector('simple', title || ' ' || description)) STORED,
    UNIQUE (organization_id, id),
    CONSTRAINT work_orders_number_key UNIQUE (organization_id, number),
    CHECK (source = 'manual' OR (equipment_id IS NOT NULL AND dedup_key IS NOT NULL)),
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id),
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id) ON DELETE SET NULL (sensor_id),
    FOREIGN KEY (organization_id, requested_by) REFERENCES users (organization_id, id),
    FOREIGN KEY (organization_id, assigned_to) REFERENCES users (organization_id, id)
);
CREATE UNIQUE INDEX work_orders_one_open_auto ON work_orders (organization_id, equipment_id, dedup_key)
    WHERE source = 'auto' AND status IN ('open', 'in_progress', 'on_hold');
CREATE INDEX work_orders_list_idx ON work_orders (organization_id, created_at DESC, id DESC);
CREATE INDEX work_orders_search_idx ON work_orders USING gin (search);
SELECT mp_guard_tenant_table('work_orders');

CREATE TABLE work_order_status_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    from_status     text,
    to_status       text NOT NULL,
    changed_by      uuid,
    note            text NOT NULL DEFAULT '',
    changed_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, changed_by) REFERENCES users (organization_id, id)
);
CREATE INDEX work_order_status_history_wo_idx ON work_order_status_history (work_order_id, changed_at);
SELECT mp_guard_tenant_table('work_order_status_history');

-- One row per anomaly episode of a sensor.
CREATE TABLE anomalies (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sensor_id       uuid NOT NULL,
    equipment_id    uuid NOT NULL,
    kind            text NOT NULL,
    detector        text NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    score           double precision NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    peak_value      double precision NOT NULL,
    baseline        double precision,
    points          integer NOT NULL DEFAULT 1,
    details         jsonb NOT NULL DEFAULT '{}',
    work_order_id   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE SET NULL (work_order_id)
);
CREATE INDEX anomalies_list_idx ON anomalies (organization_id, started_at DESC, id DESC);
CREATE INDEX anomalies_work_order_idx ON anomalies (work_order_id);
SELECT mp_guard_tenant_table('anomalies');

ALTER TABLE work_orders ADD FOREIGN KEY (organization_id, anomaly_id)
    REFERENCES anomalies (organization_id, id) ON DELETE SET NULL (anomaly_id);

-- Outbox of changes others must hear about (WebSocket, webhooks). Written in
-- the same transaction as the change; a NOTIFY wakes listeners.
CREATE TABLE events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    subject_id      uuid,
    payload         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_org_idx ON events (organization_id, id);
SELECT mp_guard_tenant_table('events');

CREATE FUNCTION mp_events_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('mp_events', NEW.organization_id::text || ':' || NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION mp_events_notify();

-- Cross-organization lookups, run as the owner (SECURITY DEFINER).

-- Login: the user with this e-mail, whatever the organization.
CREATE FUNCTION mp_auth_user_by_email(p_email text)
    RETURNS TABLE (id uuid, organization_id uuid, password_hash text, active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT u.id, u.organization_id, u.password_hash, u.active
    FROM users u WHERE lower(u.email) = lower(p_email)
$$;

-- Ingest: the organization and device named by an MQTT topic.
CREATE FUNCTION mp_resolve_device(p_org_slug text, p_device text)
    RETURNS TABLE (organization_id uuid, device_id uuid, active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT d.organization_id, d.id, d.active
    FROM organizations o JOIN devices d ON d.organization_id = o.id
    WHERE o.slug = p_org_slug AND d.name = p_device
$$;

-- The organization id for a slug (to attribute dead letters).
CREATE FUNCTION mp_org_id_by_slug(p_slug text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT o.id FROM organizations o WHERE o.slug = p_slug $$;

-- Background jobs: every organization, to work on each in turn.
CREATE FUNCTION mp_organization_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT o.id FROM organizations o ORDER BY o.id $$;

REVOKE ALL ON FUNCTION mp_auth_user_by_email(text), mp_resolve_device(text, text),
    mp_org_id_by_slug(text), mp_organization_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mp_auth_user_by_email(text), mp_resolve_device(text, text),
    mp_org_id_by_slug(text), mp_organization_ids(), mp_current_org() TO maintainpro_app;
