-- Full-text search over equipment, and indexes for the keyset-paginated
-- lists of equipment, users and work requests.
--
-- Equipment search (models/src/equipment.rs `list` with `q`) matches a
-- websearch-style query with every word as a prefix ("pum" finds "pump")
-- against a stored tsvector, ranks with ts_rank, and puts an exact asset-tag
-- match first, then tags starting with the query. The 'simple' configuration
-- (no stemming, no stop words), like work_orders.search: asset names and tags
-- are not prose in one language.

-- The text a search vector is built from: separators inside words become
-- spaces, so "P-101" is the words "p" and "101", and "Line-2" is "line" and
-- "2" (the default parser would read "-101" and "-2" as signed numbers, which
-- a search for "101" or "line 2" never finds). The query side applies the
-- same rule to separators between two characters (models/src/equipment.rs
-- `search_words`), keeping a leading "-" as websearch's "not".
-- IMMUTABLE: equipment.search is a generated column built with it. Changing
-- the definition later needs the column regenerated.
CREATE FUNCTION mp_search_words(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT regexp_replace(t, '[-_./\\:#,;+]+', ' ', 'g')
$$;

-- Weights: tag and name A, location B, description C. The tag is also
-- indexed without any separators, so "P101" and "p10" find "P-101".
ALTER TABLE equipment ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', mp_search_words(asset_tag) || ' '
                                    || regexp_replace(asset_tag, '[-_./\\:#,;+[:space:]]+', '', 'g')), 'A')
    || setweight(to_tsvector('simple', mp_search_words(name)), 'A')
    || setweight(to_tsvector('simple', mp_search_words(location)), 'B')
    || setweight(to_tsvector('simple', mp_search_words(description)), 'C')
) STORED;
CREATE INDEX equipment_search_idx ON equipment USING gin (search);
-- Exact and prefix asset-tag matches (lower(asset_tag) = / LIKE 'x%').
CREATE INDEX equipment_tag_lower_idx ON equipment (organization_id, lower(asset_tag) text_pattern_ops);
-- The default equipment order (name, id) and its keyset cursor.
CREATE INDEX equipment_name_idx ON equipment (organization_id, name, id);

-- The user list's order (name, id) and its keyset cursor.
CREATE INDEX users_name_idx ON users (organization_id, name, id);

-- Work requests newest first, (created_at, id) keyset cursor, any status
-- (work_requests_list_idx leads with status, for the status filter).
CREATE INDEX work_requests_created_idx ON work_requests (organization_id, created_at DESC, id DESC);
