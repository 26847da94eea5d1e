-- Hardening: who wrote each proxy login permission entry, one live session on behalf
-- per actor session, re-authentication attempts with an ID (each one is counted
-- before its password is checked), and the per-account sign-in throttle.

-- The member who wrote the entry (NULL for entries written before this was kept).
-- The rule refuses an equal-rank grant its own holder wrote.
ALTER TABLE proxy_permissions ADD COLUMN granted_by INTEGER REFERENCES members (id);

-- The token of a session on behalf that has ended, kept apart so it can never be used
-- again yet is still recognised: a late request with it acts as no one and is told so,
-- instead of having its cookie (by then the actor's own again) cleared.
ALTER TABLE sessions ADD COLUMN ended_token_hash BLOB;
CREATE INDEX sessions_ended_token ON sessions (ended_token_hash);

-- An actor's session may have at most one live session on behalf.
CREATE UNIQUE INDEX sessions_one_live_on_behalf ON sessions (parent_id)
    WHERE parent_id IS NOT NULL AND ended_at IS NULL;

-- Re-authentication attempts: a row is written (pending) before the password is
-- verified, then kept as a failure or removed when it was right, so parallel attempts
-- cannot outrun the lockout. A pending row older than a minute is a crashed check.
CREATE TABLE reauth_attempts (
    id        INTEGER PRIMARY KEY,
    actor_id  INTEGER NOT NULL REFERENCES members (id),
    failed_at INTEGER NOT NULL,
    pending   BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO reauth_attempts (actor_id, failed_at) SELECT actor_id, failed_at FROM reauth_failures;
DROP TABLE reauth_failures;
CREATE INDEX reauth_attempts_actor ON reauth_attempts (actor_id, failed_at);

-- Sign-in throttle per account, keyed by the SHA-256 of the lower-cased email: an
-- unknown email is throttled exactly like a known one, and what was typed is not kept.
CREATE TABLE sign_in_throttle (
    key_hash        BLOB    PRIMARY KEY,
    -- Failed attempts in the current streak (a right password clears the row).
    failures        INTEGER NOT NULL,
    -- Attempts whose password is being checked now, and until when that count holds
    -- (a check never takes a minute; past it, the count is a crashed check's).
    pending         INTEGER NOT NULL,
    pending_until   INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    -- No password is checked for this account before then.
    locked_until    INTEGER NOT NULL
) WITHOUT ROWID;
