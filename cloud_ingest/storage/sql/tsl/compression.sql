-- Native compression (TimescaleDB community licence). Applied by migrate() when present;
-- every statement is safe to run again.
DO $$
DECLARE
    enabled boolean;
BEGIN
    SELECT h.compression_enabled INTO enabled
    FROM timescaledb_information.hypertables h
    WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = 'telemetry_series';
    IF NOT enabled THEN
        ALTER TABLE telemetry_series SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'vehicle_id, signal_id',
            timescaledb.compress_orderby = 'start_time DESC, sequence DESC'
        );
    END IF;
    SELECT h.compression_enabled INTO enabled
    FROM timescaledb_information.hypertables h
    WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = 'event';
    IF NOT enabled THEN
        ALTER TABLE event SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'vehicle_id',
            timescaledb.compress_orderby = 'time DESC, sequence DESC'
        );
    END IF;
END
$$;

SELECT add_compression_policy('telemetry_series', interval '1 day', if_not_exists => true);
SELECT add_compression_policy('event', interval '30 days', if_not_exists => true);
