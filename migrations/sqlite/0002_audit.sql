-- The audit trail: append-only, one record per event, written in the same
-- transaction as the change it records. Each record's hash covers its content and
-- the previous record's hash (a SHA-256 chain); ids are assigned contiguously by the
-- writer holding the chain head, so a removed record leaves a visible gap.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    -- The real person who acted (NULL for an unknown visitor).
    actor_id    INTEGER,
    -- Whose account was acted on / as.
    subject_id  INTEGER,
    -- The on-behalf session, when the action was taken on behalf of someone.
    session_id  INTEGER,
    action      TEXT    NOT NULL,
    object_type TEXT,
    object_id   TEXT,
    -- JSON; never a password, hash or token.
    details     TEXT    NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_subject ON audit_events (subject_id, id);
CREATE INDEX audit_events_session ON audit_events (session_id, id) WHERE session_id IS NOT NULL;
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_at ON audit_events (at);

-- The head of the chain: one row, locked by every writer while it appends.
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL,
    hash    BLOB    NOT NULL
);
INSERT INTO audit_head (id, last_id, hash) VALUES (1, 0, zeroblob(32));
