-- What a session asks on every command: "what changed since MODSEQ n?" and "was anything
-- expunged since?". The index answers the first from the changed rows alone (it used to
-- read a 10,000-message mailbox's every row); expungedmodseq, the HIGHESTMODSEQ an
-- expunge last gave the mailbox, answers the second without counting rows.

CREATE INDEX messages_by_modseq ON messages (username, mailbox, modseq);

ALTER TABLE mailboxes ADD COLUMN expungedmodseq BIGINT NOT NULL DEFAULT 0;
