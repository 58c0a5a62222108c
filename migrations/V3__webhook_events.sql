-- Stripe webhook events, rebuilt (SQLite cannot alter a CHECK): an `ignored` status for
-- events nothing acts on (unknown types, the other live/test mode), the envelope fields
-- the intake reads, and what the worker needs to explain itself.
--
-- Status lifecycle:
--   pending    -> waiting for the worker; due when next_attempt_at <= now
--   processing -> claimed by a worker; next_attempt_at is when that claim lapses
--                 (a crashed worker's row becomes due again then)
--   processed  -> the handler acted on it (processed_at set)
--   ignored    -> nothing to do (processed_at set, note says why); can be requeued
--   failed     -> gave up after webhook_max_attempts (last_error says why); can be requeued
CREATE TABLE webhook_events_v3 (
    id               TEXT PRIMARY KEY,            -- Stripe's event id (evt_...): a redelivery is never stored twice
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL CHECK (json_valid(payload)), -- the raw body exactly as signed
    livemode         INTEGER NOT NULL DEFAULT 0 CHECK (livemode IN (0, 1)),
    api_version      TEXT,
    object_id        TEXT,                        -- data.object.id: the subscription, invoice, charge, ...
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'processed', 'ignored', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  INTEGER,
    last_error       TEXT,
    last_error_at    INTEGER,
    note             TEXT,                        -- why an event was ignored
    received_at      INTEGER NOT NULL,
    processed_at     INTEGER
) STRICT;

INSERT INTO webhook_events_v3 (
    id, event_type, payload, livemode, api_version, object_id, status, attempts,
    next_attempt_at, last_error, last_error_at, received_at, processed_at
)
SELECT
    id,
    event_type,
    CASE WHEN json_valid(payload) THEN payload ELSE json_quote(payload) END,
    CASE WHEN json_valid(payload) AND json_extract(payload, '$.livemode') = 1 THEN 1 ELSE 0 END,
    CASE WHEN json_valid(payload) AND json_type(payload, '$.api_version') = 'text'
         THEN json_extract(payload, '$.api_version') END,
    CASE WHEN json_valid(payload) AND json_type(payload, '$.data.object.id') = 'text'
         THEN json_extract(payload, '$.data.object.id') END,
    status,
    attempts,
    COALESCE(next_attempt_at, CASE WHEN status IN ('pending', 'processing') THEN received_at END),
    last_error,
    CASE WHEN last_error IS NOT NULL THEN received_at END,
    received_at,
    processed_at
FROM webhook_events;

DROP TABLE webhook_events;
ALTER TABLE webhook_events_v3 RENAME TO webhook_events;

CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
CREATE INDEX webhook_events_by_received ON webhook_events(received_at, id);
CREATE INDEX webhook_events_by_object ON webhook_events(object_id) WHERE object_id IS NOT NULL;
