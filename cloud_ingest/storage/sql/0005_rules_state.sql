-- can2care storage schema, version 5 (docs/schema.md): what the rules workers read and keep.

-- Bumped by every ingest transaction that stores a vehicle's telemetry or events, so the rules
-- workers find the vehicles with new data without scanning telemetry (the ingest service also
-- sends NOTIFY can2care_data after such a commit).
CREATE TABLE vehicle_progress (
    vehicle_id text PRIMARY KEY REFERENCES vehicle ON DELETE CASCADE,
    version    bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Each vehicle's rule evaluation: how far it has read, and the engine's state (JSON, rules.engine).
CREATE TABLE rule_state (
    vehicle_id         text PRIMARY KEY REFERENCES vehicle ON DELETE CASCADE,
    seen_version       bigint NOT NULL DEFAULT 0,   -- vehicle_progress.version fully read
    telemetry_sequence bigint NOT NULL DEFAULT -1,  -- the last telemetry batch evaluated
    event_sequence     bigint NOT NULL DEFAULT -1,  -- the last event evaluated
    data_state         jsonb NOT NULL DEFAULT '{}', -- rules driven by the vehicle's data
    clock_state        jsonb NOT NULL DEFAULT '{}', -- rules driven by the clock (presence, dates)
    ticked_at          timestamptz,                 -- the last clock evaluation
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Services done: recording one resets the model-interval service reminders.
CREATE TABLE service_record (
    service_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id  text NOT NULL REFERENCES vehicle ON DELETE CASCADE,
    time        timestamptz NOT NULL,
    odometer_km float8 CHECK (odometer_km >= 0),
    note        text,
    recorded_by text NOT NULL CHECK (recorded_by <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX service_record_vehicle_time ON service_record (vehicle_id, time DESC);

-- Per-model intervals for service reminders and the warranty reminder.
CREATE TABLE model_service (
    model         text PRIMARY KEY CHECK (model <> ''),
    interval_km   float8 CHECK (interval_km > 0),
    interval_days integer CHECK (interval_days > 0),
    warranty_days integer CHECK (warranty_days > 0)
);
