-- Members and their sessions. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    email           TEXT    NOT NULL,
    -- The email lower-cased: unique, so emails are unique case-insensitively.
    email_key       TEXT    NOT NULL,
    display_name    TEXT    NOT NULL,
    -- argon2id PHC string. Never leaves the server.
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('member', 'support', 'editor', 'super_user')),
    -- May use the management screens.
    admin_access    BOOLEAN NOT NULL DEFAULT 0,
    -- "Authorized to log in": false stops sign-in and ends running sessions.
    login_enabled   BOOLEAN NOT NULL DEFAULT 1,
    deleted_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_sign_in_at INTEGER
);
CREATE UNIQUE INDEX members_email_key ON members (email_key);

-- One row per session. The cookie holds a random token; only its SHA-256 is kept.
-- member_id is whose account the session acts as (the subject); actor_id, parent_id
-- and reason are set only for a session on behalf of someone (actor = the real person,
-- parent = the actor's own session).
CREATE TABLE sessions (
    id                  INTEGER PRIMARY KEY,
    token_hash          BLOB UNIQUE,
    member_id           INTEGER NOT NULL REFERENCES members (id),
    actor_id            INTEGER REFERENCES members (id),
    parent_id           INTEGER REFERENCES sessions (id),
    reason              TEXT,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    -- Set once the session is over (revoked, signed out, expired, left, replaced).
    ended_at            INTEGER,
    end_reason          TEXT,
    user_agent          TEXT,
    ip                  TEXT
);
CREATE INDEX sessions_member ON sessions (member_id, ended_at);
CREATE INDEX sessions_actor ON sessions (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX sessions_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL;
