-- unleash_webhook 0.1.0 -> 0.2.0. Append-only once 0.2.0 is released.
--
-- Every change of a table, view or function since 0.1.0 goes into this file as well as into
-- sql/bootstrap.sql or sql/finalize.sql; tests/e2e/test_upgrade.py proves the path with
-- deliveries pending.

-- The queue is vacuumed after 2% of it changed, at full speed (see bootstrap.sql).
ALTER TABLE unleash_webhook._deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0);
