-- Billing: the Checkout Sessions we started and the story of each user's subscription.
-- Stripe stays the source of truth for money; these tables say who started what, so a
-- session is only ever shown to its owner, and what changed when, for the history API.

-- Every Checkout Session created through the API (Stripe's cs_... id).
CREATE TABLE billing_checkout_sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    mode                TEXT NOT NULL CHECK (mode IN ('subscription', 'payment')),
    plan_id             TEXT REFERENCES subscription_plans(id),
    pack_id             TEXT REFERENCES token_packs(id),
    -- Stripe's session status (open, complete, expired) and payment status, as last seen.
    status              TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'expired')),
    payment_status      TEXT,
    stripe_customer_id  TEXT NOT NULL,
    url                 TEXT,
    expires_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CHECK ((mode = 'subscription' AND plan_id IS NOT NULL AND pack_id IS NULL)
        OR (mode = 'payment' AND pack_id IS NOT NULL AND plan_id IS NULL))
) STRICT;
CREATE INDEX billing_checkout_sessions_by_user ON billing_checkout_sessions(user_id, created_at);

-- Append-only: what happened to a user's subscription, for `GET /api/subscriptions/history`.
-- kind: checkout_started (a session was opened), started, renewed, plan_changed,
-- cancel_scheduled (ends at period end), resumed (a scheduled end undone), canceled (ended),
-- status_changed (e.g. past_due).
CREATE TABLE subscription_changes (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stripe_subscription_id  TEXT,
    kind                    TEXT NOT NULL CHECK (kind IN ('checkout_started', 'started', 'renewed', 'plan_changed', 'cancel_scheduled', 'resumed', 'canceled', 'status_changed')),
    from_plan_id            TEXT,
    to_plan_id              TEXT,
    status                  TEXT,
    details                 TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details) AND json_type(details) = 'object'),
    created_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX subscription_changes_by_user ON subscription_changes(user_id, id);

-- Subscriptions are looked up by user and status (the current one) and by customer (reconcile).
CREATE INDEX user_subscriptions_by_user_status ON user_subscriptions(user_id, status);
CREATE INDEX user_subscriptions_by_customer ON user_subscriptions(stripe_customer_id);
