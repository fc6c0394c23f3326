-- Sources (an IPv4 address, an IPv6 /64) blocked from logging in after too many failed
-- password logins: every node refuses them until `until` (Unix seconds) without
-- checking any password. `account` is the account the last failure named, so that a
-- helpdesk can lift the blocks of a user whose phone kept an old password by username.
-- Adding or removing a block logs a change of kind 'block' (named by source or
-- account), which is how every node hears of it.

CREATE TABLE login_blocks (
    source   TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    failures BIGINT NOT NULL,
    since    BIGINT NOT NULL,
    until    BIGINT NOT NULL
);

CREATE INDEX login_blocks_account ON login_blocks (account);
