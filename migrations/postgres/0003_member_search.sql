-- Keys for the members list: search by name or email prefix (case-insensitively),
-- sort by name, role or last sign-in. Both keys compare byte-wise (COLLATE "C") so a
-- prefix is a contiguous index range whatever the database's default collation.
ALTER TABLE members ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE members SET name_key = lower(display_name);
ALTER TABLE members ALTER COLUMN email_key TYPE TEXT COLLATE "C";
CREATE INDEX members_name_key ON members (name_key, id);
CREATE INDEX members_role_name ON members (role, name_key, id);
CREATE INDEX members_last_sign_in ON members (last_sign_in_at, id);
