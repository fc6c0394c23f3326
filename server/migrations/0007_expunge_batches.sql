-- The expunge journal, one row per expunge instead of one per message: the files of the
-- messages it removed, one name per line, under the mailbox's MODSEQ of that expunge.
-- Written in the transaction that removes the messages' rows and deleted once the
-- files are unlinked, so a crash in between cannot bring an expunged message back. A
-- POP3 QUIT of 1,000 deletions writes one row here, not 1,000 (and later deletes one).
-- Rows left in `expunges` by earlier versions are still finished at the next start.

CREATE TABLE expunge_batches (
    username TEXT NOT NULL,
    mailbox  TEXT NOT NULL,
    modseq   BIGINT NOT NULL,
    files    TEXT NOT NULL,
    PRIMARY KEY (username, mailbox, modseq)
);
