-- DNSSEC (RFC 4033): each domain's zone signing key, one ECDSA P-256 key (algorithm 13)
-- that signs every record set and its own DNSKEY set (a combined signing key). Every
-- node running the dns role signs with it, so it lives here, in the site database
-- that already holds the site's other secrets (password hashes), as PKCS#8 in base64.
-- It never reaches logs, exports or diagnostics reports: only its public half and DS
-- digest do.

CREATE TABLE dnssec_keys (
    domain      TEXT NOT NULL PRIMARY KEY,
    algorithm   INTEGER NOT NULL,
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
