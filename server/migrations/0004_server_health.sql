-- What the health checks found, kept apart from server_states (what operators set) so
-- that health never overrides an operator's maintenance: a server's effective state is
-- the operator's, except that failing checks turn "up" (or no row) into "down".
-- Only changes are written (a server starting or stopping to fail), each bumping the
-- generation.

CREATE TABLE server_health (
    name       TEXT PRIMARY KEY,
    failing    BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
