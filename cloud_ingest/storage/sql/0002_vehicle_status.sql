-- can2care storage schema, version 2 (docs/schema.md): vehicle presence.

-- The newest status document of each vehicle (its retained v1/<id>/status message): online
-- with the agent's metrics, or offline (its last will). Newest `time` wins, so a late
-- redelivery never replaces a newer state.
CREATE TABLE vehicle_status (
    vehicle_id  text PRIMARY KEY REFERENCES vehicle ON DELETE CASCADE,
    state       text NOT NULL CHECK (state IN ('online', 'offline')),
    time        timestamptz NOT NULL,   -- the agent's time_ms
    document    jsonb NOT NULL,         -- the status document as sent
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX vehicle_status_state ON vehicle_status (state, time);
