-- can2care storage schema, version 3 (docs/schema.md): the care team's hot queries.

-- The latest state of many vehicles for a few signals (a map of the fleet, a region's state
-- of charge) reads this index only: signal first, the values included.
CREATE INDEX latest_state_signal_vehicle ON latest_state (signal_id, vehicle_id)
    INCLUDE (time, value);

-- Vehicles by region (segments, campaigns, regional views).
CREATE INDEX vehicle_region ON vehicle (region);

-- One vehicle's signal with p_from <= time < p_to in time_bucket buckets of p_width: mean,
-- min, max and count per bucket, in time order. Unlike aggregating signal_samples(), the
-- samples are not sorted first: only the buckets are.
CREATE FUNCTION signal_buckets(
    p_vehicle text, p_path text, p_from timestamptz, p_to timestamptz, p_width interval
) RETURNS TABLE (bucket timestamptz, mean float8, min float8, max float8, samples bigint)
LANGUAGE sql STABLE AS $$
    SELECT time_bucket(p_width, x.t), avg(x.v), min(x.v), max(x.v), count(*)
    FROM (
        SELECT s.start_time + u.offset_ms * interval '1 millisecond' AS t, u.value AS v
        FROM telemetry_series s
        CROSS JOIN LATERAL unnest(s.times, s.physical) AS u (offset_ms, value)
        WHERE s.vehicle_id = p_vehicle
          AND s.signal_id = (SELECT g.signal_id FROM signal g WHERE g.path = p_path)
          AND s.start_time < p_to
          AND s.start_time > p_from - interval '1 day'  -- a series spans at most one day
          AND s.end_time >= p_from
    ) x
    WHERE x.t >= p_from AND x.t < p_to
    GROUP BY 1
    ORDER BY 1
$$;
