-- A predictor version is served only if it beats the predict-the-mean baseline and the active version
-- (xbotlib.core.predictors.serving_verdict); a version that does not is kept, inactive, with the reason.
-- States: active (is_active), rejected (rejected_reason is set, never active), retired (neither).
-- Re-runnable: the column and constraint are added only if missing; the backfill touches only
-- active versions that already lose to their own baseline (the served-but-worse models of issue #17).
ALTER TABLE predictors ADD COLUMN IF NOT EXISTS rejected_reason text;
UPDATE predictors
   SET is_active = false,
       rejected_reason = format('cv %s does not beat the predict-the-mean baseline %s (rejected by migration 0006)',
                                round(cv_score::numeric, 4), round(baseline_score::numeric, 4))
 WHERE is_active AND rejected_reason IS NULL
   AND cv_score IS NOT NULL AND baseline_score IS NOT NULL AND cv_score <= baseline_score;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'predictors_rejected_not_active') THEN
        ALTER TABLE predictors ADD CONSTRAINT predictors_rejected_not_active
            CHECK (NOT (is_active AND rejected_reason IS NOT NULL));
    END IF;
END $$;
