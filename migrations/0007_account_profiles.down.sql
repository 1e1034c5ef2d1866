-- Back to accounts without profiles: the stored profiles are dropped (the files they came from stay
-- in accounts/). Re-runnable.
DROP INDEX IF EXISTS idx_accounts_profiled;
ALTER TABLE accounts DROP COLUMN IF EXISTS updated_at;
ALTER TABLE accounts DROP COLUMN IF EXISTS language;
ALTER TABLE accounts DROP COLUMN IF EXISTS display_name;
ALTER TABLE accounts DROP COLUMN IF EXISTS profile_sha256;
ALTER TABLE accounts DROP COLUMN IF EXISTS profile_source;
ALTER TABLE accounts DROP COLUMN IF EXISTS profile;
