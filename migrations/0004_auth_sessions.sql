-- Sign-in sessions and invitations.
--
-- Refresh tokens rotate: every use of one issues its successor in the same
-- family and marks it used. Presenting a used token again means it leaked
-- (or was stolen and used by someone else first), so the whole family is
-- revoked. Tokens are opaque random strings; only their SHA-256 is stored.
--
-- Invitations: an admin creates an inactive user with a one-time invite
-- token (stored hashed, 7 days); accepting it sets the password and
-- activates the user.
--
-- Both tokens are presented before the organization is known, so each has
-- a SECURITY DEFINER lookup from hash to organization (like
-- mp_auth_user_by_email in 0001); everything else runs under RLS.

CREATE TABLE refresh_tokens (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id           uuid NOT NULL,
    -- All tokens descending from one sign-in share the family id.
    family_id         uuid NOT NULL,
    token_hash        bytea NOT NULL CHECK (length(token_hash) = 32),
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    -- Absolute end of the family: rotation never extends a session past it.
    family_expires_at timestamptz NOT NULL,
    used_at           timestamptz,
    revoked_at        timestamptz,
    replaced_by       uuid,
    UNIQUE (organization_id, id),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CHECK (expires_at <= family_expires_at),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, replaced_by) REFERENCES refresh_tokens (organization_id, id)
        ON DELETE SET NULL (replaced_by)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (organization_id, family_id);
-- Deactivation revokes by user; sign-in purges the user's ended families.
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (organization_id, user_id);
SELECT mp_guard_tenant_table('refresh_tokens');

CREATE TABLE user_invites (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    token_hash      bytea NOT NULL CHECK (length(token_hash) = 32),
    invited_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    accepted_at     timestamptz,
    revoked_at      timestamptz,
    UNIQUE (organization_id, id),
    CONSTRAINT user_invites_token_hash_key UNIQUE (token_hash),
    FOREIGN KEY (organization_id, user_id) REFERENCES users (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, invited_by) REFERENCES users (organization_id, id)
        ON DELETE SET NULL (invited_by)
);
CREATE INDEX user_invites_user_idx ON user_invites (organization_id, user_id);
SELECT mp_guard_tenant_table('user_invites');

-- Refresh: which organization a presented token belongs to.
CREATE FUNCTION mp_auth_refresh_token(p_hash bytea)
    RETURNS TABLE (id uuid, organization_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT t.id, t.organization_id FROM refresh_tokens t WHERE t.token_hash = p_hash
$$;

-- Accepting an invitation: which organization the invite belongs to.
CREATE FUNCTION mp_auth_invite(p_hash bytea)
    RETURNS TABLE (id uuid, organization_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT i.id, i.organization_id FROM user_invites i WHERE i.token_hash = p_hash
$$;

REVOKE ALL ON FUNCTION mp_auth_refresh_token(bytea), mp_auth_invite(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mp_auth_refresh_token(bytea), mp_auth_invite(bytea) TO maintainpro_app;
