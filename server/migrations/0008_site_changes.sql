-- The site change log: one row per change of the directory or the site's state, written
-- in the transaction that makes the change. `id` is the site generation that change
-- made (the generation row's lock orders writers, so ids commit in order and without
-- gaps); `kind` says what changed and `name` which one: a user by username, or the site
-- map (letters, server states, health, added servers), whose name is the letter or
-- server. A node remembers the last id it applied and reads only newer rows, then
-- re-reads only the users they name (or the small site map), instead of every user.
-- Old rows are pruned; a node that falls behind the kept range reloads everything.

CREATE TABLE site_changes (
    id         BIGINT PRIMARY KEY,
    kind       TEXT NOT NULL,         -- 'user' or 'site'
    name       TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);
