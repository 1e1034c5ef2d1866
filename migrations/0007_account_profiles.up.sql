-- Account profiles (issue #18): each account's niche, stored as the validated profile document
-- (xbotlib.core.profile.AccountProfile.to_dict) with where it came from and its content hash, so
-- `xbot account add` can say what changed and every worker reads one truth. Re-runnable.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS profile jsonb;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS profile_source text;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS profile_sha256 text;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS display_name text;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS language text;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS updated_at timestamptz;
-- the accounts workers serve: those with a stored profile (store.accounts.list_account_ids)
CREATE INDEX IF NOT EXISTS idx_accounts_profiled ON accounts (account_id) WHERE profile IS NOT NULL;
