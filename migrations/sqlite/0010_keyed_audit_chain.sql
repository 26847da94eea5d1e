-- The audit chain is keyed (HMAC-SHA256 with a key kept outside the database) from
-- the next record on; the records already there keep their plain SHA-256 links. The key
-- file keeps the same number, and verification trusts that copy, not this one.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
UPDATE audit_head SET keyed_from = last_id + 1;
-- An HMAC of a fixed text under the chain's key, written by the first instance to
-- start: an instance holding another key refuses to start instead of forking the chain.
ALTER TABLE audit_head ADD COLUMN key_check BLOB;
