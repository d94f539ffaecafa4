-- unleash_webhook: tables and views. Runs first in CREATE EXTENSION, before the Rust functions.
-- Every object lives in schema unleash_webhook (the control file pins it). Objects whose name
-- starts with "_" are private: they hold secrets or internal state and are read through views.

-- One row per installation: gives delivery ids a prefix that is unique across reinstalls, so a
-- receiver that de-duplicates on webhook-id never confuses two installations' delivery 17.
CREATE TABLE unleash_webhook._installation (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
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

-- The queue and the outcome in one table: one row per event x matching subscription, written by
-- the capture trigger in the event's own transaction (logged, so it survives any crash).
-- status: pending -> sending (claimed by the worker, lease_until set) -> delivered | failed,
-- or pending -> cancelled when its subscription is dropped. A crash while 'sending' puts the row
-- back to 'pending' (at-least-once; the webhook-id stays the same).
CREATE TABLE unleash_webhook._deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  bigint NOT NULL,
    event_table      oid NOT NULL,
    event_id         bigint NOT NULL,
    event_type       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,   -- every attempt ever made
    round_attempts   integer NOT NULL DEFAULT 0,   -- attempts since queued or redelivered
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    finished_at      timestamptz,
    last_status_code integer,
    last_error       text,
    request_body     text                           -- the rendered body, kept once
);
-- Every delivery is updated twice (claimed, finished) and later deleted: without frequent
-- vacuums the claim walks ever more dead index entries. Vacuum after 2% of the table changed,
-- at full speed.
ALTER TABLE unleash_webhook._deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0);
-- The worker's claim walks this per subscription; it holds only unfinished rows, so it stays
-- small however long the history grows.
CREATE INDEX _deliveries_due ON unleash_webhook._deliveries (subscription_id, id)
    WHERE status IN ('pending', 'sending');
CREATE INDEX _deliveries_event ON unleash_webhook._deliveries (event_id);
-- For the retention purge, which deletes finished rows oldest first.
CREATE INDEX _deliveries_finished ON unleash_webhook._deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

-- What the capture trigger queued and the worker has not yet turned into deliveries: one row
-- per INSERT statement on events, listing its (event, subscription) pairs. Written in the
-- event's transaction (logged, so a crash loses nothing); the worker deletes a row in the same
-- transaction that inserts its deliveries (_flush_inbox), a moment after the commit. No index:
-- the trigger's insert stays cheap, and the worker takes whatever is there.
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

-- Every HTTP attempt, one row each, written by the worker after the attempt ends.
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

-- pg_dump keeps the user data of an extension only for tables marked like this.
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._attempts', '');
SELECT pg_catalog.pg_extension_config_dump('unleash_webhook._inbox', '');

CREATE VIEW unleash_webhook.subscriptions AS
SELECT s.id,
       s.name,
       -- A password in the URL is a secret: show that one is there, not what it is.
       regexp_replace(s.url, '^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*):[^/@]*@', '\1:***@') AS url,
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
       'msg_' || replace(i.id::text, '-', '') || '_' || d.id AS webhook_id,
       d.request_body
FROM unleash_webhook._deliveries d
JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id
CROSS JOIN unleash_webhook._installation i;

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
JOIN unleash_webhook._subscriptions s ON s.id = d.subscription_id;

COMMENT ON VIEW unleash_webhook.subscriptions IS
    'Webhook subscriptions, without secrets: authorization and header values are never shown.';
COMMENT ON VIEW unleash_webhook.deliveries IS
    'One row per event x subscription: pending, sending, delivered, failed or cancelled.';
COMMENT ON VIEW unleash_webhook.delivery_attempts IS
    'Every HTTP attempt: status code or error class, duration and a bounded response excerpt.';
COMMENT ON COLUMN unleash_webhook.deliveries.webhook_id IS
    'Sent as the webhook-id header; the same on every retry and redelivery of this delivery.';
COMMENT ON COLUMN unleash_webhook.deliveries.request_body IS
    'The body as rendered for the first attempt.';

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

COMMENT ON VIEW unleash_webhook.dead_letters IS
    'Failed deliveries: retry one with redeliver(id), remove them with purge_failed().';
COMMENT ON VIEW unleash_webhook.subscription_stats IS
    'Per subscription: pending, delivered, failed, retried (more than one attempt), last success and failure, latency from queueing to delivery over the last hour.';
