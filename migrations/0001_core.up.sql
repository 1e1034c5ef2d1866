-- Core tables of xbot. Every statement is safe to re-run (IF NOT EXISTS / guarded).
-- Every table that holds account data carries account_id.

-- ---------------------------------------------------------------------------------------------------
-- Coming from xBOT: its database already has content_metadata, posted_decisions and outcomes, with
-- fewer columns. CREATE TABLE IF NOT EXISTS below would skip them and leave them without xbot's
-- columns, so each of those tables that exists before this file runs is first brought to the shape
-- the CREATE TABLE gives a fresh install: missing columns added; types, defaults, NOT NULL and named
-- constraints made the same; every row kept. On a fresh database none of the three exists and this
-- block does nothing. Columns xBOT had and xbot does not are left as they are.
-- Rows that xbot's rules refuse (an unknown status, a post without its decision, more than two
-- readings of one post) stop the migration with a message that names them and the fix; nothing is
-- changed then (the file runs in one transaction).
-- Backfills of NOT NULL columns, and why:
--   account_id         the setting xbot.legacy_account (XBOT_ACCOUNT_ID, set by `xbot migrate up`), else
--                      'default'; posts and outcomes take their decision's
--   content_hash       what xbotlib.store.queue.content_hash computes: sha256 of the lower-cased,
--                      whitespace-collapsed text (the duplicate gate then knows xBOT's posts)
--   generation_source  'llm' (xBOT wrote its posts with OpenAI)
--   world              'live' (xBOT posted to the real X)
--   simulated          true: xBOT stored made-up numbers as outcomes (DESIGN.md, lessons) and nothing tells
--                      those rows from scraped ones, so live learning does not train on them
--                      (README_OPERATIONS.md, "Coming from xBOT", says how to vouch for them)
--   collected_pass     a post's latest reading is pass 2 (final), an earlier one pass 1
--   er, fpki, rates,   from the stored counts by the contract definitions (DESIGN.md); reward_composite
--   sample_weight      with the default weights and no novelty
-- The helpers live in pg_temp (this session only) and are dropped at the end of the block.
CREATE FUNCTION pg_temp.xbot_adopt_column(tbl text, col text, typ text, not_null boolean, dflt text,
                                          backfill text DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    current_type text;
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod) INTO current_type
      FROM pg_attribute a
     WHERE a.attrelid = format('public.%I', tbl)::regclass AND a.attname = col AND a.attnum > 0
       AND NOT a.attisdropped;
    IF current_type IS NULL THEN
        EXECUTE format('ALTER TABLE public.%I ADD COLUMN %I %s', tbl, col, typ);
    ELSIF current_type <> typ THEN
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I DROP DEFAULT', tbl, col);
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I TYPE %s USING %I::%s', tbl, col, typ, col, typ);
    END IF;
    IF backfill IS NOT NULL THEN
        EXECUTE format('UPDATE public.%I SET %I = %s WHERE %I IS NULL', tbl, col, backfill, col);
    END IF;
    IF dflt IS NULL THEN
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I DROP DEFAULT', tbl, col);
    ELSE
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I SET DEFAULT %s', tbl, col, dflt);
        EXECUTE format('UPDATE public.%I SET %I = DEFAULT WHERE %I IS NULL', tbl, col, col);
    END IF;
    IF not_null THEN
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I SET NOT NULL', tbl, col);
    ELSE
        EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I DROP NOT NULL', tbl, col);
    END IF;
END
$fn$;

CREATE FUNCTION pg_temp.xbot_adopt_constraint(tbl text, name text, def text) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    kind "char";
    existing text;
BEGIN
    SELECT contype, pg_get_constraintdef(oid) INTO kind, existing
      FROM pg_constraint WHERE conrelid = format('public.%I', tbl)::regclass AND conname = name;
    IF existing IS NULL THEN
        IF def LIKE 'PRIMARY KEY%' AND EXISTS (SELECT 1 FROM pg_constraint
                                                WHERE conrelid = format('public.%I', tbl)::regclass
                                                  AND contype = 'p') THEN
            RAISE EXCEPTION 'legacy table % has a primary key other than xbot''s % (%); drop it '
                            '(ALTER TABLE % DROP CONSTRAINT <name>) and run `xbot migrate up` again',
                            tbl, name, def, tbl;
        END IF;
        BEGIN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', tbl, name, def);
        EXCEPTION WHEN integrity_constraint_violation OR check_violation OR unique_violation
                       OR foreign_key_violation OR not_null_violation THEN
            RAISE EXCEPTION 'legacy table % has rows that break xbot''s constraint % (%): %; correct or remove '
                            'those rows and run `xbot migrate up` again', tbl, name, def, SQLERRM;
        END;
    ELSIF kind = 'p' AND existing <> def THEN
        RAISE EXCEPTION 'legacy table % has primary key % on other columns (% where xbot has %); drop it and run '
                        '`xbot migrate up` again', tbl, name, existing, def;
    END IF;
END
$fn$;

DO $adopt$
DECLARE
    acct text := quote_literal(coalesce(nullif(current_setting('xbot.legacy_account', true), ''), 'default'));
    bad text;
BEGIN
    IF to_regclass('public.content_metadata') IS NULL
       AND (to_regclass('public.posted_decisions') IS NOT NULL OR to_regclass('public.outcomes') IS NOT NULL) THEN
        RAISE EXCEPTION 'legacy posted_decisions/outcomes without content_metadata: xbot needs the decisions '
                        'they belong to; restore content_metadata and run `xbot migrate up` again';
    END IF;

    IF to_regclass('public.content_metadata') IS NOT NULL THEN
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'decision_id', 'uuid', true, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'account_id', 'text', true, NULL, acct);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'decision_type', 'text', true, $$'post'$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'status', 'text', true, $$'draft'$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'content', 'text', true, NULL, $$''$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'content_hash', 'text', true, NULL,
            $$encode(sha256(convert_to(regexp_replace(btrim(lower(content), E' \t\n\r\f\v'), '\s+', ' ', 'g'), 'UTF8')), 'hex')$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'generation_source', 'text', true, NULL, $$'llm'$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'topic', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'hook_pattern', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'novelty', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'readability', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'sentiment', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'dup_penalty', 'double precision', true, '0');
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'features', 'jsonb', true, $$'{}'::jsonb$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'embedding', 'real[]', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'policy', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'bandit_arm', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'bandit_propensity', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'timing_arm', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'timing_propensity', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'experiment_id', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'experiment_arms', 'jsonb', true, $$'{}'::jsonb$$);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'predicted_reward', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'predictor_version', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'scheduled_at', 'timestamp with time zone', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'target_tweet_id', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'attempts', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'last_error', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'next_attempt_at', 'timestamp with time zone', false,
                                          NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'claimed_by', 'text', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'claimed_at', 'timestamp with time zone', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'created_at', 'timestamp with time zone', true, NULL,
                                          'now()');
        PERFORM pg_temp.xbot_adopt_column('content_metadata', 'updated_at', 'timestamp with time zone', true, NULL,
                                          'created_at');
        SELECT string_agg(DISTINCT quote_literal(status), ', ') INTO bad FROM content_metadata
         WHERE status NOT IN ('draft', 'queued', 'posting', 'posted', 'failed', 'skipped', 'cancelled');
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'legacy content_metadata.status has values xbot does not know: %; map each to one of '
                            'draft, queued, posting, posted, failed, skipped, cancelled (e.g. UPDATE '
                            'content_metadata SET status = ''posted'' WHERE status = ''published'') and run '
                            '`xbot migrate up` again', bad;
        END IF;
        PERFORM pg_temp.xbot_adopt_constraint('content_metadata', 'content_metadata_pkey', 'PRIMARY KEY (decision_id)');
        PERFORM pg_temp.xbot_adopt_constraint('content_metadata', 'content_metadata_status_check', $$CHECK (status IN
            ('draft', 'queued', 'posting', 'posted', 'failed', 'skipped', 'cancelled'))$$);
        PERFORM pg_temp.xbot_adopt_constraint('content_metadata', 'content_metadata_type_check',
                                              $$CHECK (decision_type IN ('post', 'thread', 'reply'))$$);
        PERFORM pg_temp.xbot_adopt_constraint('content_metadata', 'content_metadata_source_check',
                                              $$CHECK (generation_source IN ('llm', 'template', 'synthetic'))$$);
        PERFORM pg_temp.xbot_adopt_constraint('content_metadata', 'content_metadata_reply_target',
                                              $$CHECK (decision_type <> 'reply' OR target_tweet_id IS NOT NULL)$$);
    END IF;

    IF to_regclass('public.posted_decisions') IS NOT NULL THEN
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'decision_id', 'uuid', true, NULL);
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'account_id', 'text', true, NULL,
            format('coalesce((SELECT c.account_id FROM content_metadata c '
                   'WHERE c.decision_id = posted_decisions.decision_id), %s)', acct));
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'tweet_id', 'text', true, NULL);
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'world', 'text', true, NULL, $$'live'$$);
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'posted_at', 'timestamp with time zone', true, NULL,
            'coalesce((SELECT c.created_at FROM content_metadata c '
            'WHERE c.decision_id = posted_decisions.decision_id), now())');
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'reconciled', 'boolean', true, 'false');
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'profile_visits', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'link_clicks', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('posted_decisions', 'bookmarks', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_constraint('posted_decisions', 'posted_decisions_pkey', 'PRIMARY KEY (decision_id)');
        PERFORM pg_temp.xbot_adopt_constraint('posted_decisions', 'posted_decisions_decision_id_fkey',
                                              'FOREIGN KEY (decision_id) REFERENCES content_metadata(decision_id)');
        PERFORM pg_temp.xbot_adopt_constraint('posted_decisions', 'posted_decisions_tweet_id_key', 'UNIQUE (tweet_id)');
        PERFORM pg_temp.xbot_adopt_constraint('posted_decisions', 'posted_decisions_world_check',
                                              $$CHECK (world IN ('live', 'sandbox'))$$);
    END IF;

    IF to_regclass('public.outcomes') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.outcomes'::regclass
                                                    AND attname = 'outcome_id' AND NOT attisdropped) THEN
            -- what bigserial makes on a fresh install: a sequence owned by the column; old rows get numbers
            CREATE SEQUENCE public.outcomes_outcome_id_seq;
            ALTER TABLE public.outcomes ADD COLUMN outcome_id bigint NOT NULL
                DEFAULT nextval('public.outcomes_outcome_id_seq');
            ALTER SEQUENCE public.outcomes_outcome_id_seq OWNED BY public.outcomes.outcome_id;
        END IF;
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'decision_id', 'uuid', true, NULL);
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'account_id', 'text', true, NULL,
            format('coalesce((SELECT c.account_id FROM content_metadata c '
                   'WHERE c.decision_id = outcomes.decision_id), %s)', acct));
        IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.outcomes'::regclass
                                                    AND attname = 'collected_pass' AND NOT attisdropped) THEN
            SELECT string_agg(decision_id::text, ', ') INTO bad
              FROM (SELECT decision_id FROM public.outcomes GROUP BY decision_id HAVING count(*) > 2) many;
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION 'legacy outcomes has more than two readings of decision(s) %; xbot keeps one per '
                                'pass (T+1h, T+24h): keep the two you trust (e.g. the earliest and the latest) and '
                                'run `xbot migrate up` again', bad;
            END IF;
        END IF;
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'collected_at', 'timestamp with time zone', true, NULL, 'now()');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'collected_pass', 'smallint', true, NULL,
            '(SELECT 3 - count(*) FROM public.outcomes o WHERE o.decision_id = outcomes.decision_id '
            'AND (o.collected_at, o.outcome_id) >= (outcomes.collected_at, outcomes.outcome_id))');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'simulated', 'boolean', true, NULL, 'true');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'impressions', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'likes', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'retweets', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'replies', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'quotes', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'bookmarks', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'profile_visits', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'link_clicks', 'integer', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'follows', 'double precision', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'follows_source', 'text', true, $$'none'$$);
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'er', 'double precision', true, '0',
            '(likes + retweets + replies + quotes + bookmarks)::double precision / greatest(1, impressions)');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'fpki', 'double precision', true, '0',
            '1000.0 * follows / greatest(1, impressions)');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'retweet_rate', 'double precision', true, '0',
            'retweets::double precision / greatest(1, impressions)');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'reply_rate', 'double precision', true, '0',
            'replies::double precision / greatest(1, impressions)');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'novelty', 'double precision', false, NULL);
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'dup_penalty', 'double precision', true, '0');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'reward_composite', 'double precision', true, '0',
            '0.5 * fpki + 0.3 * retweet_rate + 0.15 * reply_rate - 0.1 * dup_penalty');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'sample_weight', 'double precision', true, '1',
            'least(1.0, 1000.0 / greatest(1, impressions))');
        PERFORM pg_temp.xbot_adopt_column('outcomes', 'bandit_applied', 'boolean', true, 'false');
        PERFORM pg_temp.xbot_adopt_constraint('outcomes', 'outcomes_pkey', 'PRIMARY KEY (outcome_id)');
        PERFORM pg_temp.xbot_adopt_constraint('outcomes', 'outcomes_decision_id_fkey',
                                              'FOREIGN KEY (decision_id) REFERENCES content_metadata(decision_id)');
        PERFORM pg_temp.xbot_adopt_constraint('outcomes', 'outcomes_decision_pass_key',
                                              'UNIQUE (decision_id, collected_pass)');
        PERFORM pg_temp.xbot_adopt_constraint('outcomes', 'outcomes_pass_check', 'CHECK (collected_pass IN (1, 2))');
        PERFORM pg_temp.xbot_adopt_constraint('outcomes', 'outcomes_follows_source_check',
            $$CHECK (follows_source IN ('analytics', 'snapshot_attribution', 'none'))$$);
    END IF;
END
$adopt$;

DROP FUNCTION pg_temp.xbot_adopt_column(text, text, text, boolean, text, text);
DROP FUNCTION pg_temp.xbot_adopt_constraint(text, text, text);
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS accounts (
    account_id      text PRIMARY KEY,
    handle          text,
    timezone        text NOT NULL DEFAULT 'UTC',
    x_user_id       text,
    created_at      timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS content_metadata (
    decision_id        uuid PRIMARY KEY,
    account_id         text NOT NULL,
    decision_type      text NOT NULL DEFAULT 'post',
    status             text NOT NULL DEFAULT 'draft',
    content            text NOT NULL,
    content_hash       text NOT NULL,
    generation_source  text NOT NULL,
    topic              text,
    hook_pattern       text,
    novelty            double precision,
    readability        double precision,
    sentiment          double precision,
    dup_penalty        double precision NOT NULL DEFAULT 0,
    features           jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding          real[],
    policy             text,
    bandit_arm         text,
    bandit_propensity  double precision,
    timing_arm         text,
    timing_propensity  double precision,
    experiment_id      text,
    experiment_arms    jsonb NOT NULL DEFAULT '{}'::jsonb,
    predicted_reward   double precision,
    predictor_version  text,
    scheduled_at       timestamptz,
    target_tweet_id    text,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    next_attempt_at    timestamptz,
    claimed_by         text,
    claimed_at         timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT content_metadata_status_check CHECK (status IN
        ('draft', 'queued', 'posting', 'posted', 'failed', 'skipped', 'cancelled')),
    CONSTRAINT content_metadata_type_check CHECK (decision_type IN ('post', 'thread', 'reply')),
    CONSTRAINT content_metadata_source_check CHECK (generation_source IN ('llm', 'template', 'synthetic')),
    CONSTRAINT content_metadata_reply_target CHECK (decision_type <> 'reply' OR target_tweet_id IS NOT NULL)
);

CREATE TABLE IF NOT EXISTS posted_decisions (
    decision_id     uuid PRIMARY KEY REFERENCES content_metadata (decision_id),
    account_id      text NOT NULL,
    tweet_id        text NOT NULL UNIQUE,
    world           text NOT NULL,
    posted_at       timestamptz NOT NULL,
    reconciled      boolean NOT NULL DEFAULT false,
    profile_visits  integer NOT NULL DEFAULT 0,
    link_clicks     integer NOT NULL DEFAULT 0,
    bookmarks       integer NOT NULL DEFAULT 0,
    CONSTRAINT posted_decisions_world_check CHECK (world IN ('live', 'sandbox'))
);

CREATE TABLE IF NOT EXISTS outcomes (
    outcome_id        bigserial PRIMARY KEY,
    decision_id       uuid NOT NULL REFERENCES content_metadata (decision_id),
    account_id        text NOT NULL,
    collected_pass    smallint NOT NULL,
    simulated         boolean NOT NULL,
    impressions       integer NOT NULL DEFAULT 0,
    likes             integer NOT NULL DEFAULT 0,
    retweets          integer NOT NULL DEFAULT 0,
    replies           integer NOT NULL DEFAULT 0,
    quotes            integer NOT NULL DEFAULT 0,
    bookmarks         integer NOT NULL DEFAULT 0,
    profile_visits    integer NOT NULL DEFAULT 0,
    link_clicks       integer NOT NULL DEFAULT 0,
    follows           double precision NOT NULL DEFAULT 0,
    follows_source    text NOT NULL DEFAULT 'none',
    er                double precision NOT NULL DEFAULT 0,
    fpki              double precision NOT NULL DEFAULT 0,
    retweet_rate      double precision NOT NULL DEFAULT 0,
    reply_rate        double precision NOT NULL DEFAULT 0,
    novelty           double precision,
    dup_penalty       double precision NOT NULL DEFAULT 0,
    reward_composite  double precision NOT NULL DEFAULT 0,
    sample_weight     double precision NOT NULL DEFAULT 1,
    bandit_applied    boolean NOT NULL DEFAULT false,
    collected_at      timestamptz NOT NULL,
    CONSTRAINT outcomes_decision_pass_key UNIQUE (decision_id, collected_pass),
    CONSTRAINT outcomes_pass_check CHECK (collected_pass IN (1, 2)),
    CONSTRAINT outcomes_follows_source_check CHECK (follows_source IN ('analytics', 'snapshot_attribution', 'none'))
);

CREATE TABLE IF NOT EXISTS follower_snapshots (
    snapshot_id      bigserial PRIMARY KEY,
    account_id       text NOT NULL,
    taken_at         timestamptz NOT NULL,
    followers_count  integer NOT NULL,
    following_count  integer,
    tweet_count      integer,
    simulated        boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS bandit_arms (
    account_id     text NOT NULL,
    world          text NOT NULL,
    scope          text NOT NULL,
    arm_id         text NOT NULL,
    pulls          integer NOT NULL DEFAULT 0,
    reward_sum     double precision NOT NULL DEFAULT 0,
    reward_sq_sum  double precision NOT NULL DEFAULT 0,
    weight_sum     double precision NOT NULL DEFAULT 0,
    params         jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, world, scope, arm_id),
    CONSTRAINT bandit_arms_scope_check CHECK (scope IN ('content', 'timing')),
    CONSTRAINT bandit_arms_world_check CHECK (world IN ('live', 'sandbox'))
);

CREATE TABLE IF NOT EXISTS predictors (
    predictor_id    bigserial PRIMARY KEY,
    account_id      text NOT NULL,
    kind            text NOT NULL,
    version         integer NOT NULL,
    predictor_key   text NOT NULL,
    algorithm       text NOT NULL,
    world           text NOT NULL,
    target          text NOT NULL DEFAULT 'reward_composite',
    features        jsonb NOT NULL DEFAULT '[]'::jsonb,
    n_samples       integer NOT NULL,
    cv_score        double precision,
    baseline_score  double precision,
    metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
    model           bytea,
    is_active       boolean NOT NULL DEFAULT false,
    trained_through bigint,
    trained_at      timestamptz NOT NULL,
    CONSTRAINT predictors_version_key UNIQUE (account_id, kind, version),
    CONSTRAINT predictors_kind_check CHECK (kind IN ('content', 'timing')),
    CONSTRAINT predictors_world_check CHECK (world IN ('live', 'sandbox'))
);

CREATE TABLE IF NOT EXISTS experiments (
    account_id     text NOT NULL,
    experiment_id  text NOT NULL,
    enabled        boolean NOT NULL DEFAULT false,
    allocation     double precision NOT NULL DEFAULT 0.5,
    applies_to     text NOT NULL,
    description    text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, experiment_id),
    CONSTRAINT experiments_allocation_check CHECK (allocation > 0 AND allocation < 1)
);

CREATE TABLE IF NOT EXISTS experiment_assignments (
    assignment_id  bigserial PRIMARY KEY,
    account_id     text NOT NULL,
    experiment_id  text NOT NULL,
    decision_id    uuid NOT NULL REFERENCES content_metadata (decision_id),
    arm            text NOT NULL,
    propensity     double precision NOT NULL,
    assigned_at    timestamptz NOT NULL,
    CONSTRAINT experiment_assignments_key UNIQUE (decision_id, experiment_id),
    CONSTRAINT experiment_assignments_arm_check CHECK (arm IN ('control', 'treatment')),
    CONSTRAINT experiment_assignments_propensity_check CHECK (propensity > 0 AND propensity < 1)
);

CREATE TABLE IF NOT EXISTS llm_ledger (
    call_id            uuid PRIMARY KEY,
    account_id         text NOT NULL,
    budget_day         date NOT NULL,
    model              text NOT NULL,
    purpose            text NOT NULL DEFAULT '',
    status             text NOT NULL,
    reserved_usd       double precision NOT NULL,
    cost_usd           double precision NOT NULL DEFAULT 0,
    prompt_tokens      integer,
    completion_tokens  integer,
    error              text,
    created_at         timestamptz NOT NULL,
    settled_at         timestamptz,
    CONSTRAINT llm_ledger_status_check CHECK (status IN ('reserved', 'settled', 'refunded', 'quota_exhausted')),
    CONSTRAINT llm_ledger_amounts_check CHECK (reserved_usd >= 0 AND cost_usd >= 0)
);

CREATE TABLE IF NOT EXISTS gate_rejections (
    rejection_id  bigserial PRIMARY KEY,
    account_id    text NOT NULL,
    gate          text NOT NULL,
    reason        text NOT NULL,
    content_hash  text,
    rejected_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS x_rate_limits (
    account_id  text NOT NULL,
    endpoint    text NOT NULL,
    remaining   integer,
    reset_at    timestamptz NOT NULL,
    PRIMARY KEY (account_id, endpoint)
);

CREATE TABLE IF NOT EXISTS job_runs (
    run_id       bigserial PRIMARY KEY,
    account_id   text,
    job          text NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    error        text,
    CONSTRAINT job_runs_status_check CHECK (status IN ('running', 'ok', 'skipped', 'failed'))
);

CREATE TABLE IF NOT EXISTS notebook_runs (
    run_id       bigserial PRIMARY KEY,
    notebook     text NOT NULL,
    parameters   jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    output_path  text,
    html_path    text,
    error        text,
    CONSTRAINT notebook_runs_status_check CHECK (status IN ('running', 'ok', 'failed'))
);

-- Coming from xBOT: every account its decisions name becomes an account, created when its first decision
-- was (the start of its exploration schedule). Nothing to do on a fresh install.
INSERT INTO accounts (account_id, created_at)
SELECT account_id, min(created_at) FROM content_metadata GROUP BY account_id
ON CONFLICT (account_id) DO NOTHING;
