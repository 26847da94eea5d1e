-- Keys for the members list: search by name or email prefix (case-insensitively),
-- sort by name, role or last sign-in. The application writes name_key (the display
-- name lower-cased with Unicode rules); rows older than this migration get SQLite's
-- ASCII lower(), which is exact for every name seeded or created so far.
ALTER TABLE members ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE members SET name_key = lower(display_name);
CREATE INDEX members_name_key ON members (name_key, id);
CREATE INDEX members_role_name ON members (role, name_key, id);
CREATE INDEX members_last_sign_in ON members (last_sign_in_at, id);
