-- Undo 0008: the job queue's tables, functions and types go (queued jobs are lost: stop the workers
-- first), and job_runs forgets missed runs. Re-runnable.
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $do$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE p.proname LIKE 'procrastinate\_%' AND n.nspname = current_schema() LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', f);
    END LOOP;
END
$do$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, procrastinate_job_status CASCADE;

DROP INDEX IF EXISTS idx_job_runs_account_job_scheduled;
DELETE FROM job_runs WHERE status = 'missed';
ALTER TABLE job_runs DROP CONSTRAINT IF EXISTS job_runs_status_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_status_check
    CHECK (status IN ('running', 'ok', 'skipped', 'failed'));
ALTER TABLE job_runs DROP COLUMN IF EXISTS scheduled_for;
