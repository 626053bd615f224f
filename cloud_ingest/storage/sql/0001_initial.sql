-- can2care storage schema, version 1 (docs/schema.md).
-- Runs in one transaction; TimescaleDB (Apache or community build) must be installed.

-- Vehicles and the catalogues each may send ------------------------------------------------

CREATE TABLE vehicle (
    vehicle_id    text PRIMARY KEY CHECK (vehicle_id <> ''),  -- the MQTT topic level
    vin           text UNIQUE,
    model         text,
    propulsion    text,
    delivery_date date,
    owner_ref     text,
    region        text,
    tags          text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vehicle_catalogue (
    vehicle_id   text NOT NULL REFERENCES vehicle ON DELETE CASCADE,
    catalogue_id text NOT NULL CHECK (catalogue_id ~ '^[0-9a-f]{16}$'),
    PRIMARY KEY (vehicle_id, catalogue_id)
);

-- The signal dictionary: a VSS path is stored once, series rows carry its integer id ---------

CREATE TABLE signal (
    signal_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path      text NOT NULL UNIQUE CHECK (path <> '')
);

-- The id of a VSS path, added to the dictionary on first use.
CREATE FUNCTION signal_id(p_path text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    found integer;
BEGIN
    SELECT s.signal_id INTO found FROM signal s WHERE s.path = p_path;
    IF found IS NULL THEN
        INSERT INTO signal (path) VALUES (p_path)
        ON CONFLICT (path) DO NOTHING
        RETURNING signal.signal_id INTO found;
    END IF;
    IF found IS NULL THEN  -- a concurrent transaction added it first
        SELECT s.signal_id INTO found FROM signal s WHERE s.path = p_path;
    END IF;
    RETURN found;
END
$$;

-- Telemetry batches: one row per received payload, the duplicate filter ---------------------

CREATE TABLE telemetry_batch (
    vehicle_id      text NOT NULL REFERENCES vehicle,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    received_at     timestamptz NOT NULL DEFAULT now(),
    catalogue_id    text NOT NULL CHECK (catalogue_id ~ '^[0-9a-f]{16}$'),
    first_time      timestamptz,  -- earliest sample; NULL for a batch without samples
    last_time       timestamptz,  -- latest sample
    samples         integer NOT NULL CHECK (samples >= 0),
    capture_name    text,
    capture_trigger timestamptz,
    PRIMARY KEY (vehicle_id, sequence),
    CHECK ((first_time IS NULL) = (last_time IS NULL) AND first_time <= last_time),
    CHECK ((capture_name IS NULL) = (capture_trigger IS NULL))
);

-- Telemetry series: one row per (vehicle, signal, batch), the samples as arrays ---------------

CREATE TABLE telemetry_series (
    vehicle_id text NOT NULL,
    signal_id  integer NOT NULL,
    sequence   bigint NOT NULL,
    start_time timestamptz NOT NULL,  -- the first sample
    end_time   timestamptz NOT NULL,  -- the last sample
    n          integer NOT NULL CHECK (n > 0),
    times      int4[] NOT NULL,       -- ms after start_time, non-decreasing, times[1] = 0
    physical   float8[] NOT NULL,     -- VSS values in VSS units (NaN allowed)
    raw        int8[] NOT NULL,       -- the decoder's raw integers, lossless
    CHECK (end_time >= start_time AND end_time - start_time <= interval '1 day'),
    CHECK (cardinality(times) = n AND cardinality(physical) = n AND cardinality(raw) = n)
);

SELECT create_hypertable(
    'telemetry_series', by_range('start_time', interval '15 minutes'),
    create_default_indexes => false
);

CREATE INDEX telemetry_series_vehicle_signal_time
    ON telemetry_series (vehicle_id, signal_id, start_time DESC);

-- Events (crash and others) ------------------------------------------------------------------

CREATE TABLE event (
    vehicle_id  text NOT NULL,
    sequence    bigint NOT NULL,
    time        timestamptz NOT NULL,
    kind        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vehicle_id, sequence, time)
);

SELECT create_hypertable('event', by_range('time', interval '7 days'));

CREATE INDEX event_vehicle_time ON event (vehicle_id, time DESC);

-- The newest value of every signal of every vehicle --------------------------------------------

CREATE TABLE latest_state (
    vehicle_id text NOT NULL,
    signal_id  integer NOT NULL REFERENCES signal,
    time       timestamptz NOT NULL,
    value      float8 NOT NULL,
    raw        bigint NOT NULL,
    PRIMARY KEY (vehicle_id, signal_id)
);

-- Payloads that could not be stored, kept for inspection and replay ----------------------------

CREATE TABLE dead_letter (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    client_id   text,
    reason      text NOT NULL,
    detail      text,
    payload     bytea NOT NULL
);

CREATE INDEX dead_letter_received_at ON dead_letter (received_at);

-- Retention: drop_chunks (part of the Apache build), driven by this table -----------------------

CREATE TABLE retention_policy (
    hypertable regclass PRIMARY KEY,
    drop_after interval NOT NULL DEFAULT interval '400 days' CHECK (drop_after > interval '0')
);

INSERT INTO retention_policy (hypertable) VALUES ('telemetry_series'), ('event');

-- Drops every chunk whose data is entirely older than its hypertable's drop_after, relative to
-- p_now; returns the names of the dropped chunks.
CREATE FUNCTION apply_retention(p_now timestamptz DEFAULT now())
RETURNS TABLE (hypertable regclass, chunk text)
LANGUAGE plpgsql AS $$
DECLARE
    policy record;
BEGIN
    FOR policy IN SELECT r.hypertable, r.drop_after FROM retention_policy r ORDER BY 1 LOOP
        RETURN QUERY
            SELECT policy.hypertable, dropped
            FROM drop_chunks(policy.hypertable, older_than => p_now - policy.drop_after)
                AS dropped;
    END LOOP;
END
$$;

-- Reading series back as samples ----------------------------------------------------------------

-- The samples of one vehicle's signal with p_from <= time < p_to, in time order.
CREATE FUNCTION signal_samples(
    p_vehicle text, p_path text, p_from timestamptz, p_to timestamptz
) RETURNS TABLE ("time" timestamptz, value float8, raw bigint)
LANGUAGE sql STABLE AS $$
    SELECT s.start_time + u.offset_ms * interval '1 millisecond', u.value, u.raw
    FROM telemetry_series s
    CROSS JOIN LATERAL unnest(s.times, s.physical, s.raw) AS u (offset_ms, value, raw)
    WHERE s.vehicle_id = p_vehicle
      AND s.signal_id = (SELECT g.signal_id FROM signal g WHERE g.path = p_path)
      AND s.start_time < p_to
      AND s.start_time > p_from - interval '1 day'  -- a series spans at most one day
      AND s.end_time >= p_from
      AND s.start_time + u.offset_ms * interval '1 millisecond' >= p_from
      AND s.start_time + u.offset_ms * interval '1 millisecond' < p_to
    ORDER BY 1, s.sequence
$$;
