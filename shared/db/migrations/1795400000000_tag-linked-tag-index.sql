-- Up Migration
-- tag.linked_tag_id references tag(id): without an index every tag delete scans the whole tag
-- table for the foreign-key check, the largest cost of GC on a repository with long history.
CREATE INDEX tag_linked_tag ON tag(linked_tag_id) WHERE linked_tag_id IS NOT NULL;

-- Down Migration
DROP INDEX tag_linked_tag;
