-- Outbound TLS policy: other domains' MTA-STS policies as last fetched (RFC 8461 5.1:
-- a cached policy outlives a failed fetch until its max_age), and the sorters' TLS
-- session results for TLS reports (RFC 8460), counted per day.

CREATE TABLE mta_sts_policies (
    domain     TEXT PRIMARY KEY,
    -- The id of the _mta-sts TXT record the policy was fetched for.
    policy_id  TEXT NOT NULL,
    -- The policy file as served.
    policy     TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row per day, policy and kind of result: result_type '' counts successful
-- sessions; the others are RFC 8460 result types.
CREATE TABLE tls_results (
    day            TEXT NOT NULL,
    policy_domain  TEXT NOT NULL,
    policy_type    TEXT NOT NULL,
    policy_string  TEXT NOT NULL,
    mx_host        TEXT NOT NULL,
    result_type    TEXT NOT NULL,
    sending_ip     TEXT NOT NULL,
    receiving_mx   TEXT NOT NULL,
    receiving_ip   TEXT NOT NULL,
    information    TEXT NOT NULL,
    sessions       BIGINT NOT NULL,
    PRIMARY KEY (day, policy_domain, policy_type, policy_string, mx_host, result_type,
                 sending_ip, receiving_mx, receiving_ip, information)
);

-- The days whose report has gone to each domain's rua addresses.
CREATE TABLE tls_reports_sent (
    day           TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    sent_at       BIGINT NOT NULL,
    PRIMARY KEY (day, policy_domain)
);
