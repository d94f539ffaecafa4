-- unleash_webhook 0.2.0 -> 0.3.0. Append-only once 0.3.0 is released.
--
-- 0.3.0 writes each delivery once: the capture trigger numbers the deliveries in the event's
-- own transaction (inbox rows get ids from _inbox_seq), the worker sends straight from the
-- inbox and writes one _deliveries row per delivery when its first attempt ends. This script
-- carries 0.2.0's inbox and log over: pending and claimed deliveries stay due, and every
-- attempt stays in the history. Between the restart with the new library and this UPDATE the
-- new capture trigger still writes 0.2.0's inbox, and the worker waits for this UPDATE.
-- 0.3.0 also pins what runs with the owner's rights against what the owner of Unleash's tables
-- could plant (see docs/security.md).
--
-- Every definition below is the one in sql/bootstrap.sql or sql/finalize.sql;
-- tests/e2e/test_upgrade.py compares the updated schema with a fresh install.

-- The views read the tables that change: they are made again below.
DROP VIEW unleash_webhook.dead_letters;
DROP VIEW unleash_webhook.subscription_stats;
DROP VIEW unleash_webhook.delivery_attempts;
DROP VIEW unleash_webhook.deliveries;
DROP FUNCTION unleash_webhook._flush_inbox(integer);
-- its result gained columns
DROP FUNCTION unleash_webhook.worker_status();

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
SECURITY DEFINER
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
    -- 8-byte columns first, then 4-byte ones, then the texts: no alignment padding between
    -- them (about 20 bytes a row, written to the WAL with every delivery)
    id               bigint PRIMARY KEY,
    subscription_id  bigint NOT NULL,
    event_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL,         -- when the event was captured
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    delivered_at     timestamptz,
    finished_at      timestamptz,
    -- the last attempt (the earlier ones are rows of _attempts)
    last_attempt_at  timestamptz,
    last_duration_ms double precision,
    -- what the last request's webhook-id ends with (see the deliveries view)
    content_hash     bigint,
    event_table      regclass NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,   -- every attempt ever made
    round_attempts   integer NOT NULL DEFAULT 0,   -- attempts since queued or redelivered
    last_status_code integer,
    request_body     text,                          -- the body as first sent
    event_type       text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    last_error_class text,
    last_error       text,
    last_excerpt     text
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
ALTER EXTENSION unleash_webhook DROP TABLE unleash_webhook._inbox_0_2;
DROP TABLE unleash_webhook._inbox_0_2;
REVOKE ALL ON unleash_webhook._inbox FROM PUBLIC;
REVOKE ALL ON SEQUENCE unleash_webhook._inbox_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox_seq', '');

-- New Rust functions (src/pg/wake.rs, src/pg/api.rs), as pgrx declares them.
CREATE FUNCTION unleash_webhook."_wake_for_log"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_wake_for_log_wrapper';
CREATE FUNCTION unleash_webhook."_masked_url"("url" TEXT) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_masked_url_wrapper';
CREATE FUNCTION unleash_webhook."_worker_state"() RETURNS TABLE (
    "last_error" TEXT, "last_error_at_us" bigint, "waiting_for_pid" INT)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_worker_state_wrapper';
-- preview's Rust half runs with its search_path pinned
CREATE OR REPLACE FUNCTION unleash_webhook."_preview"("subscription" TEXT, "event_id" bigint)
RETURNS TABLE ("method" TEXT, "url" TEXT, "headers" TEXT, "body" TEXT)
STRICT VOLATILE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', '_preview_wrapper';

-- The views, as in bootstrap.sql and finalize.sql.
CREATE OR REPLACE VIEW unleash_webhook.subscriptions AS
SELECT s.id,
       s.name,
       -- Secrets ride in URLs (a password, Slack's and Teams' paths, ?code=): the host and the
       -- path's shape only.
       unleash_webhook._masked_url(s.url) AS url,
       s.event_types,
       s.content_type,
       s."authorization" IS NOT NULL AS has_authorization,
       ARRAY(SELECT jsonb_object_keys(s.headers) ORDER BY 1) AS header_names,
       s.body_template,
       s.projects,
       s.environments,
       s.enabled,
       cardinality(s.signing_secrets) AS signing_secrets,
       s.imported_from,
       s.created_at,
       s.updated_at
FROM unleash_webhook._subscriptions s
WHERE s.dropped_at IS NULL;

COMMENT ON VIEW unleash_webhook.subscriptions IS
    'Webhook subscriptions, without secrets: authorization and header values are never shown, nor the URL''s password, path segments or query values (url shows the host and the path''s shape).';

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

-- The functions that are new or changed, as in finalize.sql.
CREATE FUNCTION unleash_webhook._columns_problem(tbl regclass, cols text[], types text[],
                                                 OUT missing text, OUT wrong text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT string_agg(c.col, ', ' ORDER BY c.n) FILTER (WHERE a.attname IS NULL),
           string_agg(format('%s (%s)', c.col, format_type(a.atttypid, a.atttypmod)), ', '
                      ORDER BY c.n)
               FILTER (WHERE a.attname IS NOT NULL
                         AND NOT format_type(a.atttypid, NULL) = ANY (string_to_array(c.allowed, ',')))
      FROM unnest(cols, types) WITH ORDINALITY AS c(col, allowed, n)
      LEFT JOIN pg_catalog.pg_attribute a
             ON a.attrelid = tbl AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped;
END;


CREATE FUNCTION unleash_webhook._update_runs_code(tbl regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT concat_ws(', ',
        (SELECT 'not a plain table' FROM pg_catalog.pg_class c
          WHERE c.oid = tbl AND c.relkind <> 'r'),
        (SELECT 'triggers' FROM pg_catalog.pg_trigger t
          WHERE t.tgrelid = tbl AND NOT t.tgisinternal LIMIT 1),
        (SELECT 'rules' FROM pg_catalog.pg_rewrite r WHERE r.ev_class = tbl LIMIT 1),
        (SELECT 'CHECK or exclusion constraints' FROM pg_catalog.pg_constraint k
          WHERE k.conrelid = tbl AND k.contype IN ('c', 'x') LIMIT 1),
        (SELECT 'generated columns' FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = tbl AND a.attgenerated <> '' AND NOT a.attisdropped LIMIT 1),
        (SELECT 'index expressions' FROM pg_catalog.pg_index i
          WHERE i.indrelid = tbl AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) LIMIT 1),
        (SELECT 'child tables' FROM pg_catalog.pg_inherits h WHERE h.inhparent = tbl LIMIT 1),
        (SELECT 'domain-typed columns' FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
          WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND ty.typtype = 'd'
          LIMIT 1));
END;


CREATE OR REPLACE FUNCTION unleash_webhook.alter_subscription(
    name text,
    url text DEFAULT NULL,
    event_types text[] DEFAULT NULL,
    content_type text DEFAULT NULL,
    "authorization" text DEFAULT NULL,
    headers jsonb DEFAULT NULL,
    body_template text DEFAULT NULL,
    projects text[] DEFAULT NULL,
    environments text[] DEFAULT NULL,
    enabled boolean DEFAULT NULL,
    new_name text DEFAULT NULL,
    signing_secret text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
-- as create_subscription: definer's rights, and no failing statement (with secrets) in the log
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
    sub_id bigint := unleash_webhook._subscription_id(name);
    cur unleash_webhook._subscriptions;
    missing text;
BEGIN
    SELECT * INTO cur FROM unleash_webhook._subscriptions s WHERE s.id = sub_id FOR UPDATE;
    -- The secrets go wherever the url points: whoever changes it must give them again (or an
    -- empty string to remove them), or a role allowed to alter subscriptions could collect
    -- them at its own server.
    IF url IS DISTINCT FROM cur.url AND url IS NOT NULL THEN
        missing := concat_ws(', ',
            CASE WHEN cur."authorization" IS NOT NULL AND "authorization" IS NULL
                 THEN 'authorization' END,
            CASE WHEN cur.headers <> '{}' AND alter_subscription.headers IS NULL THEN 'headers' END,
            CASE WHEN cardinality(cur.signing_secrets) > 0 AND signing_secret IS NULL
                 THEN 'signing_secret' END);
        IF missing <> '' THEN
            RAISE EXCEPTION 'a new url for subscription % needs its secrets again: %',
                quote_literal(cur.name), missing
                USING ERRCODE = '22023',
                      HINT = 'Pass ' || missing || ' again with the new url (an empty string removes one): they are sent to whatever the url names.';
        END IF;
    END IF;
    cur.url := coalesce(url, cur.url);
    cur.event_types := coalesce(event_types, cur.event_types);
    cur.content_type := coalesce(content_type, cur.content_type);
    cur."authorization" := CASE WHEN "authorization" IS NULL THEN cur."authorization"
                                ELSE nullif("authorization", '') END;
    cur.headers := coalesce(headers, cur.headers);
    cur.body_template := CASE WHEN body_template IS NULL THEN cur.body_template
                              ELSE nullif(body_template, '') END;
    cur.projects := coalesce(projects, cur.projects);
    cur.environments := coalesce(environments, cur.environments);
    cur.enabled := coalesce(enabled, cur.enabled);
    PERFORM unleash_webhook._validate_subscription(cur.url, cur.event_types, cur.content_type,
        cur."authorization", cur.headers, cur.body_template, cur.projects, cur.environments,
        nullif(signing_secret, ''));
    -- A new secret starts a rotation: receivers may verify with either until
    -- end_secret_rotation() drops the previous one.
    IF signing_secret = '' THEN
        cur.signing_secrets := '{}';
    ELSIF signing_secret IS NOT NULL AND signing_secret IS DISTINCT FROM cur.signing_secrets[1] THEN
        cur.signing_secrets := ARRAY[signing_secret] || cur.signing_secrets[1:1];
    END IF;
    IF new_name IS NOT NULL AND new_name <> cur.name THEN
        IF btrim(new_name) = '' OR length(new_name) > 200 THEN
            RAISE EXCEPTION 'subscription name must be a non-empty string of at most 200 characters'
                USING ERRCODE = '22023', HINT = 'Pass a short unique name, e.g. ''slack-prod''.';
        END IF;
        IF EXISTS (SELECT 1 FROM unleash_webhook._subscriptions s
                   WHERE s.name = new_name AND s.dropped_at IS NULL) THEN
            RAISE EXCEPTION 'subscription % already exists', quote_literal(new_name)
                USING ERRCODE = '42710', HINT = 'Choose another new_name.';
        END IF;
        cur.name := new_name;
    END IF;
    UPDATE unleash_webhook._subscriptions s
       SET name = cur.name, url = cur.url, event_types = cur.event_types,
           content_type = cur.content_type, "authorization" = cur."authorization",
           headers = cur.headers, body_template = cur.body_template, projects = cur.projects,
           environments = cur.environments, enabled = cur.enabled,
           signing_secrets = cur.signing_secrets, updated_at = now()
     WHERE s.id = sub_id;
END;
$$;


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


CREATE OR REPLACE FUNCTION unleash_webhook.import_unleash_addons(addons regclass DEFAULT 'public.addons'::text::regclass,
                                                      disable_source boolean DEFAULT false)
RETURNS TABLE (addon_id integer, subscription text, action text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
    p jsonb;
    hdrs jsonb;
    tpl text;
    ct text;
    auth text;
    types text[];
    projs text[];
    envs text[];
    want_enabled boolean;
    problem text;
    cur unleash_webhook._subscriptions;
BEGIN
    IF addons IS NULL THEN
        RAISE EXCEPTION 'addons must not be NULL' USING ERRCODE = '22004',
            HINT = 'Pass Unleash''s addons table, e.g. ''public.addons''.';
    END IF;
    SELECT p.missing, p.wrong INTO detail, problem
      FROM unleash_webhook._columns_problem(addons,
               ARRAY['id', 'provider', 'enabled', 'parameters', 'events', 'projects',
                     'environments'],
               ARRAY['smallint,integer,bigint', 'text,character varying', 'boolean',
                     'json,jsonb', 'json,jsonb', 'json,jsonb', 'json,jsonb']) p;
    IF detail IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not Unleash''s addons table: it lacks %', addons, detail
            USING ERRCODE = '42703', HINT = 'Pass the addons table of Unleash''s database, e.g. ''public.addons''.';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not Unleash''s addons table: wrong type for %', addons, problem
            USING ERRCODE = '42804', HINT = 'Pass the addons table of Unleash''s database, e.g. ''public.addons''.';
    END IF;
    -- We read it, and with disable_source update it, with the caller's rights (a superuser's):
    -- nothing its owner wrote may run then.
    problem := unleash_webhook._update_runs_code(addons);
    IF problem <> '' THEN
        RAISE EXCEPTION 'table % could run its owner''s code when read or updated: it has %', addons, problem
            USING ERRCODE = '55000', HINT = 'Unleash''s addons table has none of these: check who changed it; import from a plain copy (CREATE TABLE ... AS SELECT * FROM addons) and disable the addons in Unleash by hand.';
    END IF;
    FOR a IN EXECUTE format(
        'SELECT id, enabled, parameters::text AS parameters, events::text AS events,
                projects::text AS projects, environments::text AS environments
           FROM %s WHERE provider = ''webhook'' ORDER BY id', addons)
    LOOP
        addon_id := a.id;
        subscription := 'unleash-addon-' || a.id;
        detail := NULL;
        BEGIN
            p := coalesce(a.parameters::jsonb, '{}');
            hdrs := '{}';
            -- Unleash ignores customHeaders of one character or less, and parses the rest.
            IF length(coalesce(p ->> 'customHeaders', '')) > 1 THEN
                BEGIN
                    hdrs := (p ->> 'customHeaders')::jsonb;
                EXCEPTION WHEN others THEN
                    RAISE EXCEPTION 'customHeaders is not valid JSON' USING ERRCODE = '22023';
                END;
            END IF;
            tpl := CASE WHEN length(coalesce(p ->> 'bodyTemplate', '')) > 1 THEN p ->> 'bodyTemplate' END;
            ct := coalesce(nullif(p ->> 'contentType', ''), 'application/json');
            auth := nullif(p ->> 'authorization', '');
            types := ARRAY(SELECT jsonb_array_elements_text(coalesce(a.events::jsonb, '[]')));
            projs := ARRAY(SELECT jsonb_array_elements_text(coalesce(a.projects::jsonb, '[]')));
            envs := ARRAY(SELECT jsonb_array_elements_text(coalesce(a.environments::jsonb, '[]')));
            SELECT * INTO cur FROM unleash_webhook._subscriptions s
             WHERE s.name = subscription AND s.dropped_at IS NULL;
            want_enabled := coalesce(a.enabled, true);
            -- An addon we disabled ourselves says nothing about whether the subscription is on.
            IF cur.id IS NOT NULL AND NOT want_enabled
               AND coalesce((cur.imported_from ->> 'disabled_source')::boolean, false) THEN
                want_enabled := cur.enabled;
            END IF;
            IF cur.id IS NULL THEN
                PERFORM unleash_webhook.create_subscription(subscription, p ->> 'url', types, ct,
                    auth, hdrs, tpl, projs, envs, want_enabled);
                action := 'created';
            ELSIF (cur.url, cur.event_types, cur.content_type, cur."authorization", cur.headers,
                   cur.body_template, cur.projects, cur.environments, cur.enabled)
                  IS NOT DISTINCT FROM
                  (p ->> 'url', types, ct, auth, hdrs, tpl, projs, envs, want_enabled) THEN
                action := 'unchanged';
            ELSE
                PERFORM unleash_webhook.alter_subscription(subscription, url => p ->> 'url',
                    event_types => types, content_type => ct,
                    "authorization" => coalesce(auth, ''), headers => hdrs,
                    body_template => coalesce(tpl, ''), projects => projs,
                    environments => envs, enabled => want_enabled);
                action := 'updated';
            END IF;
            UPDATE unleash_webhook._subscriptions s
               SET imported_from = jsonb_build_object('table', addons::text, 'id', a.id,
                       'disabled_source', disable_source
                           OR coalesce((cur.imported_from ->> 'disabled_source')::boolean, false))
             WHERE s.name = subscription AND s.dropped_at IS NULL;
            IF disable_source AND coalesce(a.enabled, true) THEN
                EXECUTE format('UPDATE %s SET enabled = false WHERE id = $1', addons) USING a.id;
                detail := 'disabled the addon in Unleash';
            END IF;
        EXCEPTION WHEN others THEN
            action := 'skipped';
            detail := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;


CREATE OR REPLACE FUNCTION unleash_webhook.attach(events regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    wrong text;
    kind "char";
BEGIN
    IF events IS NULL THEN
        RAISE EXCEPTION 'events must not be NULL' USING ERRCODE = '22004',
            HINT = 'Pass Unleash''s events table, e.g. ''public.events''.';
    END IF;
    SELECT p.missing, p.wrong INTO missing, wrong
      FROM unleash_webhook._columns_problem(events,
               ARRAY['id', 'type', 'created_by', 'created_at', 'data', 'pre_data', 'tags',
                     'project', 'environment', 'feature_name', 'created_by_user_id',
                     'group_type', 'group_id'],
               -- the trigger copies id and type; the worker reads the rest as Unleash defines them
               ARRAY['smallint,integer,bigint', 'text,character varying', 'text,character varying',
                     'timestamp with time zone,timestamp without time zone', 'json,jsonb',
                     'json,jsonb', 'json,jsonb', 'text,character varying',
                     'text,character varying', 'text,character varying',
                     'smallint,integer,bigint', 'text,character varying',
                     'text,character varying']) p;
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
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not an Unleash events table: wrong type for %', events, wrong
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


CREATE OR REPLACE FUNCTION unleash_webhook.preview(subscription text, event_id bigint)
RETURNS TABLE (method text, url text, headers jsonb, body text)
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT p.method, p.url, p.headers::jsonb, p.body
      FROM unleash_webhook._preview(subscription, event_id) p;
END;


CREATE FUNCTION unleash_webhook.worker_status()
RETURNS TABLE (pid integer, running boolean, started_at timestamptz, last_activity_at timestamptz,
               in_flight integer, attempts bigint, delivered bigint, failed bigint,
               retries bigint, purged bigint, serves_this_database boolean,
               oldest_pending_at timestamptz, last_error text, last_error_at timestamptz,
               waiting_for_pid integer)
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT s.pid, s.pid IS NOT NULL, to_timestamp(s.started_at_us / 1e6),
           to_timestamp(s.last_activity_us / 1e6), s.in_flight, s.attempts, s.delivered,
           s.failed, s.retries, s.purged,
           -- in another database the extension captures, and nothing ever sends
           current_setting('unleash_webhook.database_name', true) = current_database(),
           (SELECT min(d.created_at) FROM unleash_webhook.deliveries d
             WHERE d.status IN ('queued', 'pending', 'sending')),
           w.last_error, to_timestamp(w.last_error_at_us / 1e6), w.waiting_for_pid
      FROM unleash_webhook._worker_stats() s, unleash_webhook._worker_state() w;
END;


COMMENT ON FUNCTION unleash_webhook.worker_status() IS
    'The delivery worker: pid, start time, attempts in flight and totals since start; whether it serves this database; the oldest delivery waiting; the last problem it logged; the pid of a lock it waits for.';

REVOKE ALL ON FUNCTION
    unleash_webhook.worker_status(),
    unleash_webhook._wake_for_log(),
    unleash_webhook._destination_error(text),
    unleash_webhook._columns_problem(regclass, text[], text[]),
    unleash_webhook._update_runs_code(regclass),
    unleash_webhook._preview(text, bigint)
FROM PUBLIC;
