-- Step 11: sessions on behalf are view only unless started, or elevated with a fresh
-- password, in act mode. Only sessions on behalf have a mode; a member's own session
-- has none.
ALTER TABLE sessions ADD COLUMN mode TEXT CHECK (mode IN ('view', 'act'));

-- Sessions on behalf that ended before modes existed could act; those still live are
-- narrowed to viewing (their actor elevates with their password to act again).
UPDATE sessions SET mode = 'act' WHERE actor_id IS NOT NULL AND ended_at IS NOT NULL;
UPDATE sessions SET mode = 'view' WHERE actor_id IS NOT NULL AND ended_at IS NULL;
