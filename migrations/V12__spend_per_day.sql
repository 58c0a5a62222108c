-- Tokens spent per UTC day (issue 12), for the admin overview's 30-day chart: spends and
-- captured holds, as the chart counts them. The chart used to sum every ledger row of the
-- window (670 ms at a million spends); it now reads 30 rows. The totals are derived from
-- `token_transactions` and `token_holds` and kept by the triggers below, in the writing
-- transaction, so they never drift from the ledger.
CREATE TABLE spend_per_day (
    day     INTEGER PRIMARY KEY, -- milliseconds since the epoch / 86400000
    tokens  INTEGER NOT NULL
) STRICT;

INSERT INTO spend_per_day (day, tokens)
    SELECT day, SUM(tokens) FROM (
        SELECT created_at / 86400000 AS day, -amount AS tokens
            FROM token_transactions WHERE kind = 'spend'
        UNION ALL
        SELECT settled_at / 86400000, captured
            FROM token_holds WHERE status = 'captured'
    )
    GROUP BY day;

CREATE TRIGGER spend_per_day_spent AFTER INSERT ON token_transactions
WHEN new.kind = 'spend' BEGIN
    INSERT INTO spend_per_day (day, tokens) VALUES (new.created_at / 86400000, -new.amount)
        ON CONFLICT (day) DO UPDATE SET tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER spend_per_day_captured AFTER UPDATE OF status ON token_holds
WHEN new.status = 'captured' AND old.status <> 'captured' BEGIN
    INSERT INTO spend_per_day (day, tokens) VALUES (new.settled_at / 86400000, new.captured)
        ON CONFLICT (day) DO UPDATE SET tokens = tokens + excluded.tokens;
END;
