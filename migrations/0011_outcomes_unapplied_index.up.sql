-- Final (pass-2) outcomes not yet folded into the bandit arms. The collector asks at every tick whether
-- any is waiting (store.outcomes._PENDING_SQL), and arms.apply_pass2_rewards reads them: with only
-- idx_outcomes_fresh both walked every pass-2 outcome of the account (a scan that grows with history);
-- this partial index holds just the waiting rows, so the usual answer ("none") costs one index probe.
CREATE INDEX IF NOT EXISTS idx_outcomes_unapplied ON outcomes (account_id, simulated)
    WHERE collected_pass = 2 AND NOT bandit_applied;
