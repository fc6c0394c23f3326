-- App passwords: passwords of their own for a user's devices (a phone, a mail
-- program), each with a label, an optional expiry, and an argon2 hash of its own.
-- IMAP, POP3 and SMTP AUTH accept them as well as the user's password; the helpdesk
-- console never does. `selector` is 16 bits of the SHA-256 of the password, so that a
-- login verifies only the hashes that can match (a wrong guess costs one argon2 check,
-- not one per app password); an app password is 16 generated characters, ~93 bits, so
-- the selector leaves ~77 bits behind argon2. 0 in `expires_at`/`last_used_at` means
-- never.

CREATE TABLE app_passwords (
    username      TEXT NOT NULL,
    label         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    selector      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    last_source   TEXT NOT NULL,
    PRIMARY KEY (username, label)
);
