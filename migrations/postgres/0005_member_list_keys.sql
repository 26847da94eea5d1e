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
-- The search: one row per way a member can be found by a prefix — the name, each
-- later part of the name ("ann lee" -> "lee"; "maria de la cruz" -> "de la cruz",
-- "la cruz", "cruz") and the email — carrying copies of the member's sort keys. A
-- search for "mari" reads the bucket of terms starting "ma" in the order of the page
-- (one index per sort), keeps the terms starting "mari", and stops after a page:
-- its cost depends on the page, not on how many members match or how deep the page
-- is. The application writes a member's terms with the member (and rewrites them
-- when the name, email, role or last sign-in changes); a deleted member has none.
CREATE TABLE member_terms (
    member_id   BIGINT NOT NULL REFERENCES members (id),
    term        TEXT COLLATE "C" NOT NULL,
    name_key    TEXT COLLATE "C" NOT NULL,
    email_key   TEXT COLLATE "C" NOT NULL,
    role_rank   BIGINT NOT NULL,
    sign_in_key BIGINT NOT NULL,
    PRIMARY KEY (member_id, term)
);
CREATE INDEX member_terms_term ON member_terms (term, member_id);
CREATE INDEX member_terms_by_id ON member_terms (substr(term, 1, 2), member_id, term, role_rank);
CREATE INDEX member_terms_by_name ON member_terms (substr(term, 1, 2), name_key, member_id, term, role_rank);
CREATE INDEX member_terms_by_email ON member_terms (substr(term, 1, 2), email_key, member_id, term, role_rank);
CREATE INDEX member_terms_by_role ON member_terms (substr(term, 1, 2), role_rank, member_id, term);
CREATE INDEX member_terms_by_sign_in ON member_terms (substr(term, 1, 2), sign_in_key, member_id, term, role_rank);

WITH RECURSIVE words (member_id, rest) AS (
    SELECT id, name_key FROM members WHERE deleted_at IS NULL
    UNION ALL
    SELECT member_id, substr(rest, strpos(rest, ' ') + 1) FROM words WHERE strpos(rest, ' ') > 0
), terms (member_id, term) AS (
    SELECT member_id, rest FROM words WHERE rest <> ''
    UNION
    SELECT id, email_key FROM members WHERE deleted_at IS NULL
)
INSERT INTO member_terms (member_id, term, name_key, email_key, role_rank, sign_in_key)
SELECT terms.member_id, terms.term, m.name_key, m.email_key, m.role_rank, m.sign_in_key
FROM terms JOIN members m ON m.id = terms.member_id;
