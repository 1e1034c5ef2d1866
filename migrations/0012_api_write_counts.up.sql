-- What the admin API caches is keyed by how often the account's figures were written (issue #19, second pass).
-- Re-runnable.
--
-- One row per (account, table) for the history tables the cached figures are read from: outcomes,
-- posted_decisions and follower_snapshots. A statement trigger bumps `writes` once per statement that inserted,
-- updated or deleted any row of the account (COPY included; a statement that changed nothing bumps nothing).
-- Bumps of one row wait for each other's commits, so a reader whose snapshot shows the row's newest version sees
-- every write it counts and none it does not: equal (writes, xmin), equal data. The row's xmin is the
-- transaction of the last bump, which no other database, or this one rebuilt, can repeat.
-- Writers of one account and table (the collector of that account, say) queue on one row until they commit;
-- the job queue already runs one job of a kind per account at a time.
CREATE TABLE IF NOT EXISTS account_write_counts (
    account_id  text NOT NULL,
    source      text NOT NULL,
    writes      bigint NOT NULL,
    PRIMARY KEY (account_id, source)
);

CREATE OR REPLACE FUNCTION account_write_counts_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- accounts in a fixed order, so two statements that touch the same accounts lock their rows in one order
    IF TG_OP = 'INSERT' THEN
        INSERT INTO account_write_counts AS c (account_id, source, writes)
        SELECT DISTINCT account_id, TG_TABLE_NAME, 1 FROM new_rows ORDER BY 1
        ON CONFLICT (account_id, source) DO UPDATE SET writes = c.writes + 1;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO account_write_counts AS c (account_id, source, writes)
        SELECT account_id, TG_TABLE_NAME, 1 FROM (SELECT account_id FROM new_rows UNION SELECT account_id FROM old_rows) a
         ORDER BY 1
        ON CONFLICT (account_id, source) DO UPDATE SET writes = c.writes + 1;
    ELSE
        INSERT INTO account_write_counts AS c (account_id, source, writes)
        SELECT DISTINCT account_id, TG_TABLE_NAME, 1 FROM old_rows ORDER BY 1
        ON CONFLICT (account_id, source) DO UPDATE SET writes = c.writes + 1;
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['outcomes', 'posted_decisions', 'follower_snapshots'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_insert ON %I', t);
        EXECUTE format('CREATE TRIGGER account_write_counts_insert AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION account_write_counts_bump()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_update ON %I', t);
        EXECUTE format('CREATE TRIGGER account_write_counts_update AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows '
                       'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION account_write_counts_bump()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS account_write_counts_delete ON %I', t);
        EXECUTE format('CREATE TRIGGER account_write_counts_delete AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION account_write_counts_bump()', t);
    END LOOP;
END $$;
