-- Back to "the newest version is active": versions that 0006 itself rejected become active again
-- when nothing else of their account, kind, world and target is; versions the learn job rejected
-- stay inactive (they were never served). Re-runnable.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_name = 'predictors' AND column_name = 'rejected_reason') THEN
        UPDATE predictors p SET is_active = true
         WHERE p.rejected_reason LIKE '%(rejected by migration 0006)'
           AND NOT EXISTS (SELECT 1 FROM predictors q
                            WHERE q.account_id = p.account_id AND q.kind = p.kind AND q.world = p.world
                              AND q.target = p.target AND q.is_active);
    END IF;
END $$;
ALTER TABLE predictors DROP CONSTRAINT IF EXISTS predictors_rejected_not_active;
ALTER TABLE predictors DROP COLUMN IF EXISTS rejected_reason;
