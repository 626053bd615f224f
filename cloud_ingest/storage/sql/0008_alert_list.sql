-- can2care storage schema, version 8 (docs/schema.md, docs/api.md): the care team's alert list
-- on a large table.

-- The unresolved alerts newest first: the care desk's usual list (open, acknowledged or
-- dispatched, often with a severity and a region) reads a tenth of the table in order instead
-- of skipping the resolved history (measured on 1,000,000 alerts: open + critical + region,
-- 22-35 ms by `alert_raised`, 4 ms by this one; benchmarks/bench_api.py).
CREATE INDEX alert_unresolved_raised ON alert (raised_at DESC, alert_id DESC)
    WHERE status <> 'resolved';
