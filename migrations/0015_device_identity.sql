-- Device identity: the MQTT front door authenticates a device by
-- `{org_slug}/{device_name}` and its secret before the organization is known.
-- Revoking a device clears its secret and deactivates it; rotating replaces
-- the hash (the old secret stops working at the next CONNECT check).

CREATE FUNCTION mp_device_credentials(p_org_slug text, p_device text)
    RETURNS TABLE (organization_id uuid, device_id uuid, active boolean, secret_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT d.organization_id, d.id, d.active, d.secret_hash
    FROM organizations o JOIN devices d ON d.organization_id = o.id
    WHERE o.slug = p_org_slug AND d.name = p_device
$$;

REVOKE ALL ON FUNCTION mp_device_credentials(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mp_device_credentials(text, text) TO maintainpro_app;

-- The front door re-checks open connections: the current secret hash and
-- state of these devices (a rotated or revoked device is disconnected).
CREATE FUNCTION mp_device_secrets(p_ids uuid[])
    RETURNS TABLE (device_id uuid, active boolean, secret_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT d.id, d.active, d.secret_hash FROM devices d WHERE d.id = ANY (p_ids)
$$;

REVOKE ALL ON FUNCTION mp_device_secrets(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mp_device_secrets(uuid[]) TO maintainpro_app;
