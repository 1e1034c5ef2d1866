DROP INDEX IF EXISTS idx_outcomes_unapplied;
