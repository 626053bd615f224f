-- Hourly sample counts per vehicle and signal (TimescaleDB community licence). Applied by
-- migrate() when present; every statement is safe to run again.
CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT vehicle_id,
       signal_id,
       time_bucket(interval '1 hour', start_time) AS bucket,
       count(*) AS series,
       sum(n) AS samples,
       max(end_time) AS last_time
FROM telemetry_series
GROUP BY vehicle_id, signal_id, bucket
WITH NO DATA;

SELECT add_continuous_aggregate_policy(
    'telemetry_hourly',
    start_offset => interval '3 days',
    end_offset => interval '1 hour',
    schedule_interval => interval '30 minutes',
    if_not_exists => true
);
