-- Work-order details: several assignees, failure codes (problem / cause /
-- remedy) from a per-organization catalog, downtime with a reason, and
-- checklists. The rules that use them (who may be assigned, which codes a
-- work order needs before it may be completed, …) live in models/.

-- Assignees. A work order may have several; work_orders.assigned_to stays
-- as the lead assignee (the first of the list, NULL when nobody is
-- assigned), kept in step by the one function that changes assignees.
CREATE TABLE work_order_assignees (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    user_id         uuid NOT NULL,
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    -- Absent when a service (PM scheduler) or the migration assigned.
    assigned_by     uuid,
    CONSTRAINT work_order_assignees_key UNIQUE (work_order_id, user_id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id),
    FOREIGN KEY (organization_id, assigned_by) REFERENCES users (organization_id, id)
);
-- The list filter "assigned to user X" (any assignee).
CREATE INDEX work_order_assignees_user_idx ON work_order_assignees (organization_id, user_id);
SELECT mp_guard_tenant_table('work_order_assignees');

-- Failure codes, ISO 14224-flavoured: what was wrong (problem), why
-- (cause), what was done (remedy). A catalog per organization; a code is
-- unique per (organization, kind), never deleted, only deactivated (work
-- orders keep pointing at it).
CREATE TABLE failure_codes (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('problem', 'cause', 'remedy')),
    code            text NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{0,15}$'),
    description     text NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT failure_codes_code_key UNIQUE (organization_id, kind, code)
);
SELECT mp_guard_tenant_table('failure_codes');

-- The default catalog, inserted into one organization (idempotent). It
-- acts for that organization itself (app.org_id, restored afterwards), so
-- row-level security and the audit trigger accept the rows whatever role
-- runs it; SECURITY DEFINER so that the trigger below works for any role
-- that may create organizations. Not callable by the services directly.
CREATE FUNCTION mp_seed_failure_codes(p_org uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    previous text := current_setting('app.org_id', true);
BEGIN
    PERFORM set_config('app.org_id', p_org::text, true);
    INSERT INTO failure_codes (id, organization_id, kind, code, description)
    SELECT gen_random_uuid(), p_org, d.kind, d.code, d.description
    FROM (VALUES
        ('problem', 'VIB', 'High vibration'),
        ('problem', 'OHE', 'Overheating'),
        ('problem', 'LEK', 'Leakage'),
        ('problem', 'NOI', 'Abnormal noise'),
        ('problem', 'ELF', 'Electrical fault'),
        ('problem', 'STP', 'Fails to start'),
        ('problem', 'BRD', 'Breakdown'),
        ('problem', 'PDE', 'Parameter deviation'),
        ('problem', 'OTH', 'Other'),
        ('cause', 'WEA', 'Wear'),
        ('cause', 'MIS', 'Misalignment'),
        ('cause', 'LUB', 'Lubrication'),
        ('cause', 'CON', 'Contamination'),
        ('cause', 'OVL', 'Overload'),
        ('cause', 'ELE', 'Electrical'),
        ('cause', 'OPE', 'Operating error'),
        ('cause', 'DES', 'Design'),
        ('cause', 'UNK', 'Unknown'),
        ('remedy', 'REP', 'Replace'),
        ('remedy', 'ADJ', 'Adjust'),
        ('remedy', 'LUB', 'Lubricate'),
        ('remedy', 'CLE', 'Clean'),
        ('remedy', 'RPR', 'Repair'),
        ('remedy', 'REA', 'Realign'),
        ('remedy', 'TIG', 'Tighten'),
        ('remedy', 'NON', 'No action needed')
    ) AS d (kind, code, description)
    ON CONFLICT ON CONSTRAINT failure_codes_code_key DO NOTHING;
    PERFORM set_config('app.org_id', coalesce(previous, ''), true);
END
$$;
REVOKE ALL ON FUNCTION mp_seed_failure_codes(uuid) FROM PUBLIC;

-- Every new organization starts with the default catalog.
CREATE FUNCTION mp_organization_defaults() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM mp_seed_failure_codes(NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER organization_defaults AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION mp_organization_defaults();

-- The codes of a work order. Kinds (a problem code in problem_code_id …)
-- and "active when set" are checked by the models.
ALTER TABLE work_orders
    ADD COLUMN problem_code_id uuid,
    ADD COLUMN cause_code_id   uuid,
    ADD COLUMN remedy_code_id  uuid,
    ADD FOREIGN KEY (organization_id, problem_code_id) REFERENCES failure_codes (organization_id, id),
    ADD FOREIGN KEY (organization_id, cause_code_id) REFERENCES failure_codes (organization_id, id),
    ADD FOREIGN KEY (organization_id, remedy_code_id) REFERENCES failure_codes (organization_id, id);

-- Downtime of the work order's equipment, with a reason. An entry without
-- ended_at is still running. The models keep one work order's entries from
-- overlapping (under the work order's row lock); the partial unique index
-- backs "at most one running entry per work order".
CREATE TABLE work_order_downtime (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    equipment_id    uuid NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    reason          text NOT NULL CHECK (reason IN ('breakdown', 'planned_maintenance', 'waiting_parts',
                                                    'waiting_labor', 'inspection', 'other')),
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    -- Absent when a service recorded it.
    recorded_by     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CHECK (ended_at IS NULL OR ended_at > started_at),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id),
    FOREIGN KEY (organization_id, recorded_by) REFERENCES users (organization_id, id)
);
CREATE INDEX work_order_downtime_wo_idx ON work_order_downtime (work_order_id, started_at);
-- Reports: an asset's downtime in a range.
CREATE INDEX work_order_downtime_equipment_idx ON work_order_downtime (organization_id, equipment_id, started_at);
CREATE UNIQUE INDEX work_order_downtime_one_running ON work_order_downtime (work_order_id) WHERE ended_at IS NULL;
SELECT mp_guard_tenant_table('work_order_downtime');

-- Checklist items of a work order, in order (position 0, 1, …). Replacing
-- the list renumbers items, so position uniqueness is checked at commit.
CREATE TABLE work_order_checklist_items (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    position        integer NOT NULL CHECK (position >= 0),
    label           text NOT NULL CHECK (length(label) BETWEEN 1 AND 500),
    -- Required items must be done before the work order may be completed.
    required        boolean NOT NULL DEFAULT true,
    done            boolean NOT NULL DEFAULT false,
    done_by         uuid,
    done_at         timestamptz,
    -- The result or a remark ("bearing temperature 61 °C").
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT work_order_checklist_items_position_key UNIQUE (work_order_id, position)
        DEFERRABLE INITIALLY DEFERRED,
    CHECK (done = (done_at IS NOT NULL)),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, done_by) REFERENCES users (organization_id, id)
);
SELECT mp_guard_tenant_table('work_order_checklist_items');

-- A preventive schedule's checklist template ([{label, required}]), copied
-- to every work order it generates.
ALTER TABLE pm_schedules ADD COLUMN checklist jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(checklist) = 'array');

-- Existing data, one organization at a time (acting for it, as above):
-- the default catalog, and today's single assignee as the first row of the
-- assignee list.
DO $$
DECLARE
    org      uuid;
    previous text := current_setting('app.org_id', true);
BEGIN
    FOR org IN SELECT o.id FROM organizations o ORDER BY o.id LOOP
        PERFORM mp_seed_failure_codes(org);
        PERFORM set_config('app.org_id', org::text, true);
        INSERT INTO work_order_assignees (id, organization_id, work_order_id, user_id, assigned_at)
        SELECT gen_random_uuid(), w.organization_id, w.id, w.assigned_to, w.created_at
        FROM work_orders w
        WHERE w.organization_id = org AND w.assigned_to IS NOT NULL
        ON CONFLICT ON CONSTRAINT work_order_assignees_key DO NOTHING;
    END LOOP;
    PERFORM set_config('app.org_id', coalesce(previous, ''), true);
END
$$;
