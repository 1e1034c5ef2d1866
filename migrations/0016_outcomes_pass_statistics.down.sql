DROP STATISTICS IF EXISTS outcomes_pass_applied;
