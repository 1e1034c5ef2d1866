-- Reads of the admin API that grew with the account's history (issue #19), made bounded. Re-runnable.
--
-- 1. Fresh outcomes (the learn rule's count in /api/learning/status): pass-2 outcomes of an account and world
--    after the active model's last outcome_id, read as one index range of the new ones only.
CREATE INDEX IF NOT EXISTS idx_outcomes_fresh ON outcomes (account_id, simulated, outcome_id) WHERE collected_pass = 2;

-- 2. The newest follower snapshot row of an account and world: part of the growth model's fingerprint
--    (xbotlib.store.read_models), so any snapshot written, at whatever taken_at, changes it.
CREATE INDEX IF NOT EXISTS idx_snapshots_account_seq ON follower_snapshots (account_id, simulated, snapshot_id);

-- 3. Assignments per experiment and arm (/api/experiments counted every assignment of the account per
--    request). One row per (account, experiment, arm), kept by a trigger in the same transaction as every
--    insert, update or delete of assignments, so it is exact at every commit whoever writes (the plan job, COPY,
--    a hand-written fix). Backfilled from the assignments already stored.
CREATE TABLE IF NOT EXISTS experiment_arm_counts (
    account_id        text NOT NULL,
    experiment_id     text NOT NULL,
    arm               text NOT NULL,
    n                 bigint NOT NULL,
    last_assigned_at  timestamptz,
    PRIMARY KEY (account_id, experiment_id, arm)
);

CREATE OR REPLACE FUNCTION experiment_arm_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- the newest remaining assignment: one probe of idx_assignments_experiment per arm touched
        UPDATE experiment_arm_counts c SET n = c.n - d.n,
               last_assigned_at = (SELECT max(a.assigned_at) FROM experiment_assignments a
                                    WHERE a.account_id = c.account_id AND a.experiment_id = c.experiment_id
                                      AND a.arm = c.arm)
          FROM (SELECT account_id, experiment_id, arm, count(*) AS n FROM old_rows
                 GROUP BY account_id, experiment_id, arm) d
         WHERE c.account_id = d.account_id AND c.experiment_id = d.experiment_id AND c.arm = d.arm;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO experiment_arm_counts AS c (account_id, experiment_id, arm, n, last_assigned_at)
        SELECT account_id, experiment_id, arm, count(*), max(assigned_at) FROM new_rows
         GROUP BY account_id, experiment_id, arm
        ON CONFLICT (account_id, experiment_id, arm) DO UPDATE
           SET n = c.n + excluded.n, last_assigned_at = greatest(c.last_assigned_at, excluded.last_assigned_at);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS experiment_arm_counts_insert ON experiment_assignments;
CREATE TRIGGER experiment_arm_counts_insert AFTER INSERT ON experiment_assignments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION experiment_arm_counts_keep();
DROP TRIGGER IF EXISTS experiment_arm_counts_update ON experiment_assignments;
CREATE TRIGGER experiment_arm_counts_update AFTER UPDATE ON experiment_assignments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION experiment_arm_counts_keep();
DROP TRIGGER IF EXISTS experiment_arm_counts_delete ON experiment_assignments;
CREATE TRIGGER experiment_arm_counts_delete AFTER DELETE ON experiment_assignments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION experiment_arm_counts_keep();

-- rebuilt from the assignments themselves, so a re-run also repairs it
DELETE FROM experiment_arm_counts;
INSERT INTO experiment_arm_counts (account_id, experiment_id, arm, n, last_assigned_at)
SELECT account_id, experiment_id, arm, count(*), max(assigned_at) FROM experiment_assignments
 GROUP BY account_id, experiment_id, arm;
