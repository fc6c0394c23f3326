-- Mailbox metadata: one row per mailbox (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, SPECIAL-USE,
-- subscription) and one per message (UID, MODSEQ, flags and keywords, internal date,
-- size, Maildir file name). Message bodies live in Maildir files; this index can be
-- rebuilt from them (`mailsite mailbox reindex USER`).

CREATE TABLE mailboxes (
    username      TEXT NOT NULL,
    name          TEXT NOT NULL,
    uidvalidity   BIGINT NOT NULL,
    uidnext       BIGINT NOT NULL,
    highestmodseq BIGINT NOT NULL,
    special_use   TEXT NOT NULL DEFAULT '',
    subscribed    BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (username, name)
);

CREATE TABLE messages (
    username      TEXT NOT NULL,
    mailbox       TEXT NOT NULL,
    uid           BIGINT NOT NULL,
    modseq        BIGINT NOT NULL,
    flags         TEXT NOT NULL DEFAULT '',
    internal_date BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    file          TEXT NOT NULL,
    PRIMARY KEY (username, mailbox, uid)
);
