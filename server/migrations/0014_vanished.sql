-- QRESYNC (RFC 7162 3.2): which UIDs each expunge removed, under the HIGHESTMODSEQ it
-- gave the mailbox, so that a client that last saw MODSEQ n learns what vanished since
-- (SELECT ... (QRESYNC ...), UID FETCH ... (CHANGEDSINCE n VANISHED)). One row per
-- expunge, the UIDs joined by ','.

CREATE TABLE vanished (
    username TEXT NOT NULL,
    mailbox  TEXT NOT NULL,
    modseq   BIGINT NOT NULL,
    uids     TEXT NOT NULL,
    PRIMARY KEY (username, mailbox, modseq)
);

-- Expunges before this table existed were not recorded: a client whose MODSEQ is older
-- than the mailbox's HIGHESTMODSEQ here is told every UID below UIDNEXT that is gone.
ALTER TABLE mailboxes ADD COLUMN vanished_from BIGINT NOT NULL DEFAULT 0;
UPDATE mailboxes SET vanished_from = highestmodseq;
