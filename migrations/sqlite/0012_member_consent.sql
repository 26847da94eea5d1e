-- Step 12: the member in the loop. A member may ask to be asked first; then a role
-- grant alone no longer lets anyone in, and an approved access request or a member
-- grant is needed. Notices tell the member (and, with SMTP configured, mail them).

-- 'allowed' keeps the rule of Steps 1–11; 'ask' needs a member grant (or an explicit
-- proxy login permission). `--consent required` makes every member 'ask'.
ALTER TABLE members ADD COLUMN role_grants TEXT NOT NULL DEFAULT 'allowed'
    CHECK (role_grants IN ('allowed', 'ask'));

-- Someone the rule would otherwise allow asks the member for access.
CREATE TABLE access_requests (
    id           INTEGER PRIMARY KEY,
    member_id    INTEGER NOT NULL REFERENCES members (id),
    requester_id INTEGER NOT NULL REFERENCES members (id),
    reason       TEXT   NOT NULL,
    mode         TEXT   NOT NULL CHECK (mode IN ('view', 'act')),
    duration     TEXT   NOT NULL CHECK (duration IN ('1h', '1d', '1w')),
    status       TEXT   NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at   INTEGER NOT NULL,
    -- Unanswered, it expires a day after it was made.
    expires_at   INTEGER NOT NULL,
    answered_at  INTEGER,
    grant_id     INTEGER,
    CHECK (member_id <> requester_id)
);
-- One pending request per person and member: a second is a conflict, however many
-- arrive at once.
CREATE UNIQUE INDEX access_requests_one_pending ON access_requests (member_id, requester_id)
    WHERE status = 'pending';
CREATE INDEX access_requests_member ON access_requests (member_id, id);
CREATE INDEX access_requests_due ON access_requests (expires_at) WHERE status = 'pending';

-- Access the member gives, for a time: to one person, or (grantee NULL) to any
-- support engineer the rest of the rule allows.
CREATE TABLE member_grants (
    id              INTEGER PRIMARY KEY,
    member_id       INTEGER NOT NULL REFERENCES members (id),
    grantee_id      INTEGER REFERENCES members (id),
    mode            TEXT   NOT NULL CHECK (mode IN ('view', 'act')),
    duration        TEXT   NOT NULL CHECK (duration IN ('1h', '1d', '1w')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    -- The grant's expiry has been recorded (grant_expired), once.
    expiry_recorded BOOLEAN NOT NULL DEFAULT FALSE,
    request_id      INTEGER REFERENCES access_requests (id),
    CHECK (grantee_id IS NULL OR grantee_id <> member_id)
);
CREATE INDEX member_grants_member ON member_grants (member_id, grantee_id);
CREATE INDEX member_grants_due ON member_grants (expires_at) WHERE revoked_at IS NULL AND NOT expiry_recorded;

-- What the member is told. Mail (when SMTP is configured) is sent from here, behind
-- the request, and retried with back-off.
CREATE TABLE notices (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members (id),
    kind          TEXT   NOT NULL
        CHECK (kind IN ('on_behalf_started', 'on_behalf_ended', 'access_requested', 'grant_used')),
    at            INTEGER NOT NULL,
    actor_id      INTEGER REFERENCES members (id),
    reason        TEXT   NOT NULL DEFAULT '',
    mode          TEXT   CHECK (mode IN ('view', 'act')),
    session_id    INTEGER,
    request_id    INTEGER,
    read_at       INTEGER,
    mail_status   TEXT   CHECK (mail_status IN ('pending', 'sent', 'failed')),
    mail_attempts INTEGER NOT NULL DEFAULT 0,
    mail_next_at  INTEGER
);
CREATE INDEX notices_member ON notices (member_id, id);
CREATE INDEX notices_mail_due ON notices (mail_next_at) WHERE mail_status = 'pending';
