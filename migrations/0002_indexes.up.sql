-- Indexes for the hot queries: the posting queue, real outcomes, per-account time series.
CREATE INDEX IF NOT EXISTS idx_cm_sched ON content_metadata (account_id, scheduled_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS idx_cm_account_created ON content_metadata (account_id, created_at);
CREATE INDEX IF NOT EXISTS idx_cm_status ON content_metadata (account_id, status);
CREATE INDEX IF NOT EXISTS idx_outcomes_real ON outcomes (account_id, collected_at) WHERE simulated = false;
CREATE INDEX IF NOT EXISTS idx_outcomes_account_collected ON outcomes (account_id, collected_at);
CREATE INDEX IF NOT EXISTS idx_posted_account_time ON posted_decisions (account_id, posted_at);
CREATE INDEX IF NOT EXISTS idx_snapshots_account_time ON follower_snapshots (account_id, taken_at);
CREATE INDEX IF NOT EXISTS idx_assignments_experiment ON experiment_assignments (account_id, experiment_id);
CREATE INDEX IF NOT EXISTS idx_ledger_day ON llm_ledger (account_id, budget_day);
CREATE INDEX IF NOT EXISTS idx_job_runs_job ON job_runs (job, started_at);
CREATE INDEX IF NOT EXISTS idx_gate_rejections ON gate_rejections (account_id, rejected_at);
