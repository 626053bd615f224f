-- Runs apply_retention() daily in TimescaleDB's job scheduler (community licence). Applied by
-- migrate() when present; every statement is safe to run again. Without it the ingest
-- service calls apply_retention() itself.
CREATE OR REPLACE PROCEDURE retention_job(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM apply_retention();
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM timescaledb_information.jobs j
        WHERE j.proc_schema = current_schema() AND j.proc_name = 'retention_job'
    ) THEN
        PERFORM add_job('retention_job', interval '1 day');
    END IF;
END
$$;
