-- Files of expunged messages waiting to be unlinked. Written in the same transaction
-- that removes the messages' rows, so that a crash before the unlink can never bring
-- an expunged message back when the Maildir is scanned again.

CREATE TABLE expunges (
    username TEXT NOT NULL,
    mailbox  TEXT NOT NULL,
    file     TEXT NOT NULL,
    PRIMARY KEY (username, mailbox, file)
);
