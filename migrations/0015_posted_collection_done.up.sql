-- Which posts the collector is done with (issue #19). Every collect tick asks for the account's posts with a pass
-- due (store.outcomes.posts_with_due_passes): with only idx_posted_account_time it walked every post the account
-- ever published and probed its outcomes, a scan that grows with history (2.6 ms a tick for one account at a year
-- of 8 posts a day, against 0.25 ms at a week; 96 ticks a simulated day per account). A post with both passes
-- stored is never due again (no code deletes an outcome), so it is marked done and the read walks a partial index
-- of the posts not done: the last day's, and any whose reads X refused (a deleted tweet).
-- Re-runnable.
--
-- `collection_done` is kept by a statement trigger on outcomes, so every writer keeps it (the collector's upsert,
-- COPY of a seeded history, a hand-written INSERT): after each statement that inserts outcomes, their posts with
-- pass 1 and pass 2 stored are marked. The read still checks each candidate's passes itself, so a post marked late
-- (or never) is read exactly as before; only a post marked done while a pass is missing would be skipped, which the
-- trigger's own check rules out.
ALTER TABLE posted_decisions ADD COLUMN IF NOT EXISTS collection_done boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION posted_collection_done_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE posted_decisions pd SET collection_done = true
      FROM (SELECT DISTINCT decision_id FROM new_outcomes ORDER BY 1) n
     WHERE pd.decision_id = n.decision_id AND NOT pd.collection_done
       AND EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 1)
       AND EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 2);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS posted_collection_done_mark ON outcomes;
CREATE TRIGGER posted_collection_done_mark AFTER INSERT ON outcomes REFERENCING NEW TABLE AS new_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION posted_collection_done_mark();

-- what was collected before this migration
UPDATE posted_decisions pd SET collection_done = true
 WHERE NOT pd.collection_done
   AND EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 1)
   AND EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = pd.decision_id AND o.collected_pass = 2);

CREATE INDEX IF NOT EXISTS idx_posted_collection_open ON posted_decisions (account_id, world, posted_at)
    WHERE NOT collection_done;
