-- Sieve (RFC 5228): each user's filter scripts, managed over ManageSieve (RFC 5804) and
-- from the command line; at most one is active and runs at final delivery (LMTP). They
-- live in the site database, which every mailbox server shares, so they follow a
-- user's letter to whichever server serves it. `active` is 1 for the running script.
--
-- sieve_seen remembers what a script asked to remember for a while: a vacation
-- (RFC 5230) reply sent to a sender (one per sender per :days), or a message id seen
-- by "duplicate" (RFC 7352); rows past `expires_at` (Unix seconds) no longer count.

CREATE TABLE sieve_scripts (
    username   TEXT NOT NULL,
    name       TEXT NOT NULL,
    script     TEXT NOT NULL,
    active     BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (username, name)
);

CREATE TABLE sieve_seen (
    username   TEXT NOT NULL,
    id         TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (username, id)
);
