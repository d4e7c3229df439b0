-- Trend storage: 1-minute and 1-hour rollups of readings, and on
-- TimescaleDB compression and retention.
--
-- Both paths give the services the same relations with the same columns:
--   readings_1m, readings_1h (organization_id, sensor_id, bucket, min, max, sum, count)
-- one row per sensor and minute / hour, keyed (sensor_id, bucket), visible
-- to the current organization only. Buckets are aligned to UTC (date_bin
-- from 2000-01-01T00:00Z, the same grid as time_bucket for these widths).
--
-- Plain PostgreSQL (CI, the self-managed cluster): the rollups are tables
-- kept by the service. A statement-level trigger on readings records, in
-- the writer's own transaction, the minutes each INSERT touched per
-- organization (one readings_rollup_pending row per statement and
-- organization, a multirange of minutes). The rollup task
-- (models::rollups, run by ingest) claims those rows with
-- FOR UPDATE SKIP LOCKED, recomputes the touched minutes from raw and the
-- touched hours from the minutes (idempotent upserts), so data replayed
-- late from an edge outbox is rolled up like fresh data. Trend queries
-- read raw data for minutes still pending, so answers are never stale.
--
-- TimescaleDB (installed and preloaded, as in 0002): readings is already a
-- hypertable. TimescaleDB refuses compression and continuous aggregates on
-- a table with row-level security, so the hypertable is renamed
-- readings_data, loses its policies and its grants, and `readings` becomes
-- a security-barrier view of the current organization's rows (inserts
-- through it are checked: WITH CHECK OPTION). readings_1m / readings_1h are
-- continuous aggregates (readings_1m_cagg, readings_1h_cagg, real-time)
-- behind views of the same kind. No trigger, no pending rows: the rollup
-- task sees mp_readings_rollups_by_service() = false and does nothing.

-- Touched minutes waiting for the rollup task (both paths; empty on TimescaleDB).
CREATE TABLE readings_rollup_pending (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    touched         tstzmultirange NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX readings_rollup_pending_org_idx ON readings_rollup_pending (organization_id, id);
-- Tenant policy written out (not mp_guard_tenant_table): a work queue is not audited.
ALTER TABLE readings_rollup_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE readings_rollup_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON readings_rollup_pending
    USING (organization_id = mp_current_org()) WITH CHECK (organization_id = mp_current_org());
CREATE POLICY owner_lookup ON readings_rollup_pending FOR SELECT TO CURRENT_USER USING (true);
-- UPDATE: claiming with FOR UPDATE needs it.
GRANT SELECT, INSERT, UPDATE, DELETE ON readings_rollup_pending TO maintainpro_app;

DO $$
DECLARE
    retention interval := coalesce(
        nullif(current_setting('maintainpro.readings_retention', true), ''), '365 days')::interval;
    hypertable boolean := false;
BEGIN
    -- The TimescaleDB path needs what 0002 made: readings as a hypertable.
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                                WHERE hypertable_name = ''readings'')' INTO hypertable;
    END IF;
    IF hypertable THEN
        -- Chunk interval: one day. Sized for this class of box (2 cores,
        -- ~24 GB RAM): the chunk being written, with its (sensor_id, ts)
        -- index, should stay well inside a quarter of memory. One day of
        -- 500 sensors at 1 Hz is 43 M rows ≈ 4-5 GB with the index; the
        -- benchmark's 40 sensors make ≈ 0.35 GB/day. Bigger fleets: shorten it
        -- with set_chunk_time_interval (applies to new chunks).
        PERFORM set_chunk_time_interval('readings', INTERVAL '1 day');

        -- Row-level security cannot coexist with compression or continuous
        -- aggregates: move tenancy into security-barrier views (the
        -- organization as a sub-select: evaluated once per query).
        EXECUTE 'ALTER TABLE readings RENAME TO readings_data';
        EXECUTE 'DROP POLICY IF EXISTS tenant_isolation ON readings_data';
        EXECUTE 'DROP POLICY IF EXISTS owner_lookup ON readings_data';
        EXECUTE 'ALTER TABLE readings_data NO FORCE ROW LEVEL SECURITY';
        EXECUTE 'ALTER TABLE readings_data DISABLE ROW LEVEL SECURITY';
        EXECUTE 'REVOKE ALL ON readings_data FROM maintainpro_app';
        EXECUTE 'CREATE VIEW readings WITH (security_barrier = true) AS
                 SELECT organization_id, sensor_id, ts, value FROM readings_data
                 WHERE organization_id = (SELECT mp_current_org())
                 WITH CASCADED CHECK OPTION';
        EXECUTE 'GRANT SELECT, INSERT, DELETE ON readings TO maintainpro_app';

        -- Compression: per sensor segments, newest first; chunks older than
        -- 7 days (late data into them is still accepted, at a cost).
        EXECUTE 'ALTER TABLE readings_data SET (timescaledb.compress,
                 timescaledb.compress_segmentby = ''organization_id, sensor_id'',
                 timescaledb.compress_orderby = ''ts DESC'')';
        PERFORM add_compression_policy('readings_data', INTERVAL '7 days');

        -- Retention: raw readings older than `maintainpro.readings_retention`
        -- (default 365 days; ALTER DATABASE … SET maintainpro.readings_retention
        -- = '730 days' before migrating, or remove_retention_policy /
        -- add_retention_policy later). The rollups are kept.
        PERFORM add_retention_policy('readings_data', retention);

        -- Continuous aggregates, real-time (materialized buckets plus raw
        -- data newer than the watermark).
        EXECUTE 'CREATE MATERIALIZED VIEW readings_1m_cagg
                 WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                 SELECT organization_id, sensor_id, time_bucket(INTERVAL ''1 minute'', ts) AS bucket,
                        min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count
                 FROM readings_data
                 GROUP BY organization_id, sensor_id, time_bucket(INTERVAL ''1 minute'', ts)
                 WITH NO DATA';
        EXECUTE 'CREATE MATERIALIZED VIEW readings_1h_cagg
                 WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                 SELECT organization_id, sensor_id, time_bucket(INTERVAL ''1 hour'', ts) AS bucket,
                        min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count
                 FROM readings_data
                 GROUP BY organization_id, sensor_id, time_bucket(INTERVAL ''1 hour'', ts)
                 WITH NO DATA';
        EXECUTE 'CREATE INDEX readings_1m_cagg_sensor_idx ON readings_1m_cagg (sensor_id, bucket)';
        EXECUTE 'CREATE INDEX readings_1h_cagg_sensor_idx ON readings_1h_cagg (sensor_id, bucket)';
        -- Refresh windows reach back as far as compression (late data from
        -- an edge outbox); only invalidated buckets are recomputed.
        PERFORM add_continuous_aggregate_policy('readings_1m_cagg',
            start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 minute',
            schedule_interval => INTERVAL '1 minute');
        PERFORM add_continuous_aggregate_policy('readings_1h_cagg',
            start_offset => INTERVAL '35 days', end_offset => INTERVAL '1 hour',
            schedule_interval => INTERVAL '15 minutes');
        EXECUTE 'REVOKE ALL ON readings_1m_cagg, readings_1h_cagg FROM maintainpro_app';
        EXECUTE 'CREATE VIEW readings_1m WITH (security_barrier = true) AS
                 SELECT organization_id, sensor_id, bucket, min, max, sum, count
                 FROM readings_1m_cagg WHERE organization_id = (SELECT mp_current_org())';
        EXECUTE 'CREATE VIEW readings_1h WITH (security_barrier = true) AS
                 SELECT organization_id, sensor_id, bucket, min, max, sum, count
                 FROM readings_1h_cagg WHERE organization_id = (SELECT mp_current_org())';
        EXECUTE 'GRANT SELECT ON readings_1m, readings_1h TO maintainpro_app';
        EXECUTE 'CREATE FUNCTION mp_readings_rollups_by_service() RETURNS boolean
                 LANGUAGE sql IMMUTABLE AS $f$ SELECT false $f$';
        RAISE NOTICE 'readings: compression, retention % and continuous aggregates (TimescaleDB)', retention;
    ELSE
        CREATE TABLE readings_1m (
            organization_id uuid NOT NULL,
            sensor_id       uuid NOT NULL,
            bucket          timestamptz NOT NULL,
            min             double precision NOT NULL,
            max             double precision NOT NULL,
            sum             double precision NOT NULL,
            count           bigint NOT NULL,
            -- Covering: a trend query reads its sensor's range by index only
            -- (a 30-day 1-minute series is 43 200 rows).
            PRIMARY KEY (sensor_id, bucket) INCLUDE (organization_id, min, max, sum, count)
        );
        CREATE TABLE readings_1h (LIKE readings_1m INCLUDING ALL);
        -- The rollup task rebuilds hours from the minutes of a time range, all sensors.
        CREATE INDEX readings_1m_org_bucket_idx ON readings_1m (organization_id, bucket);
        -- The policies compare with (SELECT mp_current_org()): evaluated once
        -- per query (an InitPlan), not once per row; half the time of a
        -- 43 200-row scan.
        ALTER TABLE readings_1m ENABLE ROW LEVEL SECURITY;
        ALTER TABLE readings_1m FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON readings_1m
            USING (organization_id = (SELECT mp_current_org()))
            WITH CHECK (organization_id = (SELECT mp_current_org()));
        CREATE POLICY owner_lookup ON readings_1m FOR SELECT TO CURRENT_USER USING (true);
        ALTER TABLE readings_1h ENABLE ROW LEVEL SECURITY;
        ALTER TABLE readings_1h FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON readings_1h
            USING (organization_id = (SELECT mp_current_org()))
            WITH CHECK (organization_id = (SELECT mp_current_org()));
        CREATE POLICY owner_lookup ON readings_1h FOR SELECT TO CURRENT_USER USING (true);
        GRANT SELECT, INSERT, UPDATE, DELETE ON readings_1m, readings_1h TO maintainpro_app;

        -- One pending row per INSERT statement and organization: the
        -- touched minutes as a multirange (adjacent minutes merged).
        CREATE FUNCTION mp_readings_note_touched() RETURNS trigger
            LANGUAGE plpgsql
        AS $f$
        BEGIN
            INSERT INTO readings_rollup_pending (organization_id, touched)
            SELECT organization_id, range_agg(tstzrange(m, m + INTERVAL '1 minute'))
            FROM (SELECT DISTINCT organization_id,
                         date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS m
                  FROM new_readings) t
            GROUP BY organization_id;
            RETURN NULL;
        END
        $f$;
        CREATE TRIGGER readings_note_touched AFTER INSERT ON readings
            REFERENCING NEW TABLE AS new_readings
            FOR EACH STATEMENT EXECUTE FUNCTION mp_readings_note_touched();
        CREATE FUNCTION mp_readings_rollups_by_service() RETURNS boolean
            LANGUAGE sql IMMUTABLE AS $f$ SELECT true $f$;
        -- Readings stored before this migration: each organization's span
        -- is pending (queries read it raw until the rollup loop is through).
        -- As the owner, which RLS would refuse the insert while forced.
        ALTER TABLE readings_rollup_pending NO FORCE ROW LEVEL SECURITY;
        INSERT INTO readings_rollup_pending (organization_id, touched)
        SELECT organization_id,
               tstzmultirange(tstzrange(
                   date_bin(INTERVAL '1 minute', min(ts), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                   date_bin(INTERVAL '1 minute', max(ts), TIMESTAMPTZ '2000-01-01 00:00:00+00')
                       + INTERVAL '1 minute'))
        FROM readings GROUP BY organization_id;
        ALTER TABLE readings_rollup_pending FORCE ROW LEVEL SECURITY;
        RAISE NOTICE 'readings: rollup tables kept by the service (plain PostgreSQL)';
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION mp_readings_rollups_by_service() TO maintainpro_app;
