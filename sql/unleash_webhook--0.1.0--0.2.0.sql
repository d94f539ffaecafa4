-- unleash_webhook 0.1.0 -> 0.2.0. Append-only once 0.2.0 is released.
--
-- 0.2.0 changes the worker (prepared statements for its claim and record queries) and no SQL
-- object, so there is nothing to change here yet. Every later change of a table, view or
-- function goes into this file as well as into sql/bootstrap.sql or sql/finalize.sql, and
-- tests/e2e/test_upgrade.py proves the path with deliveries pending.
SELECT 1;
