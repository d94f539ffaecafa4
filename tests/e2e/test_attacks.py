"""Least privilege, attacked: a role set up the way Unleash's is (owner of the database and of
`events`/`addons`, CREATE on the database and on `public`) tries to make the extension run its
code with superuser rights, crash or stall the server, or read a secret.

Every piece of code that role plants calls `public.record_pwn(via)`, which writes current_user
and session_user into `public.pwned` (a table anyone may insert into): the checks read that
table, not our own bookkeeping. Each test checks that the server never crash-restarted
(pg_postmaster_start_time unchanged) and that deliveries to a subscription the attack does not
touch go on, counted at the endpoint."""

import json
import time

import psycopg
import pytest

from conftest import (UNLEASH_FIXTURES, Ledger, insert_events, make_unleash_cluster, report,
                      wait_until, worker_pid)
from sink import Reply
from test_delivery import attempts, create, deliveries, settled

# On every PostgreSQL version (12 s): on 14 every role may create in `public` by default, so
# there the planted look-alikes need no grant at all.
pytestmark = pytest.mark.core

UNLEASH = "unleash"


@pytest.fixture(scope="module")
def hostile():
    """A cluster where Unleash's role owns the database and Unleash's tables, and a second
    events table (schema `other`, the superuser's) for deliveries no attack touches."""
    c = make_unleash_cluster()
    with c.connect() as db:
        db.execute(f"CREATE ROLE {UNLEASH} LOGIN")
        db.execute(f"ALTER DATABASE unleash OWNER TO {UNLEASH}")
        for table in ("events", "addons", "stat_environment_updates"):
            db.execute(f"ALTER TABLE public.{table} OWNER TO {UNLEASH}")
        db.execute("ALTER FUNCTION public.unleash_update_stat_environment_changes_counter() "
                   f"OWNER TO {UNLEASH}")
        db.execute(f"GRANT CREATE ON DATABASE unleash TO {UNLEASH}")
        db.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {UNLEASH}")
    with c.connect(user=UNLEASH) as u:
        u.execute("CREATE TABLE public.pwned (at timestamptz DEFAULT now(), run_as text, "
                  "session_as text, via text)")
        u.execute("GRANT INSERT, SELECT ON public.pwned TO PUBLIC")
        u.execute("CREATE FUNCTION public.record_pwn(via text) RETURNS boolean LANGUAGE sql "
                  "AS $$ INSERT INTO public.pwned (run_as, session_as, via) "
                  "VALUES (current_user, session_user, via) RETURNING true $$")
        # where code must be IMMUTABLE (a generated column, an index expression) it cannot
        # write: it fails loudly when it runs as anyone but its owner
        u.execute("CREATE FUNCTION public.pwn_immutable(via text) RETURNS boolean LANGUAGE plpgsql "
                  f"IMMUTABLE AS $$ BEGIN IF current_user <> '{UNLEASH}' THEN "
                  "RAISE EXCEPTION 'PWNED by % as %', via, current_user; END IF; "
                  "RETURN true; END $$")
        u.execute("GRANT EXECUTE ON FUNCTION public.record_pwn(text), "
                  "public.pwn_immutable(text) TO PUBLIC")
    c.psql_file_sql("CREATE SCHEMA other; SET search_path = other; "
                    + (UNLEASH_FIXTURES / "events-table.sql").read_text()
                    + "SELECT unleash_webhook.attach('other.events');")
    c.started = c.connect().execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    yield c
    c.destroy()


def pwned(c):
    """Planted code that ran with more rights than its owner's: as a superuser."""
    return c.connect().execute(
        "SELECT p.run_as, p.session_as, p.via FROM public.pwned p "
        "JOIN pg_catalog.pg_roles r ON r.rolname = p.run_as WHERE r.rolsuper").fetchall()


def as_unleash(c):
    return c.connect(user=UNLEASH)


def admin(c, user="postgres"):
    """A session that undoes the hostile database settings it starts with (another role,
    read-only, 1 ms timeouts), but keeps the search_path."""
    db = c.connect(user=user)
    for sql in ("SET ROLE NONE", "SET default_transaction_read_only = off",
                "SET transaction_read_only = off", "SET statement_timeout = 0",
                "SET lock_timeout = 0", "SET idle_in_transaction_session_timeout = 0"):
        db.execute(sql)
    return db


def restart_worker(c):
    """The worker reconnects: it picks up the database's and role's settings anew."""
    with admin(c) as db:
        pid = worker_pid(db)
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert wait_until(lambda: worker_pid(db) not in (None, pid), timeout=30)


def still_delivering(c, sink, label):
    """An event of the untouched events table reaches its endpoint; nothing planted ran; the
    server never restarted."""
    with c.connect() as db:
        name = f"canary-{label}-{time.monotonic_ns()}"
        create(db, name, sink.url("/" + name), ["t-canary"])
        (eid,) = [r[0] for r in db.execute(
            "INSERT INTO other.events (type, created_by) VALUES ('t-canary', 'c') "
            "RETURNING id").fetchall()]
        got = sink.wait_for("/" + name, 1, timeout=20)
        assert [json.loads(r.body)["id"] for r in got] == [eid], label
        assert db.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == c.started
        db.execute("SELECT unleash_webhook.drop_subscription(%s)", (name,))
    assert pwned(c) == [], pwned(c)


def test_database_settings_cannot_redirect_the_worker(hostile, sink):
    """ALTER DATABASE ... SET search_path to a schema of look-alike functions and operators, a
    schema named after the superuser holding an `events` view, and settings meant to stall the
    worker (read-only transactions, 1 ms timeouts, another role): the worker pins its own."""
    c = hostile
    with as_unleash(c) as u:
        u.execute("CREATE SCHEMA evil")
        for sig, ret in (("isfinite(timestamptz)", "boolean"), ("now()", "timestamptz"),
                         ("date_part(text, timestamptz)", "double precision"),
                         ("clock_timestamp()", "timestamptz"),
                         ("to_timestamp(double precision)", "timestamptz"),
                         ("unnest(bigint[])", "SETOF bigint"), ("regclass(oid)", "regclass")):
            name = sig.split("(")[0]
            typ = ret.replace("SETOF ", "")
            u.execute(f"CREATE FUNCTION evil.{sig} RETURNS {ret} LANGUAGE sql AS $$ "
                      f"SELECT NULL::{typ} WHERE public.record_pwn('{name}') $$")
        u.execute("CREATE FUNCTION evil.int8eq(bigint, bigint) RETURNS boolean LANGUAGE sql "
                  "AS $$ SELECT public.record_pwn('=') $$")
        u.execute("CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, "
                  "FUNCTION = evil.int8eq)")
        u.execute("CREATE SCHEMA postgres")
        u.execute("CREATE VIEW postgres.events AS SELECT *, public.record_pwn('view') AS p "
                  "FROM public.events")
        u.execute("ALTER DATABASE unleash SET search_path = evil, postgres, pg_catalog, public")
        for setting, value in (("default_transaction_read_only", "on"),
                               ("statement_timeout", "1ms"), ("lock_timeout", "1ms"),
                               ("idle_in_transaction_session_timeout", "1ms"),
                               ("role", UNLEASH)):
            u.execute(f"ALTER DATABASE unleash SET {setting} = '{value}'")
    try:
        restart_worker(c)
        with admin(c) as db:
            create(db, "sp", sink.url("/sp"), ["t-sp"])
        with admin(c, UNLEASH) as u:
            # as Unleash writes them: its own session, its own table
            ids = insert_events(u, [("t-sp", "default", "production", "f")] * 20)
        assert wait_until(lambda: Ledger(sink, ["/sp"]).events("/sp") == set(ids), timeout=30)
        # preview runs in the caller's session, with the database's search_path
        with admin(c) as db:
            assert db.execute("SHOW search_path").fetchone()[0].startswith("evil")
            body = db.execute("SELECT body FROM unleash_webhook.preview('sp', %s)",
                              (ids[0],)).fetchone()[0]
            assert json.loads(body)["id"] == ids[0]
        with admin(c) as db:
            db.execute("ALTER DATABASE unleash RESET ALL")
        still_delivering(c, sink, "settings")
        report(f"attack: database settings (search_path to look-alikes, a $user schema with an "
               f"events view, read-only, 1 ms timeouts, role): 20 of 20 delivered, planted code "
               f"ran {len(pwned(c))} times")
    finally:
        with admin(c) as db:
            db.execute("ALTER DATABASE unleash RESET ALL")
            db.execute("DROP SCHEMA evil, postgres CASCADE")
        restart_worker(c)


def test_retyped_columns_neither_crash_nor_run_planted_code(hostile, sink):
    """A column the trigger reads retyped (project to int: read through its output function),
    created_at retyped to a domain with a planted isfinite(domain): the server never crashes,
    the deliveries of that table fail with the reason, the planted function never runs."""
    c = hostile
    with c.connect() as db:
        create(db, "rt", sink.url("/rt"), ["t-rt"], projects=["5"])
    with as_unleash(c) as u:
        u.execute("ALTER TABLE public.events ALTER COLUMN project TYPE integer USING 0")
        (eid,) = insert_events(u, [("t-rt", 5, None, "f")])
        u.execute("CREATE DOMAIN public.stamp AS timestamptz")
        u.execute("CREATE FUNCTION public.isfinite(public.stamp) RETURNS boolean LANGUAGE sql "
                  "AS $$ SELECT public.record_pwn('isfinite(domain)') $$")
        u.execute("ALTER TABLE public.events ALTER COLUMN created_at TYPE public.stamp")
        (eid2,) = insert_events(u, [("t-rt", 5, None, "g")])
    try:
        with c.connect() as db:
            rows = settled(db, "rt", 2)
        assert [r[1] for r in rows] == [eid, eid2]
        # the project "5" matched (the trigger read the int as text); the worker refuses to
        # read a table whose columns are not Unleash's, and says why
        assert {r[2] for r in rows} == {"failed"}
        assert all("not as Unleash defines it" in r[5] for r in rows), rows
        assert sink.on("/rt") == []
        still_delivering(c, sink, "retype")
        report("attack: events.project retyped to int, created_at to a domain with a planted "
               f"isfinite(): no crash, {len(rows)} deliveries failed with the reason, planted "
               f"code ran {len(pwned(c))} times")
    finally:
        with as_unleash(c) as u:
            u.execute("ALTER TABLE public.events ALTER COLUMN created_at TYPE timestamptz")
            u.execute("ALTER TABLE public.events ALTER COLUMN project TYPE text")
            u.execute("DROP FUNCTION public.isfinite(public.stamp)")
            u.execute("DROP DOMAIN public.stamp")


@pytest.mark.parametrize("plant,sqlstate", [
    ("CREATE FUNCTION public.on_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
     "PERFORM public.record_pwn('trigger'); RETURN NEW; END $$; "
     "CREATE TRIGGER t BEFORE UPDATE ON public.addons FOR EACH ROW "
     "EXECUTE FUNCTION public.on_update()", "55000"),
    ("CREATE RULE r AS ON UPDATE TO public.addons DO ALSO SELECT public.record_pwn('rule')",
     "55000"),
    ("ALTER TABLE public.addons ADD CONSTRAINT c CHECK (public.record_pwn('check'))", "55000"),
    ("ALTER TABLE public.addons ADD COLUMN g boolean GENERATED ALWAYS AS "
     "(public.pwn_immutable('generated')) STORED", "55000"),
    ("CREATE INDEX ON public.addons ((public.pwn_immutable('index') AND enabled))", "55000"),
])
def test_import_refuses_an_addons_table_that_runs_code(hostile, sink, plant, sqlstate):
    c = hostile
    with as_unleash(c) as u:
        u.execute("INSERT INTO public.addons (provider, enabled, parameters, events) VALUES "
                  "('webhook', true, %s, '[\"t-imp\"]')",
                  (json.dumps({"url": sink.url("/imp")}),))
        u.execute(plant)
    try:
        with c.connect() as db:
            with pytest.raises(psycopg.Error) as e:
                db.execute("SELECT * FROM unleash_webhook.import_unleash_addons("
                           "'public.addons', disable_source => true)").fetchall()
            assert e.value.sqlstate == sqlstate, e.value
            assert e.value.diag.message_hint
            assert "PWNED" not in str(e.value)
        assert pwned(c) == []
    finally:
        with as_unleash(c) as u:
            u.execute("DROP TABLE public.addons CASCADE")
            u.execute("CREATE TABLE public.addons (id serial PRIMARY KEY, provider text NOT NULL, "
                      "description text, enabled boolean DEFAULT true, parameters json, "
                      "events json, created_at timestamptz DEFAULT now(), "
                      "projects jsonb DEFAULT '[]', environments jsonb DEFAULT '[]')")
    still_delivering(c, sink, "import")


def test_create_extension_refuses_a_planted_schema(hostile):
    c = hostile
    with c.connect() as db:
        db.execute(f"CREATE DATABASE planted OWNER {UNLEASH}")
    with c.connect("planted", user=UNLEASH) as u:
        u.execute("CREATE SCHEMA unleash_webhook")
        u.execute("CREATE FUNCTION unleash_webhook.cardinality(text[]) RETURNS int LANGUAGE sql "
                  "AS $$ SELECT 1 $$")
    with c.connect("planted") as db:
        with pytest.raises(psycopg.Error) as e:
            db.execute("CREATE EXTENSION unleash_webhook")
        assert e.value.sqlstate == "42P06", e.value
        assert "drop it" in e.value.diag.message_hint
    with c.connect("planted") as db:
        # an empty schema of the superuser's own is no threat: taken as it is
        db.execute("DROP SCHEMA unleash_webhook CASCADE")
        db.execute("CREATE SCHEMA unleash_webhook")
        db.execute("CREATE EXTENSION unleash_webhook")
    with c.connect() as db:
        db.execute("DROP DATABASE planted")


def test_create_extension_refuses_a_database_not_in_utf8(hostile):
    c = hostile
    with c.connect() as db:
        db.execute("CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' "
                   "LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        with c.connect("latin") as db:
            with pytest.raises(psycopg.Error) as e:
                db.execute("CREATE EXTENSION unleash_webhook")
            assert e.value.sqlstate == "0A000", e.value
            assert "UTF8" in e.value.diag.message_hint
    finally:
        with c.connect() as db:
            db.execute("DROP DATABASE latin")


def test_a_huge_event_fails_once_instead_of_taking_the_worker(hostile, sink):
    c = hostile
    with c.connect() as db:
        c.reload(db, max_body_size="1MB")
        create(db, "huge", sink.url("/huge"), ["t-huge"])
        create(db, "huge-tpl", sink.url("/huge-tpl"), ["t-huge"],
               body_template="{{{eventJson}}}{{{eventJson}}}")
        pid = worker_pid(db)
    try:
        with as_unleash(c) as u:
            (big,) = [r[0] for r in u.execute(
                "INSERT INTO public.events (type, created_by, data) VALUES "
                "('t-huge', 'u', json_build_object('x', repeat('x', 3 * 1024 * 1024))) "
                "RETURNING id").fetchall()]
            (small,) = insert_events(u, [("t-huge", None, None, "small")])
        with c.connect() as db:
            for name in ("huge", "huge-tpl"):
                rows = {r[1]: r for r in settled(db, name, 2)}
                assert rows[big][2:4] == ("failed", 1), rows[big]
                assert "max_body_size" in rows[big][5], rows[big]
                assert rows[small][2] == "delivered"
            assert worker_pid(db) == pid
        assert [json.loads(r.body)["id"] for r in sink.on("/huge")] == [small]
        still_delivering(c, sink, "huge")
    finally:
        with c.connect() as db:
            c.reload(db, max_body_size="4MB")


def test_secrets_stay_secret(hostile, sink):
    """A Slack-like URL (the secret is in the path and query), an authorization and a header
    value, a signing key; an endpoint that echoes the request back; a monitoring role; a
    manager that changes the URL; preview."""
    c = hostile
    secrets = ["PATHSECRET9", "QUERYSECRET9", "AUTHSECRET9", "HEADERSECRET9"]
    path = "/services/T000/PATHSECRET9?token=QUERYSECRET9"
    sink.script(path.split("?")[0], Reply(400, echo=True))
    url = sink.url(path)
    with c.connect() as db:
        key = db.execute("SELECT unleash_webhook.generate_signing_secret()").fetchone()[0]
        secrets.append(key[6:])
        create(db, "sec", url, ["t-sec"], authorization="Bearer AUTHSECRET9",
               headers={"X-Key": "HEADERSECRET9"}, signing_secret=key)
        db.execute("CREATE ROLE monitor LOGIN")
        db.execute("GRANT USAGE ON SCHEMA unleash_webhook TO monitor")
        db.execute("GRANT SELECT ON ALL TABLES IN SCHEMA unleash_webhook TO monitor")
        db.execute("REVOKE SELECT ON unleash_webhook._subscriptions, unleash_webhook._deliveries, "
                   "unleash_webhook._attempts, unleash_webhook._inbox, "
                   "unleash_webhook._installation FROM monitor")
        db.execute("GRANT EXECUTE ON FUNCTION unleash_webhook.worker_status() TO monitor")
    (eid,) = insert_events(c.connect(), [("t-sec", None, None, None)])
    with c.connect() as db:
        (d,) = settled(db, "sec", 1)
    (echoed,) = sink.on(path)
    # the endpoint did get them all (so the echo held them)
    assert b"AUTHSECRET9" in echoed.echo and b"HEADERSECRET9" in echoed.echo
    with c.connect() as db:
        # a manager changing the URL must give the secrets again: they would go to the new URL
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            db.execute("SELECT unleash_webhook.alter_subscription('sec', url => %s)",
                       (sink.url("/elsewhere"),))
        assert "authorization" in e.value.diag.message_hint
        preview = db.execute("SELECT row_to_json(p)::text FROM unleash_webhook.preview("
                             "'sec', %s) p", (eid,)).fetchone()[0]
        # a signature would let whoever may preview mint signed webhooks
        assert json.loads(preview)["headers"]["webhook-signature"] == "***", preview
    with c.connect(user="monitor") as m:
        seen = json.dumps([m.execute(f"SELECT json_agg(v) FROM unleash_webhook.{v} v").fetchone()[0]
                           for v in ("subscriptions", "deliveries", "delivery_attempts",
                                     "dead_letters", "subscription_stats")])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            m.execute("SELECT unleash_webhook._destination_error('http://10.0.0.1/')")
    log = c.log()
    for s in secrets:
        for where, text in (("a view", seen), ("preview", preview), ("the server log", log)):
            assert s not in text, f"{s} in {where}"
    report(f"attack: secrets in the URL path and query, authorization, header, signing key, an "
           f"echoing endpoint: none in the views, excerpts, preview or the log "
           f"({len(log)} bytes)")
