DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['outcomes', 'posted_decisions', 'follower_snapshots'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_insert ON %I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_update ON %I', t);
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_delete ON %I', t);
    END LOOP;
END $$;
DROP FUNCTION IF EXISTS account_write_counts_bump();
DROP TABLE IF EXISTS account_write_counts;
