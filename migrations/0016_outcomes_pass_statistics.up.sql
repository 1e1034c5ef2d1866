-- Whether final outcomes wait for the bandits (store.outcomes._PENDING, every collect tick) is an EXISTS over the
-- account's pass-2 rows not yet applied, which idx_outcomes_unapplied (0011) holds alone. But a pass-1 outcome is
-- never applied to the bandits (only final rewards are), so half the table has bandit_applied false; the planner,
-- taking collected_pass and bandit_applied as independent, expects a quarter of the account's outcomes to match and
-- finds a sequential scan that stops at the first match cheaper than the index: once the table was analysed, every
-- tick read every outcome of the account (1.2 ms a tick at a year of 8 posts a day, growing with history).
-- Statistics on the pair tell it that a pass-2 row waiting for the bandits is rare. Re-runnable.
CREATE STATISTICS IF NOT EXISTS outcomes_pass_applied (mcv) ON collected_pass, bandit_applied FROM outcomes;
