-- Failed re-authentications for a session on behalf: five within 15 minutes lock
-- login on behalf for that actor for 15 minutes. (Sessions on behalf themselves are
-- rows of `sessions` with actor_id, parent_id and reason set.)
CREATE TABLE reauth_failures (
    actor_id  INTEGER NOT NULL REFERENCES members (id),
    failed_at INTEGER NOT NULL
);
CREATE INDEX reauth_failures_actor ON reauth_failures (actor_id, failed_at);
