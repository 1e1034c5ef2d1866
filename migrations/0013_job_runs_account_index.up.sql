-- The last run of each job for an account (store.runs.last_job_runs, on every /api/metrics and /metrics
-- request): with only idx_job_runs_job (job, started_at) it walked that job's runs of every account backwards
-- until one was the account's, so an account whose job had stopped ran through every other account's runs
-- since (a scan that grows with history and with the number of accounts). By (account_id, job, started_at)
-- it is one probe per job for the account and one for the runs of no account (account_id IS NULL).
CREATE INDEX IF NOT EXISTS idx_job_runs_account_job_started ON job_runs (account_id, job, started_at);
