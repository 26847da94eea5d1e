-- One-click login links and the server's own secrets.

-- Keys the server generates on first start and keeps, so that every instance on one
-- database shares them (the one-click link key, unless BEHALF_SECRET is given).
CREATE TABLE server_secrets (
    name       TEXT   PRIMARY KEY,
    value      BLOB  NOT NULL,
    created_at INTEGER NOT NULL
);

-- A link lets one member in as themselves, once. Only a keyed hash (HMAC-SHA256 with
-- the server's secret) of its 256-bit token is kept.
CREATE TABLE one_click_links (
    id            INTEGER PRIMARY KEY,
    token_hash    BLOB  NOT NULL UNIQUE,
    member_id     INTEGER NOT NULL REFERENCES members (id),
    created_by    INTEGER NOT NULL REFERENCES members (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    -- Set once, by the one statement that consumes the link…
    used_at       INTEGER,
    used_session  INTEGER REFERENCES sessions (id),
    -- …or when it is revoked (by a member, or by a change to the member).
    revoked_at    INTEGER,
    revoked_by    INTEGER REFERENCES members (id),
    revoke_reason TEXT,
    CHECK (used_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX one_click_links_outstanding ON one_click_links (member_id, expires_at)
    WHERE used_at IS NULL AND revoked_at IS NULL;
CREATE INDEX one_click_links_creator ON one_click_links (created_by)
    WHERE used_at IS NULL AND revoked_at IS NULL;
