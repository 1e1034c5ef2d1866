-- The follower count before each post (store.outcomes.post_outcomes, at every plan tick: one lookup per final
-- outcome of the last 90 days) asks for the newest snapshot of (account, simulated) at or before a time. With
-- only idx_snapshots_account_time (account_id, taken_at) the planner, whose statistics of a table growing by one
-- row per collect tick lag behind, fetched every earlier snapshot of the account and sorted them: 24 ms a call at
-- 60 simulated days, growing with history. By (account_id, simulated, taken_at) the lookup is one backward probe
-- in index order, whatever the statistics say (2-5 ms for the whole read).
CREATE INDEX IF NOT EXISTS idx_snapshots_account_simulated_time ON follower_snapshots (account_id, simulated, taken_at);
