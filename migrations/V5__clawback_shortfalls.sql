-- Refunds claw tokens back; what a user had already spent cannot be, and is recorded
-- here for admins instead of pushing a balance below zero.
CREATE TABLE token_shortfalls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL REFERENCES users(id),
    reference   TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX token_shortfalls_by_reference ON token_shortfalls(reference);
CREATE INDEX token_transactions_by_reference ON token_transactions(reference, kind);
