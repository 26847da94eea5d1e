-- Member groups (Virto's companies, Kuroco's member groups) and the proxy login
-- permission: the members allowed to log in on a member's behalf.

CREATE TABLE groups (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    -- The name lower-cased: unique, so two groups never differ only by case.
    name_key     TEXT    NOT NULL,
    -- Kept in step with group_members in the same transaction (counting a large
    -- group on every page would not be cheap).
    member_count INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_name_key ON groups (name_key);

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members (id),
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members (member_id, group_id);

-- member_id: whose account; actor_id: who may log in on their behalf.
CREATE TABLE proxy_permissions (
    member_id  INTEGER NOT NULL REFERENCES members (id),
    actor_id   INTEGER NOT NULL REFERENCES members (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, actor_id),
    CHECK (member_id <> actor_id)
) WITHOUT ROWID;
CREATE INDEX proxy_permissions_actor ON proxy_permissions (actor_id, member_id);
