-- Gallery schema, version 2: API keys for `faces serve`.
-- Only the SHA-256 of each key's secret is kept; the key itself is shown once
-- when created. scopes: a JSON array (detect, identify, enrol, admin).
CREATE TABLE api_keys (
    id        TEXT PRIMARY KEY,
    label     TEXT NOT NULL,
    hash      TEXT NOT NULL,
    scopes    TEXT NOT NULL,
    created   TEXT NOT NULL,
    revoked   TEXT
);
