-- Preventive maintenance schedules and the work orders they generate.
--
-- Calendar schedules repeat every N days/weeks/months, counted from the due
-- date or from the completion of the previous work order. Condition
-- schedules fire when a sensor's latest reading is above/below/outside a
-- band, at most one open work order at a time.
--
-- pm_occurrences has one row per (schedule, due time): generating a work
-- order inserts it in the same transaction, so an occurrence can never
-- produce two work orders, whatever runs concurrently or restarts.
CREATE TABLE pm_schedules (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '',
    equipment_id     uuid NOT NULL,
    priority         text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    assigned_to      uuid,
    trigger          text NOT NULL CHECK (trigger IN ('calendar', 'condition')),
    interval_count   integer CHECK (interval_count BETWEEN 1 AND 1000),
    interval_unit    text CHECK (interval_unit IN ('day', 'week', 'month')),
    anchor           text CHECK (anchor IN ('due', 'completion')),
    next_due_at      timestamptz,
    sensor_id        uuid,
    condition        text CHECK (condition IN ('above', 'below', 'outside')),
    threshold_low    double precision,
    threshold_high   double precision,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CHECK (trigger <> 'calendar' OR (interval_count IS NOT NULL AND interval_unit IS NOT NULL AND anchor IS NOT NULL)),
    CHECK (trigger <> 'condition' OR (sensor_id IS NOT NULL AND condition IS NOT NULL)),
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id),
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id),
    FOREIGN KEY (organization_id, assigned_to) REFERENCES users (organization_id, id)
);
CREATE INDEX pm_schedules_due_idx ON pm_schedules (next_due_at) WHERE active;
SELECT mp_guard_tenant_table('pm_schedules');

CREATE TABLE pm_occurrences (
    organization_id uuid NOT NULL,
    schedule_id     uuid NOT NULL,
    due_at          timestamptz NOT NULL,
    work_order_id   uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, due_at),
    FOREIGN KEY (organization_id, schedule_id) REFERENCES pm_schedules (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id)
);
CREATE INDEX pm_occurrences_wo_idx ON pm_occurrences (work_order_id);
SELECT mp_guard_tenant_table('pm_occurrences');

-- Escalation of overdue work: when the job last raised this work order's
-- priority because it was overdue.
ALTER TABLE work_orders ADD COLUMN escalated_at timestamptz;
