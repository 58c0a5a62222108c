-- How an admin signed in to the console: the password alone, or with a second factor
-- (issue 13). With `mfa_required_for_admins`, a password-only console session may only
-- enrol in two-factor sign-in; enrolling from the console records its code here.
ALTER TABLE admin_console_sessions ADD COLUMN factor TEXT NOT NULL DEFAULT 'password'
    CHECK (factor IN ('password', 'totp', 'recovery_code'));
