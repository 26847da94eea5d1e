-- Keys and indexes that keep the members list fast at a million members (see
-- app/src/members/service.rs, list): every sort follows an index, every page starts
-- from the previous page's last row (keyset pagination), and a search is the union
-- of streams that each read an index in the order of the page.

-- role_rank orders by rank (member 0 … super_user 3); sign_in_key is last_sign_in_at
-- with 0 for never (NULLs have no place in a keyset).
ALTER TABLE members ADD COLUMN role_rank BIGINT NOT NULL DEFAULT 0;
UPDATE members SET role_rank = CASE role WHEN 'support' THEN 1 WHEN 'editor' THEN 2 WHEN 'super_user' THEN 3 ELSE 0 END;
ALTER TABLE members ADD COLUMN sign_in_key BIGINT NOT NULL DEFAULT 0;
UPDATE members SET sign_in_key = COALESCE(last_sign_in_at, 0);

DROP INDEX members_role_name;
DROP INDEX members_last_sign_in;
-- The list only shows members not deleted: its indexes hold only those (partial), so
-- a walk reads the index alone.
DROP INDEX members_name_key;
CREATE INDEX members_name_key ON members (name_key, id) WHERE deleted_at IS NULL;
CREATE INDEX members_role_rank ON members (role_rank, id, name_key, email_key) WHERE deleted_at IS NULL;
CREATE INDEX members_sign_in ON members (sign_in_key, id, name_key, email_key) WHERE deleted_at IS NULL;
-- A name prefix in email order, and an email prefix in name order: the first two or
-- three characters pick a bucket whose rows are already in the page's order.
CREATE INDEX members_name2_email ON members (substr(name_key, 1, 2), email_key, name_key) WHERE deleted_at IS NULL;
CREATE INDEX members_name3_email ON members (substr(name_key, 1, 3), email_key, name_key) WHERE deleted_at IS NULL;
CREATE INDEX members_email2_name ON members (substr(email_key, 1, 2), name_key, id, email_key) WHERE deleted_at IS NULL;
CREATE INDEX members_email3_name ON members (substr(email_key, 1, 3), name_key, id, email_key) WHERE deleted_at IS NULL;

-- The later words of each name ("ann lee" -> "lee"; "maria de la cruz" -> "de la cruz",
-- "la cruz", "cruz"), so a search finds a member by any word of their name. The
-- application writes them with the name; these are the rows already here.
CREATE TABLE member_terms (
    term      TEXT COLLATE "C" NOT NULL,
    member_id BIGINT NOT NULL REFERENCES members (id),
    PRIMARY KEY (term, member_id)
);
CREATE INDEX member_terms_member ON member_terms (member_id, term);
WITH RECURSIVE words (member_id, rest) AS (
    SELECT id, substr(name_key, strpos(name_key, ' ') + 1) FROM members WHERE strpos(name_key, ' ') > 0
    UNION ALL
    SELECT member_id, substr(rest, strpos(rest, ' ') + 1) FROM words WHERE strpos(rest, ' ') > 0
)
INSERT INTO member_terms (term, member_id)
SELECT DISTINCT rest, member_id FROM words WHERE rest <> '';
