-- A rejected social claim no longer blocks the task: the user may claim it again (at
-- most 3 claims per task in all; the application enforces the count). The rejected row
-- stays, with its review. The uniqueness rules now hold among the claims that are not
-- rejected: one per (user, task), one per (user, platform, action), and one account per
-- handle and task. V1's table-level UNIQUE (user_id, platform, action) cannot be dropped
-- in SQLite, so the table is rebuilt with the same columns and data.
CREATE TABLE social_engagements_v7 (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform       TEXT NOT NULL,
    action         TEXT NOT NULL,
    url            TEXT,
    reward_tokens  INTEGER NOT NULL CHECK (reward_tokens >= 0),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at     INTEGER NOT NULL,
    reviewed_at    INTEGER,
    task_id        TEXT REFERENCES social_tasks(id),
    handle         TEXT,
    reviewed_by    TEXT,
    client_ip      TEXT
) STRICT;

INSERT INTO social_engagements_v7
    (id, user_id, platform, action, url, reward_tokens, status, created_at, reviewed_at, task_id, handle, reviewed_by, client_ip)
SELECT id, user_id, platform, action, url, reward_tokens, status, created_at, reviewed_at, task_id, handle, reviewed_by, client_ip
FROM social_engagements;

DROP TABLE social_engagements;
ALTER TABLE social_engagements_v7 RENAME TO social_engagements;

CREATE UNIQUE INDEX social_engagements_one_live_per_task ON social_engagements(task_id, user_id) WHERE status != 'rejected';
CREATE UNIQUE INDEX social_engagements_one_live_per_action ON social_engagements(user_id, platform, action) WHERE status != 'rejected';
CREATE UNIQUE INDEX social_engagements_one_live_handle ON social_engagements(task_id, handle COLLATE NOCASE) WHERE handle IS NOT NULL AND status != 'rejected';
CREATE INDEX social_engagements_by_status ON social_engagements(status, created_at);
CREATE INDEX social_engagements_by_client_ip ON social_engagements(client_ip, created_at);
CREATE INDEX social_engagements_by_user_task ON social_engagements(user_id, task_id, created_at);
