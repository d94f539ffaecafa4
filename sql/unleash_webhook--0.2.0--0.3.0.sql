-- unleash_webhook 0.2.0 -> 0.3.0. Append-only once 0.3.0 is released.
--
-- 0.3.0 writes each delivery once: the capture trigger numbers the deliveries in the event's
-- own transaction (inbox rows get ids from _inbox_seq), the worker sends straight from the
-- inbox and writes one _deliveries row per delivery when its first attempt ends. This script
-- carries 0.2.0's inbox and log over: pending and claimed deliveries stay due, and every
-- attempt stays in the history. Between the restart with the new library and this UPDATE the
-- new capture trigger still writes 0.2.0's inbox, and the worker waits for this UPDATE.
--
-- Every definition below is the one in sql/bootstrap.sql or sql/finalize.sql;
-- tests/e2e/test_upgrade.py compares the updated schema with a fresh install.

-- The views read the tables that change: they are made again at the end.
DROP VIEW unleash_webhook.dead_letters;
DROP VIEW unleash_webhook.subscription_stats;
DROP VIEW unleash_webhook.delivery_attempts;
DROP VIEW unleash_webhook.deliveries;
DROP FUNCTION unleash_webhook._flush_inbox(integer);

-- The installation id: the oldest row (pg_dump keeps the table now; a restore adds its rows
-- beside the one CREATE EXTENSION made).
ALTER TABLE unleash_webhook._installation RENAME TO _installation_0_2;
ALTER INDEX unleash_webhook._installation_pkey RENAME TO _installation_0_2_pkey;
CREATE TABLE unleash_webhook._installation (
    id          uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO unleash_webhook._installation (id, created_at)
SELECT i.id, i.created_at FROM unleash_webhook._installation_0_2 i;
-- out of the extension first, which also takes it off pg_dump's list of tables to keep
ALTER EXTENSION unleash_webhook DROP TABLE unleash_webhook._installation_0_2;
DROP TABLE unleash_webhook._installation_0_2;

CREATE FUNCTION unleash_webhook._installation_id() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT replace(i.id::text, '-', '') FROM unleash_webhook._installation i
     ORDER BY i.created_at, i.id LIMIT 1;
END;

-- The log: one row per delivery, with its last attempt in it (the earlier ones in _attempts).
ALTER TABLE unleash_webhook._deliveries RENAME TO _deliveries_0_2;
ALTER INDEX unleash_webhook._deliveries_pkey RENAME TO _deliveries_0_2_pkey;
ALTER INDEX unleash_webhook._deliveries_due RENAME TO _deliveries_0_2_due;
CREATE TABLE unleash_webhook._deliveries (
    id               bigint PRIMARY KEY,
    subscription_id  bigint NOT NULL,
    event_table      regclass NOT NULL,
    event_id         bigint NOT NULL,
    event_type       text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,   -- every attempt ever made
    round_attempts   integer NOT NULL DEFAULT 0,   -- attempts since queued or redelivered
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL,         -- when the event was captured
    delivered_at     timestamptz,
    finished_at      timestamptz,
    last_status_code integer,
    last_error       text,
    request_body     text,                          -- the body as first sent
    -- the last attempt (the earlier ones are rows of _attempts)
    last_attempt_at  timestamptz,
    last_duration_ms double precision,
    last_error_class text,
    last_excerpt     text,
    -- what the last request's webhook-id ends with (see the deliveries view)
    content_hash     bigint
);
-- Claims walk this per subscription; it holds only unfinished rows, so it stays small however
-- long the log grows, and a delivery that never waits is never in it.
CREATE INDEX _deliveries_due ON unleash_webhook._deliveries (subscription_id, id)
    WHERE status IN ('pending', 'sending');
ALTER TABLE unleash_webhook._deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0);

-- 0.2.0's rows keep their ids; a delivery that 0.2.0 had claimed is due again (at least once).
INSERT INTO unleash_webhook._deliveries
       (id, subscription_id, event_table, event_id, event_type, status, attempts,
        round_attempts, next_attempt_at, lease_until, created_at, delivered_at, finished_at,
        last_status_code, last_error, request_body, last_attempt_at, last_duration_ms,
        last_error_class, last_excerpt, content_hash)
SELECT d.id, d.subscription_id, d.event_table::regclass, d.event_id, d.event_type,
       CASE WHEN d.status = 'sending' THEN 'pending' ELSE d.status END,
       d.attempts, d.round_attempts,
       CASE WHEN d.status IN ('pending', 'sending') THEN d.next_attempt_at END, NULL,
       d.created_at, d.delivered_at, d.finished_at, d.last_status_code, d.last_error,
       d.request_body, a.started_at, a.duration_ms, a.error_class, a.response_excerpt, NULL
  FROM unleash_webhook._deliveries_0_2 d
  LEFT JOIN unleash_webhook._attempts a ON a.delivery_id = d.id AND a.attempt = d.attempts;
-- the last attempt of each delivery lives in its _deliveries row now
DELETE FROM unleash_webhook._attempts a
 USING unleash_webhook._deliveries d
 WHERE a.delivery_id = d.id AND a.attempt = d.attempts AND d.last_attempt_at IS NOT NULL;
-- out of the extension first, which also takes it off pg_dump's list of tables to keep
ALTER EXTENSION unleash_webhook DROP TABLE unleash_webhook._deliveries_0_2;
DROP TABLE unleash_webhook._deliveries_0_2;
REVOKE ALL ON unleash_webhook._installation, unleash_webhook._deliveries FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._installation', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._deliveries', '');

-- The inbox: rows numbered from a sequence, at most 1,000 pairs each; 0.2.0's rows are
-- numbered after its last delivery id, so no new delivery id meets an old one.
CREATE SEQUENCE unleash_webhook._inbox_seq;

SELECT pg_catalog.setval('unleash_webhook._inbox_seq',
    (SELECT coalesce(max(d.id), 0) / 1000 + 1 FROM unleash_webhook._deliveries d));
ALTER TABLE unleash_webhook._inbox RENAME TO _inbox_0_2;
CREATE TABLE unleash_webhook._inbox (
    id          bigint NOT NULL,     -- from _inbox_seq; delivery ids id * 1000 + pair index
    event_table regclass NOT NULL,   -- a name in a dump: a restore finds the table again
    event_ids   int8[] NOT NULL,     -- the statement's events that match a subscription
    event_types text[] NOT NULL,     -- their types
    pair_events int4[] NOT NULL,     -- pair i (delivery id*1000 + i - 1): event event_ids[pair_events[i]] ...
    pair_subs   int8[] NOT NULL,     -- ... goes to subscription pair_subs[i]
    queued_at   timestamptz NOT NULL
);
-- Rows live for milliseconds: vacuum often, so the worker's scan stays a few pages long.
ALTER TABLE unleash_webhook._inbox SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM unleash_webhook._inbox_0_2 i ORDER BY i.queued_at LOOP
        FOR k IN 0 .. (cardinality(r.pair_subs) - 1) / 1000 LOOP
            INSERT INTO unleash_webhook._inbox
                   (id, event_table, event_ids, event_types, pair_events, pair_subs, queued_at)
            VALUES (nextval('unleash_webhook._inbox_seq'), r.event_table::regclass, r.event_ids,
                    r.event_types, r.pair_events[k * 1000 + 1 : k * 1000 + 1000],
                    r.pair_subs[k * 1000 + 1 : k * 1000 + 1000], r.queued_at);
        END LOOP;
    END LOOP;
END;
$$;
-- out of the extension first, which also takes it off pg_dump's list of tables to keep
ALTER EXTENSION unleash_webhook DROP TABLE unleash_webhook._inbox_0_2;
DROP TABLE unleash_webhook._inbox_0_2;
REVOKE ALL ON unleash_webhook._inbox FROM PUBLIC;
REVOKE ALL ON SEQUENCE unleash_webhook._inbox_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox_seq', '');

-- The views, as in bootstrap.sql.
CREATE VIEW unleash_webhook._queued AS
SELECT i.id * 1000 + p.n - 1 AS id,
       p.sub AS subscription_id,
       i.event_table,
       i.event_ids[p.ev] AS event_id,
       i.event_types[p.ev] AS event_type,
       i.queued_at
FROM unleash_webhook._inbox i
CROSS JOIN LATERAL unnest(i.pair_events, i.pair_subs) WITH ORDINALITY AS p(ev, sub, n)
WHERE NOT EXISTS (SELECT 1 FROM unleash_webhook._deliveries d
                   WHERE d.id = i.id * 1000 + p.n - 1);

CREATE VIEW unleash_webhook.deliveries AS
SELECT d.id,
       s.name AS subscription,
       d.subscription_id,
       d.event_id,
       d.event_type,
       d.status,
       d.attempts,
       d.created_at,
       d.next_attempt_at,
       d.delivered_at,
       d.finished_at,
       d.last_status_code,
       d.last_error,
       CASE WHEN d.content_hash IS NOT NULL
            THEN 'msg_' || i.id || '_' || d.id || '_' || lpad(to_hex(d.content_hash), 16, '0')
       END AS webhook_id,
       d.request_body
FROM unleash_webhook._deliveries d
JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
CROSS JOIN (SELECT unleash_webhook._installation_id() AS id) i
UNION ALL
SELECT q.id, s.name, q.subscription_id, q.event_id, q.event_type, 'queued', 0, q.queued_at,
       q.queued_at, NULL, NULL, NULL, NULL, NULL, NULL
FROM unleash_webhook._queued q
JOIN unleash_webhook._subscriptions s ON s.id = q.subscription_id;

CREATE VIEW unleash_webhook.delivery_attempts AS
SELECT a.delivery_id,
       s.name AS subscription,
       d.event_id,
       a.attempt,
       a.started_at,
       a.duration_ms,
       a.status_code,
       a.error_class,
       a.error,
       a.response_excerpt
FROM unleash_webhook._attempts a
JOIN unleash_webhook._deliveries d ON d.id = a.delivery_id
JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
UNION ALL
SELECT d.id, s.name, d.event_id, d.attempts, d.last_attempt_at, d.last_duration_ms,
       d.last_status_code, d.last_error_class, d.last_error, d.last_excerpt
FROM unleash_webhook._deliveries d
JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
WHERE d.last_attempt_at IS NOT NULL;

COMMENT ON VIEW unleash_webhook.deliveries IS
    'One row per event x subscription: queued (captured, not yet attempted), pending (waiting for a retry or a paused subscription), sending, delivered, failed or cancelled.';
COMMENT ON VIEW unleash_webhook.delivery_attempts IS
    'Every HTTP attempt: status code or error class, duration and a bounded response excerpt.';
COMMENT ON COLUMN unleash_webhook.deliveries.webhook_id IS
    'Sent as the webhook-id header, once the delivery has been attempted: msg_<installation>_<delivery id>_<hash of the URL, content type and body>. The same on every retry and redelivery of the same request; a request that changed (an altered subscription) gets a new one.';
COMMENT ON COLUMN unleash_webhook.deliveries.request_body IS
    'The body as first sent.';

-- The dead-letter list: deliveries that failed for good, until redelivered or purged.
CREATE VIEW unleash_webhook.dead_letters AS
SELECT d.id, d.subscription, d.event_id, d.event_type, d.attempts, d.created_at,
       d.finished_at AS failed_at, d.last_status_code, d.last_error
FROM unleash_webhook.deliveries d
WHERE d.status = 'failed';

-- One row per live subscription: what is waiting, what happened, how fast.
CREATE VIEW unleash_webhook.subscription_stats AS
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
    -- captured, not yet attempted: pending too
    SELECT q.subscription_id, count(*) AS queued, min(q.queued_at) AS oldest
      FROM unleash_webhook._queued q
     GROUP BY q.subscription_id
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

COMMENT ON VIEW unleash_webhook.dead_letters IS
    'Failed deliveries: retry one with redeliver(id), remove them with purge_failed().';
COMMENT ON VIEW unleash_webhook.subscription_stats IS
    'Per subscription: pending (queued, waiting or being sent), delivered, failed, retried (more than one attempt), last success and failure, latency from queueing to delivery over the last hour.';

-- A commit that makes a delivery of the log due wakes the worker for the log (src/pg/wake.rs).
CREATE FUNCTION unleash_webhook."_wake_for_log"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_wake_for_log_wrapper';
REVOKE ALL ON FUNCTION unleash_webhook._wake_for_log() FROM PUBLIC;

-- The API functions whose work changed, as in finalize.sql.
CREATE OR REPLACE FUNCTION unleash_webhook.resume_subscription(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE unleash_webhook._subscriptions SET enabled = true, updated_at = now()
     WHERE id = unleash_webhook._subscription_id(resume_subscription.name);
    -- Deliveries queued before the pause may send again now.
    PERFORM unleash_webhook._wake_for_log();
END;
$$;

CREATE OR REPLACE FUNCTION unleash_webhook.drop_subscription(name text) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sub_id bigint := unleash_webhook._subscription_id(name);
    cancelled bigint;
BEGIN
    -- The secrets go with the subscription; the name and URL stay for the history.
    UPDATE unleash_webhook._subscriptions
       SET dropped_at = now(), enabled = false, "authorization" = NULL, headers = '{}',
           signing_secrets = '{}', updated_at = now()
     WHERE id = sub_id;
    UPDATE unleash_webhook._deliveries
       SET status = 'cancelled', finished_at = now(), next_attempt_at = NULL, lease_until = NULL,
           last_error = 'subscription dropped'
     WHERE subscription_id = sub_id AND status IN ('pending', 'sending');
    GET DIAGNOSTICS cancelled = ROW_COUNT;
    RETURN cancelled + (SELECT count(*) FROM unleash_webhook._queued q
                         WHERE q.subscription_id = sub_id);
END;
$$;

CREATE OR REPLACE FUNCTION unleash_webhook.redeliver(delivery_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sub record;
BEGIN
    IF delivery_id IS NULL THEN
        RAISE EXCEPTION 'delivery_id must not be NULL' USING ERRCODE = '22004',
            HINT = 'SELECT id FROM unleash_webhook.deliveries WHERE status = ''failed'' lists candidates.';
    END IF;
    SELECT s.name, s.dropped_at INTO sub
      FROM unleash_webhook._deliveries d
      JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
     WHERE d.id = delivery_id;
    IF NOT FOUND THEN
        -- Captured and not yet attempted: it is on its way already.
        IF EXISTS (SELECT 1 FROM unleash_webhook._queued q WHERE q.id = delivery_id) THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'delivery % does not exist', delivery_id USING ERRCODE = '42704',
            HINT = 'SELECT id FROM unleash_webhook.deliveries lists deliveries.';
    END IF;
    IF sub.dropped_at IS NOT NULL THEN
        RAISE EXCEPTION 'delivery % belongs to dropped subscription %', delivery_id, quote_literal(sub.name)
            USING ERRCODE = '55000', HINT = 'Create the subscription again; a dropped one sends nothing.';
    END IF;
    UPDATE unleash_webhook._deliveries d
       SET status = 'pending', round_attempts = 0, next_attempt_at = now(), lease_until = NULL,
           finished_at = NULL
     WHERE d.id = delivery_id AND d.status <> 'sending';
    PERFORM unleash_webhook._wake_for_log();
END;
$$;

CREATE OR REPLACE FUNCTION unleash_webhook.replay(subscription text, since timestamptz,
                                       until timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sub unleash_webhook._subscriptions;
    tbl regclass;
    ids int8[];
    types text[];
    n integer;
    total bigint := 0;
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'since and until must not be NULL' USING ERRCODE = '22004',
            HINT = 'e.g. replay(''slack-prod'', now() - interval ''1 hour'').';
    END IF;
    IF since >= until THEN
        RAISE EXCEPTION 'since must be before until' USING ERRCODE = '22023',
            HINT = 'The window is [since, until).';
    END IF;
    SELECT * INTO sub FROM unleash_webhook._subscriptions s
     WHERE s.id = unleash_webhook._subscription_id(replay.subscription);
    FOR tbl IN SELECT unleash_webhook._event_tables() LOOP
        EXECUTE format(
            'SELECT array_agg(e.id::int8 ORDER BY e.id), array_agg(e.type::text ORDER BY e.id)
               FROM %s e
              WHERE e.created_at >= $1 AND e.created_at < $2
                AND unleash_webhook._matches(e.type, e.project, e.environment, $3, $4, $5)', tbl)
        INTO ids, types
        USING since, until, sub.event_types, sub.projects, sub.environments;
        n := coalesce(cardinality(ids), 0);
        FOR k IN 0 .. (n - 1) / 1000 LOOP
            EXIT WHEN n = 0;
            INSERT INTO unleash_webhook._inbox
                   (id, event_table, event_ids, event_types, pair_events, pair_subs, queued_at)
            SELECT nextval('unleash_webhook._inbox_seq'), tbl, ids[k * 1000 + 1 : k * 1000 + 1000],
                   types[k * 1000 + 1 : k * 1000 + 1000],
                   ARRAY(SELECT generate_series(1, least(1000, n - k * 1000))),
                   array_fill(sub.id, ARRAY[least(1000, n - k * 1000)]), now();
        END LOOP;
        total := total + n;
    END LOOP;
    IF total > 0 THEN
        PERFORM unleash_webhook._wake_at_commit();
    END IF;
    RETURN total;
END;
$$;

