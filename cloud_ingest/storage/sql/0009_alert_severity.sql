-- can2care storage schema, version 9 (docs/schema.md, docs/api.md): the care desk's list of
-- unresolved alerts of one severity.

-- Unresolved alerts of a severity, newest first: "open critical alerts", with a region or not,
-- reads only those rows in order (measured on 1,000,000 alerts, open + critical + region:
-- 1.6 ms by `alert_unresolved_raised`, 3,200 rows read; 0.65 ms by this one, 258 rows;
-- benchmarks/bench_api.py).
CREATE INDEX alert_unresolved_severity_raised
    ON alert (severity, raised_at DESC, alert_id DESC)
    WHERE status <> 'resolved';
