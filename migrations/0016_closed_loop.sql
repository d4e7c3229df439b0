-- The closed loop of auto work orders: what raised them (failure mode,
-- evidence), what people found (verdict), how that tunes the detectors and
-- asks for baseline refits, and why an anomaly did not raise a work order
-- (suppression). The rules live in models/ (auto_policy, tuning, work_orders).

-- An auto work order's key is (equipment, failure mode); the failure mode's
-- family is the part before the first ':' (process, sensor_health,
-- predicted, multivariate). The unique index "one open auto work order per
-- key" and the source check follow the rename.
ALTER TABLE work_orders RENAME COLUMN dedup_key TO failure_mode;
ALTER TABLE work_orders
    -- What analytics saw when it raised the work order (similar past
    -- anomalies, a readings window, scores …); NULL for manual work.
    ADD COLUMN evidence    jsonb,
    -- Auto work orders: what the person who completed it found.
    ADD COLUMN verdict     text CHECK (verdict IN ('true_alarm', 'false_alarm')),
    -- Set once when the failure mode came back after a true-alarm completion
    -- (the work order stays completed; a comment says so).
    ADD COLUMN recurred_at timestamptz,
    ADD CHECK (verdict IS NULL OR source = 'auto');
-- The last closed auto work order of a key (cooldown).
CREATE INDEX work_orders_auto_key_idx ON work_orders (organization_id, equipment_id, failure_mode)
    WHERE source = 'auto';
-- Completed true alarms waiting for their quiet period (verification).
CREATE INDEX work_orders_auto_completed_idx ON work_orders (organization_id, completed_at)
    WHERE source = 'auto' AND status = 'completed';

ALTER TABLE anomalies
    -- The failure mode it was raised under (set by raise_auto, whatever the outcome).
    ADD COLUMN failure_mode      text,
    -- The verdict of the work order it was linked to, once completed.
    ADD COLUMN verdict           text CHECK (verdict IN ('true_alarm', 'false_alarm')),
    -- Why it raised no work order of its own; for parent_alarm, work_order_id
    -- is the ancestor's work order it was recorded on.
    ADD COLUMN suppressed_reason text CHECK (suppressed_reason IN ('cooldown', 'flapping', 'parent_alarm')),
    -- cooldown: when the cooldown ends.
    ADD COLUMN suppressed_until  timestamptz;
-- Flapping and recurrence: one key's anomalies in time.
CREATE INDEX anomalies_key_idx ON anomalies (organization_id, equipment_id, failure_mode, started_at);
-- Evidence: past anomalies of a kind on an asset.
CREATE INDEX anomalies_similar_idx ON anomalies (organization_id, equipment_id, kind, started_at DESC);

-- Per sensor and detector: how much to widen the detector's thresholds,
-- learned from verdicts (a false alarm widens by a factor, capped; a true
-- alarm nudges back toward 1).
CREATE TABLE detector_tuning (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sensor_id       uuid NOT NULL,
    detector        text NOT NULL CHECK (length(detector) BETWEEN 1 AND 100),
    threshold_scale double precision NOT NULL DEFAULT 1 CHECK (threshold_scale >= 1),
    false_alarms    integer NOT NULL DEFAULT 0 CHECK (false_alarms >= 0),
    true_alarms     integer NOT NULL DEFAULT 0 CHECK (true_alarms >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT detector_tuning_key UNIQUE (organization_id, sensor_id, detector),
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id) ON DELETE CASCADE
);
SELECT mp_guard_tenant_table('detector_tuning');

-- Requests to refit an asset's (or one sensor's) baseline after a repair:
-- analytics consumes the pending ones and marks them done.
CREATE TABLE baseline_refits (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    equipment_id    uuid NOT NULL,
    -- NULL: every sensor of the asset (multivariate models).
    sensor_id       uuid,
    -- The work order whose completion asked for it.
    work_order_id   uuid,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    done_at         timestamptz,
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id)
        ON DELETE SET NULL (work_order_id)
);
CREATE INDEX baseline_refits_pending_idx ON baseline_refits (organization_id, requested_at) WHERE done_at IS NULL;
SELECT mp_guard_tenant_table('baseline_refits');

-- Existing data, one organization at a time (acting for it, as in 0011):
-- the legacy keys in the new families (`sensor:` → `process:`,
-- `sensor-health:` → `sensor_health:`), and the failure mode of anomalies
-- already linked to an auto work order.
DO $$
DECLARE
    org      uuid;
    previous text := current_setting('app.org_id', true);
BEGIN
    FOR org IN SELECT o.id FROM organizations o ORDER BY o.id LOOP
        PERFORM set_config('app.org_id', org::text, true);
        UPDATE work_orders SET failure_mode = CASE
                WHEN failure_mode LIKE 'sensor-health:%' THEN 'sensor_health:' || substr(failure_mode, 15)
                ELSE 'process:' || substr(failure_mode, 8) END
        WHERE organization_id = org AND source = 'auto'
          AND (failure_mode LIKE 'sensor-health:%' OR failure_mode LIKE 'sensor:%');
        UPDATE anomalies a SET failure_mode = w.failure_mode
        FROM work_orders w
        WHERE a.organization_id = org AND w.id = a.work_order_id AND w.source = 'auto'
          AND a.failure_mode IS NULL;
    END LOOP;
    PERFORM set_config('app.org_id', coalesce(previous, ''), true);
END
$$;
