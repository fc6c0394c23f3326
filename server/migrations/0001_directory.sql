-- The site directory: users, letter overrides, server states, and a generation counter
-- that every change bumps so that running nodes notice it. Portable between SQLite and
-- PostgreSQL: integers are BIGINT (INTEGER affinity in SQLite), no autoincrement.

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    preference    TEXT NOT NULL DEFAULT 'imap' CHECK (preference IN ('imap', 'pop3')),
    enabled       BIGINT NOT NULL DEFAULT 1,
    operator      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE letter_overrides (
    bucket   BIGINT PRIMARY KEY CHECK (bucket >= 0 AND bucket < 27),
    server   TEXT NOT NULL,
    moved_at BIGINT NOT NULL
);

CREATE TABLE server_states (
    name       TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('up', 'maintenance', 'down')),
    changed_at BIGINT NOT NULL
);

CREATE TABLE site_generation (
    id         BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL
);

INSERT INTO site_generation (id, generation) VALUES (1, 1);
