-- A data backfill has nothing to undo: the times it filled in are valid schedules.
SELECT 1;
