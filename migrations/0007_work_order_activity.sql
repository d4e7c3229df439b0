-- Work-order activity: comments, and labour time logged against the work.
CREATE TABLE work_order_comments (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    author_id       uuid,
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, author_id) REFERENCES users (organization_id, id)
);
CREATE INDEX work_order_comments_wo_idx ON work_order_comments (work_order_id, created_at);
SELECT mp_guard_tenant_table('work_order_comments');

CREATE TABLE work_order_time_logs (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    work_order_id   uuid NOT NULL,
    user_id         uuid NOT NULL,
    -- Labour in minutes; one entry at most a day's work.
    minutes         integer NOT NULL CHECK (minutes BETWEEN 1 AND 1440),
    performed_on    date NOT NULL DEFAULT current_date,
    note            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id)
);
CREATE INDEX work_order_time_logs_wo_idx ON work_order_time_logs (work_order_id, created_at);
SELECT mp_guard_tenant_table('work_order_time_logs');
