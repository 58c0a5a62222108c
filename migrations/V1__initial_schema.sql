-- The whole schema of audiostudio, version 1.
-- Conventions: STRICT tables; ids are TEXT (UUIDv7, time-ordered) unless a row is
-- append-only, where an INTEGER rowid gives the order; timestamps are INTEGER unix
-- milliseconds, UTC; money is INTEGER cents and tokens are INTEGER counts.

CREATE TABLE users (
    id                          TEXT PRIMARY KEY,
    email                       TEXT NOT NULL COLLATE NOCASE UNIQUE,
    password_hash               TEXT NOT NULL,
    role                        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status                      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    email_verified_at           INTEGER,
    token_balance               INTEGER NOT NULL DEFAULT 0 CHECK (token_balance >= 0),
    stripe_customer_id          TEXT UNIQUE,
    failed_login_count          INTEGER NOT NULL DEFAULT 0 CHECK (failed_login_count >= 0),
    failed_login_window_start   INTEGER,
    locked_until                INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
) STRICT;

CREATE TABLE user_profiles (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    display_name  TEXT,
    bio           TEXT,
    avatar_url    TEXT,
    preferences   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(preferences) AND json_type(preferences) = 'object'),
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE subscription_plans (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    description        TEXT,
    price_cents        INTEGER NOT NULL CHECK (price_cents >= 0),
    currency           TEXT NOT NULL DEFAULT 'usd',
    billing_interval   TEXT NOT NULL DEFAULT 'month' CHECK (billing_interval IN ('month', 'year')),
    monthly_tokens     INTEGER NOT NULL CHECK (monthly_tokens >= 0),
    features           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(features)),
    stripe_product_id  TEXT UNIQUE,
    stripe_price_id    TEXT UNIQUE,
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    sort_order         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE user_subscriptions (
    id                      TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    plan_id                 TEXT NOT NULL REFERENCES subscription_plans(id),
    stripe_subscription_id  TEXT UNIQUE,
    stripe_customer_id      TEXT,
    status                  TEXT NOT NULL,
    current_period_start    INTEGER,
    current_period_end      INTEGER,
    cancel_at_period_end    INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    canceled_at             INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX user_subscriptions_by_user ON user_subscriptions(user_id, created_at);

-- Append-only: every change of users.token_balance is one row here, written in the same
-- transaction, carrying the balance after it.
CREATE TABLE token_transactions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT NOT NULL REFERENCES users(id),
    kind             TEXT NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount <> 0),
    balance_after    INTEGER NOT NULL CHECK (balance_after >= 0),
    source           TEXT,
    reference        TEXT,
    description      TEXT,
    idempotency_key  TEXT,
    metadata         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at       INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
) STRICT;
CREATE INDEX token_transactions_by_user ON token_transactions(user_id, id);

CREATE TABLE token_packs (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    description        TEXT,
    tokens             INTEGER NOT NULL CHECK (tokens > 0),
    price_cents        INTEGER NOT NULL CHECK (price_cents >= 0),
    currency           TEXT NOT NULL DEFAULT 'usd',
    stripe_product_id  TEXT UNIQUE,
    stripe_price_id    TEXT UNIQUE,
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    sort_order         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE user_token_packs (
    id                          TEXT PRIMARY KEY,
    user_id                     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pack_id                     TEXT NOT NULL REFERENCES token_packs(id),
    tokens                      INTEGER NOT NULL CHECK (tokens > 0),
    amount_cents                INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency                    TEXT NOT NULL,
    status                      TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'refunded', 'failed')),
    stripe_checkout_session_id  TEXT UNIQUE,
    stripe_payment_intent_id    TEXT UNIQUE,
    created_at                  INTEGER NOT NULL,
    completed_at                INTEGER
) STRICT;
CREATE INDEX user_token_packs_by_user ON user_token_packs(user_id, created_at);

CREATE TABLE social_engagements (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform       TEXT NOT NULL,
    action         TEXT NOT NULL,
    url            TEXT,
    reward_tokens  INTEGER NOT NULL CHECK (reward_tokens >= 0),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at     INTEGER NOT NULL,
    reviewed_at    INTEGER,
    UNIQUE (user_id, platform, action)
) STRICT;

CREATE TABLE usage_analytics (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    tokens_used  INTEGER NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
    metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_analytics_by_user ON usage_analytics(user_id, created_at);

-- Hash-chained: hash = SHA-256(prev_hash and this row's fields); see src/audit.
-- No foreign keys, so the trail outlives what it talks about.
CREATE TABLE audit_logs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at    INTEGER NOT NULL,
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    ip             TEXT,
    user_agent     TEXT,
    details        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL UNIQUE
) STRICT;
CREATE INDEX audit_logs_by_actor ON audit_logs(actor_user_id, id);

CREATE TABLE webhook_events (
    id               TEXT PRIMARY KEY,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'processed', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_error       TEXT,
    received_at      INTEGER NOT NULL,
    processed_at     INTEGER
) STRICT;
CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);

-- A session is one login on one device; its refresh tokens rotate, the session stays.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    ip              TEXT,
    user_agent      TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id, created_at);

-- Every refresh token ever issued, stored as SHA-256 only, so reuse of a rotated one is seen.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at   INTEGER NOT NULL,
    rotated_at  INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

-- Email verification and password reset tokens: SHA-256 only, single use, short expiry.
CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX one_time_tokens_by_user ON one_time_tokens(user_id, purpose);

CREATE TABLE email_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    to_address       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
) STRICT;
CREATE INDEX email_outbox_due ON email_outbox(status, next_attempt_at);

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
