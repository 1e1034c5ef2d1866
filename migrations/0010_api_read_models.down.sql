DROP TRIGGER IF EXISTS experiment_arm_counts_insert ON experiment_assignments;
DROP TRIGGER IF EXISTS experiment_arm_counts_update ON experiment_assignments;
DROP TRIGGER IF EXISTS experiment_arm_counts_delete ON experiment_assignments;
DROP FUNCTION IF EXISTS experiment_arm_counts_keep();
DROP TABLE IF EXISTS experiment_arm_counts;
DROP INDEX IF EXISTS idx_outcomes_fresh;
DROP INDEX IF EXISTS idx_snapshots_account_seq;
