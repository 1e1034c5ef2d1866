-- Back to the (0, 1) bounds of 0001 (every row within [0.01, 0.99] is within them too). Re-runnable.
ALTER TABLE experiments DROP CONSTRAINT IF EXISTS experiments_allocation_check;
ALTER TABLE experiments ADD CONSTRAINT experiments_allocation_check CHECK (allocation > 0 AND allocation < 1);
