-- The duplicate gate rejects exact repeats of anything the account ever queued (X refuses duplicate
-- content with a 403); this index makes that check one probe per candidate.
CREATE INDEX IF NOT EXISTS idx_cm_content_hash ON content_metadata (account_id, content_hash);
