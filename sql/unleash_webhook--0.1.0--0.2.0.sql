-- unleash_webhook 0.1.0 -> 0.2.0. Append-only once 0.2.0 is released.
--
-- Every change of a table, view or function since 0.1.0 goes into this file as well as into
-- sql/bootstrap.sql or sql/finalize.sql; tests/e2e/test_upgrade.py proves the path with
-- deliveries pending.

-- The queue is vacuumed after 2% of it changed, at full speed (see bootstrap.sql).
ALTER TABLE unleash_webhook._deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0);

-- The capture trigger writes one _inbox row per INSERT statement (see bootstrap.sql and
-- src/capture.rs); the worker turns inbox rows into deliveries.
CREATE TABLE unleash_webhook._inbox (
    event_table oid NOT NULL,
    event_ids   int8[] NOT NULL,     -- the statement's events that match a subscription
    event_types text[] NOT NULL,     -- their types
    pair_events int4[] NOT NULL,     -- pair i: event event_ids[pair_events[i]] ...
    pair_subs   int8[] NOT NULL,     -- ... goes to subscription pair_subs[i]
    queued_at   timestamptz NOT NULL
);
-- Rows live for milliseconds: vacuum often, so the worker's scan stays a few pages long.
ALTER TABLE unleash_webhook._inbox SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);
REVOKE ALL ON unleash_webhook._inbox FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox', '');

CREATE FUNCTION unleash_webhook._flush_inbox(max_rows integer DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    taken bigint;
BEGIN
    WITH batch AS (
        DELETE FROM unleash_webhook._inbox i
         WHERE i.ctid = ANY (ARRAY(SELECT x.ctid FROM unleash_webhook._inbox x LIMIT max_rows))
        RETURNING i.event_table, i.event_ids, i.event_types, i.pair_events, i.pair_subs,
                  i.queued_at
    ), queued AS (
        INSERT INTO unleash_webhook._deliveries
               (subscription_id, event_table, event_id, event_type, status, created_at,
                next_attempt_at, finished_at, last_error)
        SELECT p.sub, b.event_table, b.event_ids[p.ev], b.event_types[p.ev],
               CASE WHEN s.dropped_at IS NULL THEN 'pending' ELSE 'cancelled' END,
               b.queued_at, b.queued_at,
               CASE WHEN s.dropped_at IS NULL THEN NULL ELSE now() END,
               CASE WHEN s.dropped_at IS NULL THEN NULL ELSE 'subscription dropped' END
          FROM batch b
         CROSS JOIN LATERAL unnest(b.pair_events, b.pair_subs) AS p(ev, sub)
          JOIN unleash_webhook._subscriptions s ON s.id = p.sub
         ORDER BY b.queued_at, b.event_ids[p.ev], p.sub
    )
    SELECT count(*) INTO taken FROM batch;
    RETURN taken;
END;
$$;
REVOKE ALL ON FUNCTION unleash_webhook._flush_inbox(integer) FROM PUBLIC;

-- The trigger function keeps its OID (the triggers on events stay attached) and becomes the
-- Rust one. Until this runs, the 0.1.0 plpgsql function queues deliveries directly.
CREATE OR REPLACE FUNCTION unleash_webhook._capture() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', '_capture_wrapper';
REVOKE ALL ON FUNCTION unleash_webhook._capture() FROM PUBLIC;

-- The Rust function runs BEFORE INSERT FOR EACH ROW (see src/capture.rs); 0.1.0 attached it
-- AFTER INSERT FOR EACH STATEMENT. attach() makes the new kind, and the tables attached so far
-- are attached again.
CREATE OR REPLACE FUNCTION unleash_webhook.attach(events regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    kind "char";
BEGIN
    IF events IS NULL THEN
        RAISE EXCEPTION 'events must not be NULL' USING ERRCODE = '22004',
            HINT = 'Pass Unleash''s events table, e.g. ''public.events''.';
    END IF;
    SELECT string_agg(c, ', ') INTO missing
      FROM unnest(ARRAY['id', 'type', 'created_by', 'created_at', 'data', 'pre_data', 'tags',
                        'project', 'environment', 'feature_name', 'created_by_user_id',
                        'group_type', 'group_id']) c
     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = events AND a.attname = c AND a.attnum > 0
                          AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not an Unleash events table: it lacks %', events, missing
            USING ERRCODE = '42703', HINT = 'Attach the events table that Unleash writes (its schema is DATABASE_SCHEMA, default public).';
    END IF;
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = events;
    IF kind = 'p' THEN
        -- A row trigger on a partitioned table fires on the partition, which would then stand
        -- for the table in the queue; Unleash never partitions its events table.
        RAISE EXCEPTION '% is partitioned; partitioned events tables are not supported', events
            USING ERRCODE = '0A000', HINT = 'Attach the plain events table that Unleash''s migrations create.';
    END IF;
    IF kind <> 'r' THEN
        RAISE EXCEPTION '% is not a table', events
            USING ERRCODE = '42809', HINT = 'Attach the events table itself, not a view.';
    END IF;
    -- The trigger copies id and type, and the worker reads the rest as Unleash defines them.
    SELECT string_agg(format('%s (%s)', a.attname, format_type(a.atttypid, a.atttypmod)), ', ')
      INTO missing
      FROM pg_attribute a
     WHERE a.attrelid = events AND a.attnum > 0 AND NOT a.attisdropped
       AND NOT CASE a.attname
           WHEN 'id' THEN a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
           WHEN 'created_by_user_id' THEN a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
           WHEN 'created_at' THEN a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype)
           WHEN 'data' THEN a.atttypid IN ('json'::regtype, 'jsonb'::regtype)
           WHEN 'pre_data' THEN a.atttypid IN ('json'::regtype, 'jsonb'::regtype)
           WHEN 'tags' THEN a.atttypid IN ('json'::regtype, 'jsonb'::regtype)
           WHEN 'type' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'created_by' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'project' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'environment' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'feature_name' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'group_type' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           WHEN 'group_id' THEN a.atttypid IN ('text'::regtype, 'varchar'::regtype)
           ELSE true END;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not an Unleash events table: wrong type for %', events, missing
            USING ERRCODE = '42804', HINT = 'Attach the events table that Unleash''s migrations create (id integer, type varchar, data json, ...).';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = events AND t.tgname = 'unleash_webhook_capture') THEN
        RETURN;  -- already attached: attach is idempotent
    END IF;
    -- BEFORE, not AFTER: see capture.rs (Unleash's AFTER trigger serializes inserters).
    EXECUTE format('CREATE TRIGGER unleash_webhook_capture BEFORE INSERT ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION unleash_webhook._capture()', events);
END;
$$;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT unleash_webhook._event_tables() LOOP
        EXECUTE format('DROP TRIGGER unleash_webhook_capture ON %s', t);
        PERFORM unleash_webhook.attach(t);
    END LOOP;
END;
$$;

-- Flushes the inbox before cancelling.
CREATE OR REPLACE FUNCTION unleash_webhook.drop_subscription(name text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sub_id bigint := unleash_webhook._subscription_id(name);
    cancelled bigint;
BEGIN
    -- What was captured for it is cancelled like the rest of its queue.
    PERFORM unleash_webhook._flush_inbox();
    -- The secrets go with the subscription; the name and URL stay for the history.
    UPDATE unleash_webhook._subscriptions
       SET dropped_at = now(), enabled = false, "authorization" = NULL, headers = '{}',
           signing_secrets = '{}', updated_at = now()
     WHERE id = sub_id;
    UPDATE unleash_webhook._deliveries
       SET status = 'cancelled', finished_at = now(), last_error = 'subscription dropped'
     WHERE subscription_id = sub_id AND status IN ('pending', 'sending');
    GET DIAGNOSTICS cancelled = ROW_COUNT;
    RETURN cancelled;
END;
$$;

-- Pending counts what is still in the inbox too.
CREATE OR REPLACE VIEW unleash_webhook.subscription_stats AS
WITH c AS (
    -- one pass over the deliveries, whatever the number of subscriptions
    SELECT d.subscription_id,
           count(*) FILTER (WHERE d.status IN ('pending', 'sending')) AS pending,
           count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
           count(*) FILTER (WHERE d.status = 'failed') AS failed,
           count(*) FILTER (WHERE d.attempts > 1) AS retried,
           min(d.created_at) FILTER (WHERE d.status IN ('pending', 'sending')) AS oldest_pending_at,
           max(d.delivered_at) AS last_success_at,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - d.created_at) * 1000)
               FILTER (WHERE d.delivered_at > now() - interval '1 hour') AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - d.created_at) * 1000)
               FILTER (WHERE d.delivered_at > now() - interval '1 hour') AS p95_ms
      FROM unleash_webhook._deliveries d
     GROUP BY d.subscription_id
), q AS (
    -- captured, not yet taken from the inbox by the worker: pending too
    SELECT p.sub AS subscription_id, count(*) AS queued, min(i.queued_at) AS oldest
      FROM unleash_webhook._inbox i CROSS JOIN LATERAL unnest(i.pair_subs) AS p(sub)
     GROUP BY p.sub
), f AS (
    SELECT DISTINCT ON (d.subscription_id) d.subscription_id, d.finished_at,
           coalesce(d.last_error, 'HTTP ' || d.last_status_code) AS reason
      FROM unleash_webhook._deliveries d
     WHERE d.status = 'failed'
     ORDER BY d.subscription_id, d.finished_at DESC NULLS LAST
)
SELECT s.id,
       s.name AS subscription,
       s.enabled,
       coalesce(c.pending, 0) + coalesce(q.queued, 0) AS pending,
       coalesce(c.delivered, 0) AS delivered,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.retried, 0) AS retried,
       least(c.oldest_pending_at, q.oldest) AS oldest_pending_at,
       c.last_success_at,
       f.finished_at AS last_failure_at,
       f.reason AS last_failure_reason,
       c.p50_ms AS latency_p50_ms_1h,
       c.p95_ms AS latency_p95_ms_1h
FROM unleash_webhook._subscriptions s
LEFT JOIN c ON c.subscription_id = s.id
LEFT JOIN q ON q.subscription_id = s.id
LEFT JOIN f ON f.subscription_id = s.id
WHERE s.dropped_at IS NULL;
