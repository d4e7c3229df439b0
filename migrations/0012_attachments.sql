-- Work-order attachments (photos, PDFs, text/CSV), stored in PostgreSQL so
-- row-level security guards them like every other tenant row and one
-- backup holds everything.
--
-- The metadata and the bytes live in two tables: listing a work order's
-- attachments never reads a blob, and the audit log records the metadata
-- row (name, type, size, SHA-256, uploader) without copying the file.

CREATE TABLE attachments (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    work_order_id   uuid NOT NULL,
    -- Sanitized by the API: no path, no control characters, at most 200 characters.
    filename        text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    -- Determined from the file's first bytes, never taken from the client.
    content_type    text NOT NULL,
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    -- Lower-case hex SHA-256 of the bytes (computed by the database on insert).
    sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- Absent when a service uploaded the file.
    uploaded_by     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, work_order_id) REFERENCES work_orders (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, uploaded_by) REFERENCES users (organization_id, id)
);
CREATE INDEX attachments_wo_idx ON attachments (work_order_id, created_at);
SELECT mp_guard_tenant_table('attachments');

-- The bytes, one row per attachment, deleted with it.
CREATE TABLE attachment_blobs (
    attachment_id   uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    data            bytea NOT NULL,
    FOREIGN KEY (organization_id, attachment_id) REFERENCES attachments (organization_id, id) ON DELETE CASCADE
);
-- Images and PDFs are compressed already: store out of line without trying
-- to compress them again.
ALTER TABLE attachment_blobs ALTER COLUMN data SET STORAGE EXTERNAL;
SELECT mp_guard_tenant_table('attachment_blobs');
-- mp_guard_tenant_table attached the audit trigger, which would copy every
-- file (as hex in jsonb) into audit_log. The metadata row's audit entry is
-- the record of the upload or deletion; the blob table goes unaudited.
DROP TRIGGER audit ON attachment_blobs;
