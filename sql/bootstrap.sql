-- unleash_webhook: tables and views. Runs first in CREATE EXTENSION, before the Rust functions.
-- Every object lives in schema unleash_webhook (the control file pins it). Objects whose name
-- starts with "_" are private: they hold secrets or internal state and are read through views.
--
-- How a delivery flows through these tables (docs/architecture.md has the picture):
--   capture trigger  -> _inbox      one row per INSERT statement on events, in its transaction:
--                                   its (event, subscription) pairs, each with its delivery id
--   worker           -> sends the pairs straight from the inbox, then writes ONE _deliveries row
--                       per delivery with its outcome, and deletes the inbox row once every pair
--                       of it has a _deliveries row
--   retries, paused or slow subscriptions, redeliver(): _deliveries rows with status 'pending',
--                       claimed by the worker ('sending', with a lease) and updated once more;
--                       their earlier attempts move to _attempts

-- Refuse what the extension cannot run safely in, before anything is created.
DO $$
BEGIN
    -- Event text reaches Rust as UTF-8; another server encoding would be read as the wrong bytes.
    IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'unleash_webhook needs a UTF8 database, this one is %',
            pg_catalog.current_setting('server_encoding')
            USING ERRCODE = '0A000',
                  HINT = 'Unleash''s database should be UTF8 anyway: create it with ENCODING ''UTF8'' (and move the data with pg_dump) before CREATE EXTENSION.';
    END IF;
    -- CREATE EXTENSION reuses a schema of that name if one exists. One owned by another role,
    -- or holding objects already, could hold look-alikes of our functions planted by that role.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                WHERE n.nspname = 'unleash_webhook'
                  AND (n.nspowner <> (SELECT r.oid FROM pg_catalog.pg_roles r
                                       WHERE r.rolname = current_user)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc f WHERE f.pronamespace = n.oid)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typnamespace = n.oid)
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprnamespace = n.oid)))
    THEN
        RAISE EXCEPTION 'schema unleash_webhook exists already and is not empty or not owned by %',
            current_user
            USING ERRCODE = '42P06',
                  HINT = 'Look at what it holds (\dn+ unleash_webhook, \df unleash_webhook.*), drop it, then CREATE EXTENSION unleash_webhook.';
    END IF;
END;
$$;

-- Prefixes every webhook-id, so that a receiver that de-duplicates on webhook-id never confuses
-- two installations' delivery 17. The installation's id is the OLDEST row: pg_dump keeps this
-- table, and a restore (CREATE EXTENSION, which adds a new row, then the dumped rows) goes on
-- with the id it had, so redeliveries after a restore carry the webhook-ids receivers saw.
CREATE TABLE unleash_webhook._installation (
    id          uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO unleash_webhook._installation DEFAULT VALUES;

-- Subscriptions, with their secrets. Never dropped for real: drop_subscription() sets dropped_at
-- (and wipes the secrets) so that the delivery log keeps naming the subscription it belonged to,
-- and so that the queue needs no foreign key, whose per-row check would slow every event INSERT.
CREATE TABLE unleash_webhook._subscriptions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    url             text NOT NULL,
    event_types     text[] NOT NULL CHECK (cardinality(event_types) > 0),
    content_type    text NOT NULL DEFAULT 'application/json',
    "authorization" text,
    headers         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    body_template   text,
    projects        text[] NOT NULL DEFAULT '{}',
    environments    text[] NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    -- Standard Webhooks secrets, newest first; a second one is kept during a rotation.
    signing_secrets text[] NOT NULL DEFAULT '{}',
    -- Where import_unleash_addons() took it from: {"table": ..., "id": ..., "disabled_source": ...}
    imported_from   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    dropped_at      timestamptz
);
-- A dropped subscription's name may be reused.
CREATE UNIQUE INDEX _subscriptions_name_key ON unleash_webhook._subscriptions (name)
    WHERE dropped_at IS NULL;

-- Numbers inbox rows; a row's pairs are deliveries id * 1000 + 0 .. 999. Drawn in the event's
-- own transaction, so a delivery's id (and with it its webhook-id) is fixed before the worker
-- ever sees it, and the worker writes nothing before it sends.
CREATE SEQUENCE unleash_webhook._inbox_seq;

-- What the capture trigger queued and the worker has not yet finished: one row per INSERT
-- statement on events (or per 1,000 pairs of a bigger one), listing its (event, subscription)
-- pairs. Written in the event's transaction (logged: a crash loses nothing). No index, so that
-- the trigger's insert stays cheap: the worker reads what is there, and deletes a row in the
-- transaction that writes the _deliveries row of its last pair.
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

-- The delivery log: one row per delivery, written once when its first attempt ends (or when it
-- is cancelled, or put aside for a paused or slow subscription). status: delivered | failed |
-- cancelled, or pending (due at next_attempt_at: a retry, a paused or slow subscription,
-- redeliver()) -> sending (claimed, lease_until) -> ... Only those two states are indexed, so a
-- delivery that succeeds at once costs one heap row and one primary-key entry.
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

-- The attempts of a delivery before its last one (whose details are in _deliveries).
CREATE TABLE unleash_webhook._attempts (
    delivery_id      bigint NOT NULL,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      double precision NOT NULL,
    status_code      integer,
    error_class      text,
    error            text,
    response_excerpt text,
    PRIMARY KEY (delivery_id, attempt)
);

-- Secrets live in _subscriptions: nobody but the extension's owner reads the private tables.
REVOKE ALL ON unleash_webhook._installation, unleash_webhook._subscriptions,
    unleash_webhook._deliveries, unleash_webhook._attempts, unleash_webhook._inbox FROM PUBLIC;
REVOKE ALL ON SEQUENCE unleash_webhook._inbox_seq FROM PUBLIC;

-- pg_dump keeps the user data of an extension only for tables (and sequences) marked like this.
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._installation', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._attempts', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox_seq', '');

-- The installation id as webhook-ids carry it (32 hex digits). With the owner's rights: the
-- views that show webhook-ids are read by roles without rights on the table.
CREATE FUNCTION unleash_webhook._installation_id() RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT replace(i.id::text, '-', '') FROM unleash_webhook._installation i
     ORDER BY i.created_at, i.id LIMIT 1;
END;

-- Captured, not yet finished: the inbox's pairs that have no _deliveries row yet.
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
