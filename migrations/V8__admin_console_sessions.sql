-- Sessions of the admin console (`/admin`): an opaque cookie whose SHA-256 is stored
-- here, never the token itself. A session ends at `expires_at` (absolute), after
-- `idle_timeout_ms` without use, when revoked, or as soon as its user is no longer an
-- active admin or has another password than at sign-in (`password_digest`).
CREATE TABLE admin_console_sessions (
    id               TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_digest  TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    idle_timeout_ms  INTEGER NOT NULL CHECK (idle_timeout_ms > 0),
    revoked_at       INTEGER,
    revoked_reason   TEXT,
    ip               TEXT,
    user_agent       TEXT
) STRICT;
CREATE INDEX admin_console_sessions_by_user ON admin_console_sessions(user_id, created_at);

-- Why an admin rejected a social claim (shown to admins in the review queue).
ALTER TABLE social_engagements ADD COLUMN review_reason TEXT;
