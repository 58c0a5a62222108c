-- A trigram index over users' emails and display names (issue 12), so the admin users
-- search finds a rare substring without reading every user. It is derived from `users`
-- and `user_profiles` and kept by the triggers below; the search still applies its LIKE
-- to the candidates, so its answers are those of a scan.
--
-- The index's rowids come from `user_search_docs`, whose INTEGER PRIMARY KEY survives
-- VACUUM (the implicit rowid of `users` may not).
CREATE TABLE user_search_docs (
    doc      INTEGER PRIMARY KEY,
    user_id  TEXT NOT NULL UNIQUE
) STRICT;

CREATE VIRTUAL TABLE user_search USING fts5(email, display_name, tokenize = 'trigram');

INSERT INTO user_search_docs (user_id) SELECT id FROM users ORDER BY id;
INSERT INTO user_search (rowid, email, display_name)
    SELECT d.doc, u.email, p.display_name
    FROM user_search_docs d JOIN users u ON u.id = d.user_id
    LEFT JOIN user_profiles p ON p.user_id = u.id;

CREATE TRIGGER user_search_user_inserted AFTER INSERT ON users BEGIN
    INSERT INTO user_search_docs (user_id) VALUES (new.id);
    INSERT INTO user_search (rowid, email)
        SELECT doc, new.email FROM user_search_docs WHERE user_id = new.id;
END;

CREATE TRIGGER user_search_email_changed AFTER UPDATE OF email ON users BEGIN
    UPDATE user_search SET email = new.email
        WHERE rowid = (SELECT doc FROM user_search_docs WHERE user_id = new.id);
END;

CREATE TRIGGER user_search_user_deleted AFTER DELETE ON users BEGIN
    DELETE FROM user_search WHERE rowid = (SELECT doc FROM user_search_docs WHERE user_id = old.id);
    DELETE FROM user_search_docs WHERE user_id = old.id;
END;

CREATE TRIGGER user_search_profile_inserted AFTER INSERT ON user_profiles BEGIN
    UPDATE user_search SET display_name = new.display_name
        WHERE rowid = (SELECT doc FROM user_search_docs WHERE user_id = new.user_id);
END;

CREATE TRIGGER user_search_name_changed AFTER UPDATE OF display_name ON user_profiles BEGIN
    UPDATE user_search SET display_name = new.display_name
        WHERE rowid = (SELECT doc FROM user_search_docs WHERE user_id = new.user_id);
END;

CREATE TRIGGER user_search_profile_deleted AFTER DELETE ON user_profiles BEGIN
    UPDATE user_search SET display_name = NULL
        WHERE rowid = (SELECT doc FROM user_search_docs WHERE user_id = old.user_id);
END;
