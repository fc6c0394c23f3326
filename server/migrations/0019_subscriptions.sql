-- Subscriptions (IMAP SUBSCRIBE, LSUB, LIST (SUBSCRIBED)) as a list of names of their
-- own: a subscription outlives its mailbox (RFC 3501 6.3.6: the server must not remove
-- a name from the list because the mailbox is gone; RFC 5258 lists it \NonExistent),
-- where before it was a column of the mailbox's row. The column stays, unused.

CREATE TABLE subscriptions (
    username TEXT NOT NULL,
    name     TEXT NOT NULL,
    PRIMARY KEY (username, name)
);

INSERT INTO subscriptions (username, name)
    SELECT username, name FROM mailboxes WHERE subscribed <> 0;
