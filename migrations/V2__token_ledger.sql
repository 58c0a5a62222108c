-- The token economy: lots, holds, idempotency keys, social tasks.
-- Invariants (checked by `audiostudio check`), per user:
--   users.token_balance == SUM(token_transactions.amount)
--                       == SUM(token_lots.remaining)
--   users.held_tokens   == SUM(token_holds.amount) over open holds
--   users.lifetime_earned / lifetime_spent == the ledger's grants / spends (below)

ALTER TABLE users ADD COLUMN held_tokens INTEGER NOT NULL DEFAULT 0 CHECK (held_tokens >= 0);
-- Running totals, so a balance read costs the same however long the history:
--   lifetime_earned == SUM(amount) of grant rows
--   lifetime_spent  == -SUM(amount) of spend rows + SUM(captured) of captured holds
ALTER TABLE users ADD COLUMN lifetime_earned INTEGER NOT NULL DEFAULT 0 CHECK (lifetime_earned >= 0);
ALTER TABLE users ADD COLUMN lifetime_spent INTEGER NOT NULL DEFAULT 0 CHECK (lifetime_spent >= 0);

-- Every token that enters arrives as a lot; one source reference mints at most one lot.
CREATE TABLE token_lots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL REFERENCES users(id),
    source      TEXT NOT NULL CHECK (source IN ('subscription', 'purchase', 'reward', 'admin', 'refund')),
    source_ref  TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    remaining   INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (source, source_ref)
) STRICT;
CREATE INDEX token_lots_spendable ON token_lots(user_id, expires_at) WHERE remaining > 0;
CREATE INDEX token_lots_expiring ON token_lots(expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- What a ledger row is about, beyond its amount.
ALTER TABLE token_transactions ADD COLUMN feature TEXT;
ALTER TABLE token_transactions ADD COLUMN hold_id TEXT;
-- The lots a row drew from or returned to: JSON [{"lot": id, "amount": n}].
ALTER TABLE token_transactions ADD COLUMN lots TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(lots));
CREATE INDEX token_transactions_by_user_kind ON token_transactions(user_id, kind, id);

-- Reserved tokens: drawn from lots at creation, then captured (partly) or released.
CREATE TABLE token_holds (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    captured    INTEGER CHECK (captured >= 0 AND captured <= amount),
    feature     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'captured', 'released', 'expired')),
    lots        TEXT NOT NULL CHECK (json_valid(lots)),
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    settled_at  INTEGER
) STRICT;
CREATE INDEX token_holds_by_user ON token_holds(user_id, status, created_at);
CREATE INDEX token_holds_due ON token_holds(expires_at) WHERE status = 'open';

-- The first response to each (user, Idempotency-Key), replayed on retries; kept for good.
CREATE TABLE idempotency_keys (
    user_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT;

CREATE TABLE social_tasks (
    id                   TEXT PRIMARY KEY,
    platform             TEXT NOT NULL,
    action               TEXT NOT NULL,
    title                TEXT NOT NULL,
    description          TEXT,
    reward_tokens        INTEGER NOT NULL CHECK (reward_tokens > 0),
    auto_approve         INTEGER NOT NULL DEFAULT 0 CHECK (auto_approve IN (0, 1)),
    reward_expires_days  INTEGER CHECK (reward_expires_days > 0),
    active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    sort_order           INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    UNIQUE (platform, action)
) STRICT;

ALTER TABLE social_engagements ADD COLUMN task_id TEXT REFERENCES social_tasks(id);
ALTER TABLE social_engagements ADD COLUMN handle TEXT;
ALTER TABLE social_engagements ADD COLUMN reviewed_by TEXT;
CREATE UNIQUE INDEX social_engagements_one_per_task ON social_engagements(task_id, user_id);
CREATE UNIQUE INDEX social_engagements_one_handle ON social_engagements(task_id, handle COLLATE NOCASE) WHERE handle IS NOT NULL;
CREATE INDEX social_engagements_by_status ON social_engagements(status, created_at);

ALTER TABLE usage_analytics ADD COLUMN feature TEXT;
CREATE INDEX usage_analytics_by_time ON usage_analytics(created_at);
