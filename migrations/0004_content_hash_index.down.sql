DROP INDEX IF EXISTS idx_cm_content_hash;
