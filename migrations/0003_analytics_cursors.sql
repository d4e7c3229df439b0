-- Where the streaming detectors are in each sensor's readings, so a restart
-- resumes exactly where it stopped (no re-raised anomalies, no gaps).
CREATE TABLE analytics_cursors (
    organization_id uuid NOT NULL,
    sensor_id       uuid NOT NULL,
    last_ts         timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id),
    FOREIGN KEY (organization_id, sensor_id) REFERENCES sensors (organization_id, id) ON DELETE CASCADE
);
SELECT mp_guard_tenant_table('analytics_cursors');
