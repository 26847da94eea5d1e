-- The audit chain is keyed (HMAC-SHA256 with a key kept outside the database) from
-- the next record on; the records already there keep their plain SHA-256 links. The key
-- file keeps the same number, and verification trusts that copy, not this one.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
UPDATE audit_head SET keyed_from = last_id + 1;
-- An HMAC of a fixed text under the chain's key, written by the first instance to
-- start: an instance holding another key refuses to start instead of forking the chain.
ALTER TABLE audit_head ADD COLUMN key_check BYTEA;

-- Audit records are only ever appended: the application's role gives up UPDATE,
-- DELETE and TRUNCATE on them where the installation lets it (a superuser keeps every
-- privilege whatever is revoked; see the README's "Security model" for the
-- installation with a separate owner role that makes this binding).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'audit_events: UPDATE and DELETE could not be revoked from %', current_user;
END
$$;
