-- Per-user quotas (RFC 9208): the most octets and the most messages a user's mailboxes
-- may hold together; 0 is no limit. Set by operators (`mailsite user quota`, the
-- console's user page), enforced on IMAP APPEND and COPY and on LMTP delivery.

ALTER TABLE users ADD COLUMN quota_storage BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN quota_messages BIGINT NOT NULL DEFAULT 0;
