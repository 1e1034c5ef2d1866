DROP INDEX IF EXISTS idx_job_runs_account_job_started;
