DROP INDEX IF EXISTS idx_posted_collection_open;
DROP TRIGGER IF EXISTS posted_collection_done_mark ON outcomes;
DROP FUNCTION IF EXISTS posted_collection_done_mark();
ALTER TABLE posted_decisions DROP COLUMN IF EXISTS collection_done;
