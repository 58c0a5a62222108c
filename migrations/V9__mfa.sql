-- Two-factor sign-in (issue 13): a TOTP secret per account, sealed (ChaCha20-Poly1305
-- under a key derived from the server secret, the account id as associated data), its
-- single-use recovery codes as keyed digests, the pending sign-in challenges, and the
-- factor each session was opened with. A row of user_mfa with confirmed_at NULL is an
-- enrolment started and not confirmed: two-factor sign-in is off until it is.
CREATE TABLE user_mfa (
    user_id         TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed   BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    -- The newest TOTP time step accepted: a code is never accepted twice, nor an older one.
    last_used_step  INTEGER
) STRICT;

CREATE TABLE mfa_recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- A password accepted for an account with two-factor sign-in on; only the SHA-256 of the
-- challenge token is kept, with a digest of the password hash it was accepted against
-- (a password changed or reset meanwhile voids the challenge).
CREATE TABLE mfa_challenges (
    token_hash       TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_digest  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges(expires_at);

ALTER TABLE sessions ADD COLUMN factor TEXT NOT NULL DEFAULT 'password'
    CHECK (factor IN ('password', 'totp', 'recovery_code'));
