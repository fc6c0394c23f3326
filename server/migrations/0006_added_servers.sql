-- Servers added to a running site with `mailsite server add` (beside those in the
-- configuration files): every node learns them from here without a restart.

CREATE TABLE added_servers (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,          -- 'mailbox' or 'sorter'
    addresses TEXT NOT NULL,          -- comma-separated IP addresses
    storage   TEXT NOT NULL DEFAULT '',
    added_at  BIGINT NOT NULL
);
