-- Core tables of xbot. Every statement is safe to re-run (IF NOT EXISTS / guarded).
-- Every table that holds account data carries account_id.

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
