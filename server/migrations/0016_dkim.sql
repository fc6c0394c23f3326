-- DKIM (RFC 6376): the public half of each domain's signing keys, which the zone
-- publishes as <selector>._domainkey.<domain> TXT. The private halves are files in the
-- signing node's data directory (dkim/, mode 0600), never in the database.
--
-- Rotation is by time, so that every node agrees without talking: a domain signs, per
-- algorithm, with the published key whose sign_from (Unix seconds) is the latest one
-- already reached; a key leaves the zone at withdraw_at (NULL: while it is the newest).

CREATE TABLE dkim_keys (
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    sign_from   BIGINT NOT NULL,
    withdraw_at BIGINT,
    PRIMARY KEY (domain, selector)
);
