-- X OAuth 2.0 tokens per account (issue #16), written by `xbot auth login` and by every refresh.
-- The tokens themselves are Fernet ciphertexts (key: XBOT_SECRET_KEY); nothing here is readable
-- without it. One row per account: the row is also the per-account refresh lock (SELECT … FOR UPDATE),
-- so processes refreshing at once take turns and the later ones pick up the pair the first one stored.
CREATE TABLE IF NOT EXISTS x_tokens (
    account_id         text PRIMARY KEY,
    x_user_id          text,
    username           text,
    client_id          text,
    scopes             text NOT NULL DEFAULT '',
    access_token_enc   bytea NOT NULL,
    refresh_token_enc  bytea,
    expires_at         timestamptz,
    source             text NOT NULL DEFAULT 'login',
    obtained_at        timestamptz NOT NULL,
    refreshed_at       timestamptz,
    refresh_count      integer NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT x_tokens_source_check CHECK (source IN ('login', 'env'))
);
