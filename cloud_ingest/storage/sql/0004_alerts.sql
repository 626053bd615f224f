-- can2care storage schema, version 4 (docs/schema.md, docs/alerts.md): care alerts, their
-- audit history, the change feed, webhooks and the delivery outbox. Written by `rules.store`
-- and `rules.delivery`.

-- Alerts: one row per alert, at most one unresolved alert per key ----------------------------

CREATE TABLE alert (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text NOT NULL CHECK (key <> ''),  -- vehicle/rule[/subkey]
    vehicle_id      text NOT NULL REFERENCES vehicle,
    rule_id         text NOT NULL CHECK (rule_id <> ''),
    subkey          text,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'dispatched', 'resolved')),
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    category        text NOT NULL CHECK (category IN ('rescue', 'care', 'service', 'owner')),
    title           text NOT NULL,
    auto_resolve    boolean NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}',
    raised_at       timestamptz NOT NULL,  -- event time: when the condition started
    created_at      timestamptz NOT NULL DEFAULT now(),  -- when the alert was stored
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sequence        integer NOT NULL DEFAULT 1 CHECK (sequence > 0),  -- changes so far
    acknowledged_at timestamptz,
    acknowledged_by text,
    assigned_to     text,
    dispatched_at   timestamptz,
    dispatch        jsonb,                 -- what was dispatched (a tow, a call, ...)
    cleared_at      timestamptz,           -- event time: when the condition cleared
    renotified_at   timestamptz,           -- event time of the last renotification
    escalated_at    timestamptz,
    resolved_at     timestamptz,
    resolved_by     text,
    resolution      text,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);

CREATE UNIQUE INDEX alert_open_key ON alert (key) WHERE status <> 'resolved';
CREATE INDEX alert_raised ON alert (raised_at DESC, alert_id DESC);
CREATE INDEX alert_vehicle_raised ON alert (vehicle_id, raised_at DESC);
CREATE INDEX alert_unresolved ON alert (status, created_at) WHERE status <> 'resolved';

-- The audit history: who changed what and when, append-only -----------------------------------

CREATE TABLE alert_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alert ON DELETE CASCADE,
    sequence    integer NOT NULL,          -- the alert's sequence after this change
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (actor <> ''),
    action      text NOT NULL,
    from_status text,                      -- NULL when the alert was raised
    to_status   text NOT NULL,
    note        text,
    details     jsonb NOT NULL DEFAULT '{}',
    UNIQUE (alert_id, sequence)
);

-- The change feed: every alert change in commit order, for live event streams -----------------

CREATE TABLE alert_feed (
    feed_id  bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    alert_id bigint NOT NULL REFERENCES alert ON DELETE CASCADE,
    sequence integer NOT NULL,
    kind     text NOT NULL,
    alert    jsonb NOT NULL,                -- the alert's state after the change
    UNIQUE (alert_id, sequence)
);

-- Webhooks: where alert changes are delivered --------------------------------------------------

CREATE TABLE webhook (
    webhook_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    url             text NOT NULL CHECK (url ~ '^https?://'),
    secret          text NOT NULL CHECK (secret <> ''),
    active          boolean NOT NULL DEFAULT true,
    min_severity    text NOT NULL DEFAULT 'info'
                    CHECK (min_severity IN ('info', 'warning', 'critical')),
    categories      text[],                -- NULL: every category
    rate_per_minute integer NOT NULL DEFAULT 60 CHECK (rate_per_minute BETWEEN 1 AND 10000),
    quiet_start     time,                  -- local wall-clock time in `timezone`
    quiet_end       time,
    timezone        text NOT NULL DEFAULT 'UTC',
    recent_sends    timestamptz[] NOT NULL DEFAULT '{}',  -- the rate window (docs/alerts.md)
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- The delivery outbox: one row per (change, webhook) until a 2xx answer ------------------------

CREATE TABLE delivery (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed_id         bigint NOT NULL REFERENCES alert_feed ON DELETE CASCADE,
    webhook_id      bigint NOT NULL REFERENCES webhook ON DELETE CASCADE,
    idempotency_key text NOT NULL,         -- stable per (alert, change sequence)
    urgent          boolean NOT NULL,      -- critical or rescue: never held by quiet hours
    payload         jsonb NOT NULL,        -- the body, fixed when enqueued
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (feed_id, webhook_id)
);

CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_webhook ON delivery (webhook_id, created_at);
