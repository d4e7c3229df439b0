-- Parts inventory: a catalog, stock locations, an append-only stock ledger,
-- the on-hand figure per (part, location) it implies, and reservations of
-- stock for work orders.
--
-- Quantities are whole units (bigint); money is integer cents.
--
-- The ledger (`stock_movements`) is the truth; `stock_levels` is its running
-- sum per (part, location), updated in the same transaction as each movement
-- while the part row is locked, and can never go negative (CHECK). The app
-- role may only INSERT and SELECT ledger rows: a movement is corrected by
-- another movement (an adjustment), never by editing history.

CREATE TABLE parts (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    sku             text NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    unit            text NOT NULL DEFAULT 'each' CHECK (length(unit) BETWEEN 1 AND 32),
    -- Standard cost, used to value issues to work orders.
    unit_cost_cents bigint NOT NULL DEFAULT 0 CHECK (unit_cost_cents >= 0),
    reorder_point   bigint NOT NULL DEFAULT 0 CHECK (reorder_point >= 0),
    reorder_qty     bigint NOT NULL DEFAULT 0 CHECK (reorder_qty >= 0),
    -- Set when available stock fell below the reorder point and the
    -- part.low_stock event was sent; cleared when it is back at or above it,
    -- so the event fires once per crossing.
    low_stock_alerted boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT parts_sku_key UNIQUE (organization_id, sku)
);
CREATE INDEX parts_list_idx ON parts (organization_id, created_at DESC, id DESC);
SELECT mp_guard_tenant_table('parts');

CREATE TABLE stock_locations (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT stock_locations_name_key UNIQUE (organization_id, name)
);
SELECT mp_guard_tenant_table('stock_locations');

-- The ledger. quantity is signed: receive and return add (> 0), issue takes
-- (< 0), adjust either way; issues and returns name their work order.
CREATE TABLE stock_movements (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    part_id         uuid NOT NULL,
    location_id     uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('receive', 'issue', 'adjust', 'return')),
    quantity        bigint NOT NULL CHECK (quantity <> 0),
    unit_cost_cents bigint NOT NULL CHECK (unit_cost_cents >= 0),
    work_order_id   uuid,
    note            text NOT NULL DEFAULT '',
    -- On hand at this location right after the movement (running balance).
    on_hand_after   bigint NOT NULL CHECK (on_hand_after >= 0),
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind NOT IN ('receive', 'return') OR quantity > 0),
    CHECK (kind <> 'issue' OR quantity < 0),
    CHECK ((kind IN ('issue', 'return')) = (work_order_id IS NOT NULL)),
    FOREIGN KEY (organization_id, part_id) REFERENCES parts (organization_id, id),
    FOREIGN KEY (organization_id, location_id) REFERENCES stock_locations (organization_id, id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id),
    FOREIGN KEY (organization_id, created_by) REFERENCES users (organization_id, id)
);
CREATE INDEX stock_movements_part_idx ON stock_movements (part_id, created_at DESC, id DESC);
CREATE INDEX stock_movements_work_order_idx ON stock_movements (work_order_id) WHERE work_order_id IS NOT NULL;
SELECT mp_guard_tenant_table('stock_movements');
-- Append-only for the services: no UPDATE or DELETE, and no UPDATE by anyone.
REVOKE UPDATE, DELETE, TRUNCATE ON stock_movements FROM maintainpro_app;

CREATE FUNCTION mp_stock_movements_immutable() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'stock_movements is append-only; record an adjustment instead'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER stock_movements_immutable BEFORE UPDATE ON stock_movements
    FOR EACH ROW EXECUTE FUNCTION mp_stock_movements_immutable();

-- On hand per (part, location): the ledger's sum, kept in step with it.
CREATE TABLE stock_levels (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    part_id         uuid NOT NULL,
    location_id     uuid NOT NULL,
    on_hand         bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, part_id, location_id),
    CONSTRAINT stock_levels_on_hand_check CHECK (on_hand >= 0),
    FOREIGN KEY (organization_id, part_id) REFERENCES parts (organization_id, id),
    FOREIGN KEY (organization_id, location_id) REFERENCES stock_locations (organization_id, id)
);
SELECT mp_guard_tenant_table('stock_levels');

-- Stock set aside for a work order at a location. Only reservations of
-- active work orders (open, in progress, on hold) count against availability;
-- issuing to the work order consumes its reservation.
CREATE TABLE part_reservations (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    work_order_id   uuid NOT NULL,
    part_id         uuid NOT NULL,
    location_id     uuid NOT NULL,
    quantity        bigint NOT NULL CHECK (quantity > 0),
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    CONSTRAINT part_reservations_key UNIQUE (work_order_id, part_id, location_id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, part_id) REFERENCES parts (organization_id, id),
    FOREIGN KEY (organization_id, location_id) REFERENCES stock_locations (organization_id, id),
    FOREIGN KEY (organization_id, created_by) REFERENCES users (organization_id, id)
);
CREATE INDEX part_reservations_part_idx ON part_reservations (part_id, location_id);
SELECT mp_guard_tenant_table('part_reservations');
