-- Audit log: who changed what, with the row before and after, for every
-- write to a tenant table — recorded by a trigger, so no code path can
-- forget it. The acting user (or service) is what the transaction set with
-- set_config('app.user_id' / 'app.actor', …, true) next to app.org_id.
-- Append-only for the services: no UPDATE or DELETE grants.

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    table_name      text NOT NULL,
    row_id          text,
    action          text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    actor_user_id   uuid,
    actor           text NOT NULL DEFAULT '',
    before          jsonb,
    after           jsonb,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org_idx ON audit_log (organization_id, id DESC);
CREATE INDEX audit_log_row_idx ON audit_log (organization_id, table_name, row_id, id DESC);
SELECT mp_guard_tenant_table('audit_log');
REVOKE UPDATE, DELETE ON audit_log FROM maintainpro_app;

-- Columns never copied into the log (secrets), and columns whose change
-- alone is not worth a log entry (bookkeeping).
CREATE FUNCTION mp_audit() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    hidden   text[] := ARRAY['password_hash', 'secret_hash', 'secret', 'token_hash', 'search'];
    volatile text[] := ARRAY['updated_at', 'last_seen_at'];
    b        jsonb;
    a        jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' AND (a - volatile) = (b - volatile) THEN
        RETURN NULL;
    END IF;
    INSERT INTO audit_log (organization_id, table_name, row_id, action, actor_user_id, actor, before, after)
    VALUES ((coalesce(a, b) ->> 'organization_id')::uuid, TG_TABLE_NAME, coalesce(a, b) ->> 'id',
            lower(TG_OP), NULLIF(current_setting('app.user_id', true), '')::uuid,
            coalesce(current_setting('app.actor', true), ''), b, a);
    RETURN NULL;
END
$$;

-- Tables that are logs or high-volume streams themselves are not audited.
CREATE FUNCTION mp_audit_excluded(tbl text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
AS $$
    SELECT tbl = ANY (ARRAY['audit_log', 'readings', 'events', 'dead_letters', 'analytics_cursors',
                            'org_counters', 'work_order_status_history', 'refresh_tokens',
                            'webhook_deliveries', 'webhook_cursors', 'stock_levels'])
$$;

CREATE FUNCTION mp_attach_audit(tbl regclass) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT mp_audit_excluded(tbl::text) THEN
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION mp_audit()', tbl);
    END IF;
END
$$;

-- Every tenant table that exists now …
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables i USING (table_schema, table_name)
        WHERE c.column_name = 'organization_id' AND c.table_schema = 'public' AND i.table_type = 'BASE TABLE'
    LOOP
        PERFORM mp_attach_audit(t::regclass);
    END LOOP;
END
$$;

-- … and every tenant table guarded from now on.
CREATE OR REPLACE FUNCTION mp_guard_tenant_table(tbl regclass) RETURNS void
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
    PERFORM mp_attach_audit(tbl);
END
$$;
