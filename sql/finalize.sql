-- unleash_webhook: the SQL API, the capture trigger, and attaching it. Runs last in CREATE
-- EXTENSION, after the Rust functions (_template_error, _url_error, _wake_at_commit) exist.
--
-- Errors are raised here, in the caller's session, with a specific SQLSTATE and a hint:
--   22004 null_value_not_allowed, 22023 invalid_parameter_value, 42704 undefined_object,
--   42710 duplicate_object, 42P01 undefined_table, 42703 undefined_column.
-- Messages never contain an authorization or header value.

-- The subscriptions without their secrets (it needs _masked_url, a Rust function).
CREATE VIEW unleash_webhook.subscriptions AS
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

-- Checks one subscription's settings; raises on the first bad one. Shared by create and alter.
CREATE FUNCTION unleash_webhook._validate_subscription(
    url text, event_types text[], content_type text, "authorization" text, headers jsonb,
    body_template text, projects text[], environments text[], signing_secret text
) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
    h record;
BEGIN
    IF array_ndims(event_types) > 1 OR array_ndims(projects) > 1 OR array_ndims(environments) > 1 THEN
        RAISE EXCEPTION 'event_types, projects and environments must be one-dimensional arrays'
            USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''feature-created'', ''feature-archived''].';
    END IF;
    problem := unleash_webhook._url_error(url);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid url: %', problem
            USING ERRCODE = '22023', HINT = 'Use an absolute http:// or https:// URL with a host, e.g. https://hooks.example.com/unleash.';
    END IF;
    problem := unleash_webhook._destination_error(url);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'destination refused: %', problem
            USING ERRCODE = '22023', HINT = 'Private, loopback, link-local and metadata addresses are refused unless unleash_webhook.destination_allowlist allows them (hosts, IPs or CIDRs, * for all).';
    END IF;
    IF event_types IS NULL OR cardinality(event_types) = 0 THEN
        RAISE EXCEPTION 'event_types must name at least one event type'
            USING ERRCODE = '22023', HINT = 'Pass e.g. ARRAY[''feature-created'', ''feature-environment-enabled''].';
    END IF;
    IF array_position(event_types, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(event_types) t WHERE btrim(t) = '' OR length(t) > 255) THEN
        RAISE EXCEPTION 'event_types must not contain NULL, empty or over-long strings'
            USING ERRCODE = '22023', HINT = 'Each element is an Unleash event type such as feature-created; see unleash_webhook.event_types().';
    END IF;
    IF content_type IS NULL OR btrim(content_type) = '' OR content_type ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' THEN
        RAISE EXCEPTION 'invalid content_type: it must be non-empty, without CR, LF or control characters'
            USING ERRCODE = '22023', HINT = 'Use e.g. application/json.';
    END IF;
    IF "authorization" ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' THEN
        RAISE EXCEPTION 'invalid authorization: it contains CR, LF or a control character'
            USING ERRCODE = '22023', HINT = 'Pass the header value only, e.g. Bearer <token>, on one line.';
    END IF;
    IF headers IS NULL OR jsonb_typeof(headers) <> 'object' THEN
        RAISE EXCEPTION 'headers must be a JSON object of strings'
            USING ERRCODE = '22023', HINT = 'Pass e.g. ''{"X-Team": "flags"}''::jsonb.';
    END IF;
    FOR h IN SELECT key, value FROM jsonb_each(headers) LOOP
        IF h.key !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$' THEN
            RAISE EXCEPTION 'invalid header name %', quote_literal(left(h.key, 100))
                USING ERRCODE = '22023', HINT = 'A header name is an HTTP token: letters, digits and !#$%&''*+-.^_`|~ only.';
        END IF;
        IF lower(h.key) IN ('host', 'content-length', 'transfer-encoding', 'connection') THEN
            RAISE EXCEPTION 'header % cannot be set', quote_literal(h.key)
                USING ERRCODE = '22023', HINT = 'Host, Content-Length, Transfer-Encoding and Connection are set by the HTTP client from the URL and the body.';
        END IF;
        IF jsonb_typeof(h.value) <> 'string' THEN
            RAISE EXCEPTION 'header % must have a string value, not %', quote_literal(h.key), jsonb_typeof(h.value)
                USING ERRCODE = '22023', HINT = 'Headers are a JSON object of strings, e.g. {"X-Team": "flags"}.';
        END IF;
        IF (h.value #>> '{}') ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' THEN
            RAISE EXCEPTION 'the value of header % contains CR, LF or a control character', quote_literal(h.key)
                USING ERRCODE = '22023', HINT = 'Header values must fit on one line.';
        END IF;
    END LOOP;
    problem := unleash_webhook._template_error(body_template);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'body_template does not compile: %', problem
            USING ERRCODE = '22023', HINT = 'The template is Mustache as Unleash renders it (mustache.js); check that every {{#section}} is closed and every tag ends with }}.';
    END IF;
    problem := unleash_webhook._signing_secret_error(signing_secret);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid signing_secret: %', problem
            USING ERRCODE = '22023', HINT = 'Use whsec_ followed by base64 of 24 to 64 random bytes; unleash_webhook.generate_signing_secret() makes one.';
    END IF;
    IF projects IS NULL OR array_position(projects, NULL) IS NOT NULL
       OR environments IS NULL OR array_position(environments, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'projects and environments must be arrays without NULL elements'
            USING ERRCODE = '22004', HINT = 'Pass ''{}'' (or ARRAY[''*'']) for all projects or environments.';
    END IF;
END;
$$;

-- Which of `cols` the table lacks, and which it has with a type not among the allowed ones
-- (types[i]: the allowed types of cols[i], comma-separated); NULL when none. One check for
-- attach() (Unleash's events) and import_unleash_addons() (Unleash's addons).
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

-- Why an UPDATE of the table could run code its owner wrote (a trigger, a rule, a CHECK, a
-- generated column, an index expression, a child table, a domain-typed column), or NULL when
-- it cannot. Such code would run with the rights of whoever updates, which for
-- import_unleash_addons() is a superuser.
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

-- Looks a live subscription up by name, for alter/pause/resume/drop; raises 42704 when absent.
CREATE FUNCTION unleash_webhook._subscription_id(name text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_id bigint;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'subscription name must not be NULL'
            USING ERRCODE = '22004', HINT = 'Pass the name given to create_subscription().';
    END IF;
    SELECT s.id INTO found_id FROM unleash_webhook._subscriptions s
    WHERE s.name = _subscription_id.name AND s.dropped_at IS NULL;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'subscription % does not exist', quote_literal(left(name, 200))
            USING ERRCODE = '42704', HINT = 'SELECT name FROM unleash_webhook.subscriptions lists them.';
    END IF;
    RETURN found_id;
END;
$$;

CREATE FUNCTION unleash_webhook.create_subscription(
    name text,
    url text,
    event_types text[],
    content_type text DEFAULT 'application/json',
    "authorization" text DEFAULT NULL,
    headers jsonb DEFAULT '{}',
    body_template text DEFAULT NULL,
    projects text[] DEFAULT '{}',
    environments text[] DEFAULT '{}',
    enabled boolean DEFAULT true,
    signing_secret text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
-- Definer's rights, so that a role granted EXECUTE needs no rights on the tables; and no
-- STATEMENT line in the server log when a call fails, because the statement holds secrets.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF name IS NULL OR btrim(name) = '' OR length(name) > 200 THEN
        RAISE EXCEPTION 'subscription name must be a non-empty string of at most 200 characters'
            USING ERRCODE = CASE WHEN name IS NULL THEN '22004' ELSE '22023' END,
                  HINT = 'Pass a short unique name, e.g. ''slack-prod''.';
    END IF;
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be NULL' USING ERRCODE = '22004', HINT = 'Pass true or false.';
    END IF;
    -- As in Unleash (and alter_subscription): an empty authorization is none.
    "authorization" := nullif("authorization", '');
    PERFORM unleash_webhook._validate_subscription(url, event_types, content_type, "authorization",
        headers, body_template, projects, environments, signing_secret);
    IF EXISTS (SELECT 1 FROM unleash_webhook._subscriptions s
               WHERE s.name = create_subscription.name AND s.dropped_at IS NULL) THEN
        RAISE EXCEPTION 'subscription % already exists', quote_literal(name)
            USING ERRCODE = '42710', HINT = 'Choose another name, or change it with unleash_webhook.alter_subscription().';
    END IF;
    INSERT INTO unleash_webhook._subscriptions AS s
        (name, url, event_types, content_type, "authorization", headers, body_template,
         projects, environments, enabled, signing_secrets)
    VALUES (name, url, event_types, content_type, "authorization", headers, body_template,
            projects, environments, enabled,
            CASE WHEN signing_secret IS NULL THEN '{}'::text[] ELSE ARRAY[signing_secret] END)
    RETURNING s.id INTO new_id;
    RETURN new_id;
END;
$$;

-- NULL means "unchanged". To remove the authorization or the body template, pass ''.
CREATE FUNCTION unleash_webhook.alter_subscription(
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

CREATE FUNCTION unleash_webhook.pause_subscription(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE unleash_webhook._subscriptions SET enabled = false, updated_at = now()
     WHERE id = unleash_webhook._subscription_id(pause_subscription.name);
END;

CREATE FUNCTION unleash_webhook.resume_subscription(name text) RETURNS void
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

-- Returns how many deliveries it cancelled (waiting, or captured and not yet attempted). Their
-- rows and attempts stay as history. Touches neither the inbox nor a row the worker has claimed
-- for long: what the worker still holds of it is recorded as cancelled when it comes to it.
CREATE FUNCTION unleash_webhook.drop_subscription(name text) RETURNS bigint
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

-- Queues a fresh round of attempts for any delivery, whatever its state; the webhook-id stays.
CREATE FUNCTION unleash_webhook.redeliver(delivery_id bigint) RETURNS void
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

-- Unleash's matching rule, in one place for the trigger and replay(). An event without a project
-- (or environment) passes; an empty filter or one whose first element is '*' passes everything.
-- A single-expression SQL function: the planner inlines it, so the trigger pays no call.
CREATE FUNCTION unleash_webhook._matches(
    event_type text, project text, environment text,
    event_types text[], projects text[], environments text[]
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN event_type = ANY (event_types)
   AND (coalesce(project, '') = '' OR cardinality(projects) = 0
        OR projects[1] = '*' OR project = ANY (projects))
   AND (coalesce(environment, '') = '' OR cardinality(environments) = 0
        OR environments[1] = '*' OR environment = ANY (environments));

-- Ends a signing-secret rotation: only the newest secret signs from now on.
CREATE FUNCTION unleash_webhook.end_secret_rotation(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE unleash_webhook._subscriptions
       SET signing_secrets = signing_secrets[1:1], updated_at = now()
     WHERE id = unleash_webhook._subscription_id(end_secret_rotation.name);
END;
$$;

-- The 33 event types Unleash's UI offers for webhooks. Any other string is accepted too:
-- Unleash's API takes any of its ~177 event types.
CREATE FUNCTION unleash_webhook.event_types() RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN unnest(ARRAY[
    'feature-created', 'feature-updated', 'feature-archived', 'feature-revived',
    'feature-stale-on', 'feature-stale-off', 'feature-completed',
    'feature-environment-enabled', 'feature-environment-disabled',
    'feature-strategy-remove', 'feature-strategy-update', 'feature-strategy-add',
    'feature-metadata-updated', 'feature-variants-updated', 'feature-project-change',
    'feature-tagged', 'feature-untagged',
    'change-request-created', 'change-request-discarded', 'change-added', 'change-discarded',
    'change-request-approved', 'change-request-approval-added', 'change-request-cancelled',
    'change-request-sent-to-review', 'change-request-applied', 'change-request-scheduled',
    'change-request-scheduled-application-success',
    'change-request-scheduled-application-failure', 'change-request-schedule-suspended',
    'feature-potentially-stale-on', 'release-plan-progressions-paused',
    'release-plan-progressions-resumed']);

-- Queues new deliveries to one subscription for every matching event created in [since, until),
-- in every attached events table, as the capture trigger does: inbox rows of at most 1,000
-- deliveries, with new delivery ids. Returns how many were queued.
CREATE FUNCTION unleash_webhook.replay(subscription text, since timestamptz,
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

-- Deletes failed deliveries (and their attempts): all, one subscription's, or older ones.
CREATE FUNCTION unleash_webhook.purge_failed(subscription text DEFAULT NULL,
                                             older_than interval DEFAULT '0')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sub_id bigint;
    n bigint;
BEGIN
    IF older_than < interval '0' OR older_than > interval '1000 years' THEN
        RAISE EXCEPTION 'older_than must be between 0 and 1000 years'
            USING ERRCODE = '22023', HINT = 'e.g. purge_failed(older_than => interval ''30 days''); 0 purges every failed delivery.';
    END IF;
    IF subscription IS NOT NULL THEN
        sub_id := unleash_webhook._subscription_id(subscription);
    END IF;
    WITH gone AS (
        DELETE FROM unleash_webhook._deliveries d
         WHERE d.status = 'failed'
           AND (sub_id IS NULL OR d.subscription_id = sub_id)
           AND d.finished_at <= now() - coalesce(older_than, '0')
        RETURNING d.id
    ), logged AS (
        DELETE FROM unleash_webhook._attempts a USING gone WHERE a.delivery_id = gone.id
    )
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END;
$$;

-- Turns Unleash's own webhook integrations (addons rows with provider = 'webhook') into
-- subscriptions named unleash-addon-<id>. Idempotent: a second run changes nothing, a changed
-- addon updates its subscription. A row that cannot be taken is reported with the reason.
-- The default is cast at call time (text, then regclass), so that the function can be created
-- before Unleash's tables exist.
CREATE FUNCTION unleash_webhook.import_unleash_addons(addons regclass DEFAULT 'public.addons'::text::regclass,
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

-- Only the trigger calls it.
REVOKE ALL ON FUNCTION unleash_webhook._capture() FROM PUBLIC;

-- The tables the capture trigger is attached to.
CREATE FUNCTION unleash_webhook._event_tables() RETURNS SETOF regclass
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT t.tgrelid::regclass FROM pg_catalog.pg_trigger t
     WHERE t.tgname = 'unleash_webhook_capture'
       AND t.tgfoid = 'unleash_webhook._capture()'::pg_catalog.regprocedure;
END;

CREATE FUNCTION unleash_webhook.attach(events regclass) RETURNS void
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

CREATE FUNCTION unleash_webhook.detach(events regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF events IS NULL THEN
        RAISE EXCEPTION 'events must not be NULL' USING ERRCODE = '22004',
            HINT = 'Pass the table given to attach(), e.g. ''public.events''.';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS unleash_webhook_capture ON %s', events);
END;
$$;

-- With the owner's rights: _preview reads the secrets (and masks them) and the events tables.
CREATE FUNCTION unleash_webhook.preview(subscription text, event_id bigint)
RETURNS TABLE (method text, url text, headers jsonb, body text)
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT p.method, p.url, p.headers::jsonb, p.body
      FROM unleash_webhook._preview(subscription, event_id) p;
END;

-- The worker, and what waits for it. With the owner's rights: a monitoring role granted
-- EXECUTE on it needs no rights on the tables it counts.
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

-- Managing subscriptions and reading secrets is for the extension's owner (and whom it grants).
REVOKE ALL ON FUNCTION
    unleash_webhook._validate_subscription(text, text[], text, text, jsonb, text, text[], text[], text),
    unleash_webhook._subscription_id(text),
    unleash_webhook.create_subscription(text, text, text[], text, text, jsonb, text, text[], text[], boolean, text),
    unleash_webhook.alter_subscription(text, text, text[], text, text, jsonb, text, text[], text[], boolean, text, text),
    unleash_webhook.end_secret_rotation(text),
    unleash_webhook.replay(text, timestamptz, timestamptz),
    unleash_webhook.purge_failed(text, interval),
    unleash_webhook.import_unleash_addons(regclass, boolean),
    unleash_webhook.preview(text, bigint),
    unleash_webhook.generate_signing_secret(),
    unleash_webhook.worker_status(),
    unleash_webhook.pause_subscription(text),
    unleash_webhook.resume_subscription(text),
    unleash_webhook.drop_subscription(text),
    unleash_webhook.redeliver(bigint),
    unleash_webhook.attach(regclass),
    unleash_webhook.detach(regclass),
    unleash_webhook._wake_at_commit(),
    unleash_webhook._wake_for_log(),
    -- tells which names resolve to which private addresses: nobody's business
    unleash_webhook._destination_error(text),
    unleash_webhook._columns_problem(regclass, text[], text[]),
    unleash_webhook._update_runs_code(regclass),
    unleash_webhook._preview(text, bigint)
FROM PUBLIC;

COMMENT ON FUNCTION unleash_webhook.create_subscription(text, text, text[], text, text, jsonb, text, text[], text[], boolean, text) IS
    'Creates a webhook subscription; returns its id. Matching follows Unleash: event type, then project and environment (empty or [''*'', ...] = all).';
COMMENT ON FUNCTION unleash_webhook.alter_subscription(text, text, text[], text, text, jsonb, text, text[], text[], boolean, text, text) IS
    'Changes a subscription; NULL arguments leave a setting unchanged, '''' removes authorization, body_template or the signing secrets; a new signing_secret starts a rotation. Applies to the next event.';
COMMENT ON FUNCTION unleash_webhook.end_secret_rotation(text) IS
    'Drops the previous signing secret: only the newest one signs from now on.';
COMMENT ON FUNCTION unleash_webhook.event_types() IS
    'The 33 event types Unleash''s UI offers for webhooks (any other string is accepted as well).';
COMMENT ON FUNCTION unleash_webhook.replay(text, timestamptz, timestamptz) IS
    'Queues new deliveries to a subscription for the matching events created in [since, until); returns how many.';
COMMENT ON FUNCTION unleash_webhook.purge_failed(text, interval) IS
    'Deletes failed deliveries and their attempts (all, one subscription''s, or those older than older_than); returns how many.';
COMMENT ON FUNCTION unleash_webhook.import_unleash_addons(regclass, boolean) IS
    'Imports Unleash''s webhook addons as subscriptions unleash-addon-<id>; idempotent; one report row per addon. disable_source turns the addon off in Unleash.';
COMMENT ON FUNCTION unleash_webhook.preview(text, bigint) IS
    'What would be sent to a subscription for an event (method, url, headers with secrets masked, body), without sending.';
COMMENT ON FUNCTION unleash_webhook.generate_signing_secret() IS
    'A new random Standard Webhooks secret (whsec_...).';
COMMENT ON FUNCTION unleash_webhook.worker_status() IS
    'The delivery worker: pid, start time, attempts in flight and totals since start; whether it serves this database; the oldest delivery waiting; the last problem it logged; the pid of a lock it waits for.';
COMMENT ON FUNCTION unleash_webhook.pause_subscription(text) IS
    'Stops queueing and sending for a subscription; already queued deliveries wait for resume_subscription().';
COMMENT ON FUNCTION unleash_webhook.resume_subscription(text) IS
    'Starts queueing and sending again for a paused subscription.';
COMMENT ON FUNCTION unleash_webhook.drop_subscription(text) IS
    'Drops a subscription: its pending deliveries are cancelled (returned count), its history stays.';
COMMENT ON FUNCTION unleash_webhook.redeliver(bigint) IS
    'Queues a fresh round of attempts for a delivery; the webhook-id header stays the same.';
COMMENT ON FUNCTION unleash_webhook.attach(regclass) IS
    'Installs the capture trigger on an Unleash events table (done for public.events at CREATE EXTENSION).';
COMMENT ON FUNCTION unleash_webhook.worker_pid() IS
    'The pid of the delivery worker, NULL when none runs.';
COMMENT ON FUNCTION unleash_webhook.detach(regclass) IS
    'Removes the capture trigger from an events table.';

-- The worker serves one database: in another, events would be captured and never sent.
DO $$
BEGIN
    IF pg_catalog.current_setting('unleash_webhook.database_name', true)
       IS DISTINCT FROM pg_catalog.current_database() THEN
        RAISE WARNING 'unleash_webhook delivers the events of database "%" (unleash_webhook.database_name), not of "%": events captured here are queued and never sent',
            pg_catalog.current_setting('unleash_webhook.database_name', true),
            pg_catalog.current_database()
            USING HINT = 'Set unleash_webhook.database_name to this database in postgresql.conf and restart PostgreSQL, or drop the extension here.';
    END IF;
END;
$$;

-- Unleash's events table usually already exists when the extension is created.
DO $$
BEGIN
    IF to_regclass('public.events') IS NOT NULL THEN
        PERFORM unleash_webhook.attach('public.events');
    END IF;
END;
$$;
