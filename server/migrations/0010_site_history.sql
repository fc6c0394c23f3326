-- The history of the site's state: every letter move, operator server state and health
-- finding, with what it was before. The helpdesk judges a report against the site as
-- it was when the report was made (a drain after it must not make its DNS answers look
-- stale), by undoing the changes made since: the earliest change after a time holds
-- what an item was at that time.

CREATE TABLE site_history (
    at     BIGINT NOT NULL,
    seq    BIGINT NOT NULL,        -- the site generation of the change: orders changes within a second
    kind   TEXT NOT NULL,          -- 'letter' (name: the bucket), 'state' or 'health' (name: the server)
    name   TEXT NOT NULL,
    before TEXT NOT NULL,          -- a server name, a state, or 'failing'/'passing'
    after  TEXT NOT NULL
);

CREATE INDEX site_history_at ON site_history (at);
