-- The database allowed any allocation in (0, 1) while the code refuses anything outside [0.01, 0.99]
-- (xbotlib.core.experiments.check_allocation: a propensity below 0.01 gives inverse-propensity weights
-- over 100). The constraint now says what the code says, so a row written by hand cannot hold what the
-- API would refuse. A row already outside the bounds (only a hand-written one can be) stops the
-- migration with its experiment named. Re-runnable: the constraint is replaced only while it is the old one.
DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('%s/%s=%s', account_id, experiment_id, allocation), ', ') INTO bad
      FROM experiments WHERE allocation < 0.01 OR allocation > 0.99;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'experiments with an allocation outside [0.01, 0.99]: %; set each within the bounds '
                        '(PATCH /api/experiments/<id> {"allocation": 0.5}) and run `xbot migrate up` again', bad;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'experiments_allocation_check'
                      AND pg_get_constraintdef(oid) LIKE '%0.01%') THEN
        ALTER TABLE experiments DROP CONSTRAINT IF EXISTS experiments_allocation_check;
        ALTER TABLE experiments ADD CONSTRAINT experiments_allocation_check
            CHECK (allocation >= 0.01 AND allocation <= 0.99);
    END IF;
END $$;
