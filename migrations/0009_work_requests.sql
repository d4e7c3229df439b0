-- Work requests: anyone may ask for work on an asset (also from the asset's
-- QR code); a manager approves a request into a work order or rejects it
-- with a reason.
CREATE TABLE work_requests (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '',
    equipment_id     uuid,
    requested_by     uuid NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    rejection_reason text,
    work_order_id    uuid,
    decided_by       uuid,
    decided_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CHECK (status <> 'rejected' OR length(rejection_reason) > 0),
    CHECK (status <> 'approved' OR work_order_id IS NOT NULL),
    FOREIGN KEY (organization_id, equipment_id) REFERENCES equipment (organization_id, id),
    FOREIGN KEY (organization_id, requested_by) REFERENCES users (organization_id, id),
    FOREIGN KEY (organization_id, decided_by) REFERENCES users (organization_id, id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id)
);
CREATE INDEX work_requests_list_idx ON work_requests (organization_id, status, created_at DESC);
SELECT mp_guard_tenant_table('work_requests');
