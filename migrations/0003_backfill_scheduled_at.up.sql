-- Queued items written before scheduled_at was required would never be picked up by the
-- posting loop (it selects scheduled_at <= now). Give recent ones their creation time, so they
-- post at the next tick; older ones (> 7 days) are stale and are skipped rather than posted late.
-- Re-runnable: each UPDATE touches only rows that still lack scheduled_at.
UPDATE content_metadata
   SET scheduled_at = created_at, updated_at = now()
 WHERE status = 'queued' AND scheduled_at IS NULL AND created_at >= now() - interval '7 days';
UPDATE content_metadata
   SET status = 'skipped', last_error = 'stale: queued without scheduled_at for over 7 days', updated_at = now()
 WHERE status = 'queued' AND scheduled_at IS NULL;
