-- \Recent (RFC 3501 2.3.2): the messages of a mailbox that no session has had selected
-- yet are those with UID >= recent_uid. The first session to select the mailbox
-- read-write (or to notice them while it has it selected) claims them: recent_uid moves
-- up to the UIDNEXT it saw, and they are \Recent in that session only. Mail already
-- there when this column came is not recent.

ALTER TABLE mailboxes ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uidnext;
