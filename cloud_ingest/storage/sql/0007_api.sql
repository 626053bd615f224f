-- can2care storage schema, version 7 (docs/schema.md, docs/api.md): the care team's HTTP API.

-- API tokens: the secret is never stored, only its SHA-256; `token_id` is the public part
-- of the token (c2c_<token_id>_<secret>) that finds the row. Vehicle broker credentials are
-- not API credentials and never live here.
CREATE TABLE api_token (
    token_id     text PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{16}$'),
    name         text NOT NULL CHECK (name <> ''),
    role         text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_by   text NOT NULL CHECK (created_by <> ''),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE INDEX api_token_name ON api_token (name);

-- Rule files an operator stored through the API, validated before they were stored. The
-- rules workers read them (after the built-in catalogue and their own files) when they reload.
CREATE TABLE rule_file (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    text       text NOT NULL,
    updated_by text NOT NULL CHECK (updated_by <> ''),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row: bumped by every reload request (followed by NOTIFY can2care_rules); a worker that
-- saw an older generation reloads.
CREATE TABLE rule_generation (
    only_one     boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    generation   bigint NOT NULL DEFAULT 0 CHECK (generation >= 0),
    requested_by text,
    requested_at timestamptz
);

INSERT INTO rule_generation DEFAULT VALUES;

-- Vehicle search by VIN prefix and by tag.
CREATE INDEX vehicle_vin_prefix ON vehicle (vin text_pattern_ops);
CREATE INDEX vehicle_tags ON vehicle USING gin (tags);
-- The alert list filtered by status or rule, newest first, on a large table.
CREATE INDEX alert_status_raised ON alert (status, raised_at DESC, alert_id DESC);
CREATE INDEX alert_rule_raised ON alert (rule_id, raised_at DESC, alert_id DESC);
