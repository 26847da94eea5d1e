-- The audit chain is keyed (HMAC-SHA256 with a key kept outside the database) from
-- this record on; records before it keep their plain SHA-256 links. NULL until the
-- first keyed record is appended.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
