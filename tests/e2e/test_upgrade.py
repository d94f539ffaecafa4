"""Upgrading as an operator does: the previous release, built from its git tag, runs with
deliveries pending; the new package is installed over it, PostgreSQL restarts, and
ALTER EXTENSION ... UPDATE runs while the new worker delivers. Nothing is lost.

On a PostgreSQL version the previous release does not compile for (it predates that version's
support), the SQL path runs instead: this version's library with the previous release's schema,
made by CREATE EXTENSION ... VERSION from the install script frozen in sql/ when it was tagged
(exactly what an upgraded server runs between its restart and the UPDATE; its events wait in the
old schema's inbox, since nothing could have sent them), then the same UPDATE and the same
checks. The report says which path ran."""

import json
import pathlib
import shutil
import subprocess
import tempfile

import pytest

pytestmark = pytest.mark.core

from conftest import (PG_MAJOR, ROOT, TMPDIR, UNLEASH_FIXTURES, Ledger, PrivatePostgres,
                      insert_events, make_unleash_cluster, package_layout,
                      package_tree_of_installed, report, wait_until, worker_pid)
from sink import Reply
from test_delivery import create, deliveries

# The last release before this version, and the commit its tag points at: a clone made without
# tags still has the commit, so the release can be rebuilt from it exactly.
PREVIOUS = "0.2.0"
PREVIOUS_TAG = "v0.2.0"
PREVIOUS_COMMIT = "1fa3902553e343e2a2715d26fee56eab0de10b64"


def git_has(ref):
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
                          capture_output=True).returncode == 0


# The PostgreSQL versions the previous release compiles for: it predates 17 and 18. Named here
# rather than found out by trying, so that a build that breaks on one of these fails the test.
PREVIOUS_BUILDS_FOR = (14, 15, 16)


@pytest.fixture(scope="module")
def previous_release():
    """The package tree (usr/...) of the previous release for this PostgreSQL version, built
    from its tag (a debug build, about a minute), or None where it does not compile."""
    if PG_MAJOR not in PREVIOUS_BUILDS_FOR:
        return None
    ref = PREVIOUS_TAG if git_has(PREVIOUS_TAG) else PREVIOUS_COMMIT
    assert git_has(ref), f"neither {PREVIOUS_TAG} nor {PREVIOUS_COMMIT} is in this clone"
    deb = subprocess.run(["bash", ROOT / ".ci/package", "--debug", "--pg", str(PG_MAJOR), ref],
                         check=True, capture_output=True, text=True).stdout.strip()
    return pathlib.Path(deb).with_suffix(".root")


@pytest.fixture(scope="module")
def current_release():
    """This version as installed into the tree (what every other test runs), laid out as its
    package."""
    root = package_tree_of_installed(tempfile.mkdtemp(prefix="uw-current-", dir=TMPDIR))
    yield root
    shutil.rmtree(root, ignore_errors=True)


# Everything CREATE EXTENSION makes in our schema, in a form that compares across databases:
# an upgraded installation must be the same as a fresh one.
SCHEMA_FINGERPRINT = """
SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid))
       || ' acl ' || coalesce(p.proacl::text, '-')
       || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
  FROM pg_proc p WHERE p.pronamespace = 'unleash_webhook'::regnamespace
UNION ALL
SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' options ' || coalesce(c.reloptions::text, '-')
       || ' acl ' || coalesce(c.relacl::text, '-')
       || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
       || CASE WHEN c.relkind = 'v' THEN ' view ' || md5(pg_get_viewdef(c.oid)) ELSE '' END
  FROM pg_class c WHERE c.relnamespace = 'unleash_webhook'::regnamespace
UNION ALL
SELECT 'column ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || ' ' || a.attidentity::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'unleash_webhook'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'unleash_webhook'::regnamespace
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = 'unleash_webhook'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE p.pronamespace = 'unleash_webhook'::regnamespace
UNION ALL
SELECT 'dumped ' || c.oid::regclass::text || ' ' || coalesce(x.extcondition[c.n], '-')
  FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS c(oid, n)
 WHERE x.extname = 'unleash_webhook'
ORDER BY 1
"""


def extversion(conn):
    return conn.execute("SELECT extversion FROM pg_extension "
                        "WHERE extname = 'unleash_webhook'").fetchone()[0]


def test_previous_release_is_built_from_its_tag(previous_release):
    """The rebuilt release is the released one: its install script is byte-identical to the
    copy frozen in sql/ when it was tagged."""
    if previous_release is None:
        pytest.skip(f"{PREVIOUS} predates PostgreSQL {PG_MAJOR}: the upgrade test takes the "
                    "SQL path")
    built = previous_release / package_layout()[1] / f"unleash_webhook--{PREVIOUS}.sql"
    assert built.read_bytes() == (ROOT / "sql" / f"unleash_webhook--{PREVIOUS}.sql").read_bytes()


def test_upgrade_from_previous_release_with_deliveries_pending(sink, previous_release,
                                                               current_release):
    pg = PrivatePostgres()
    frozen = ROOT / "sql" / f"unleash_webhook--{PREVIOUS}.sql"
    if previous_release is not None:
        path = "built from git"
        pg.overlay(previous_release)
    else:
        path = (f"SQL path: {PREVIOUS} predates PostgreSQL {PG_MAJOR}; this "
                f"version's library with {PREVIOUS}'s schema from sql/{frozen.name}")
        pg.overlay(current_release)
        pg.install_file(frozen, pg.ext / frozen.name)
    c = make_unleash_cluster(pgbin=pg.bin, extension_version=PREVIOUS)
    try:
        conn = c.connect()
        assert extversion(conn) == PREVIOUS
        # A slow endpoint served one request at a time: most deliveries are still queued when
        # the server stops for the upgrade.
        conn.execute("ALTER SYSTEM SET unleash_webhook.max_concurrency_per_subscription = 1")
        conn.execute("SELECT pg_reload_conf()")
        sink.script("/upgrade", Reply(200, delay=0.2))
        sink.script("/upgrade-template", Reply(200))
        create(conn, "upgrade", sink.url("/upgrade"), ["t-upgrade"])
        create(conn, "upgrade-template", sink.url("/upgrade-template"), ["t-upgrade"],
               body_template='{"event": "{{event.type}}", "id": {{event.id}}}')
        inserted = insert_events(conn, [("t-upgrade", None, None, None)] * 20)
        if previous_release is not None:
            # the slow endpoint has begun: one request arrived, 200 ms each, most still queued
            assert len(sink.wait_for("/upgrade", 1)) >= 1
            pending = sum(1 for d in deliveries(conn, "upgrade") if d[2] in ("pending", "sending"))
        else:
            # this library sends from its own schema only: the old one's inbox holds them all
            pending = conn.execute(
                "SELECT count(*) FROM unleash_webhook._inbox i, unnest(i.pair_subs) s "
                "WHERE s = (SELECT id FROM unleash_webhook._subscriptions "
                "WHERE name = 'upgrade')").fetchone()[0]
        assert pending > 10
        conn.close()

        # install the new package over the old one and restart, as apt would
        c.stop("fast")
        pg.overlay(current_release)
        c.start()
        conn = c.wait_connect()
        assert wait_until(lambda: worker_pid(conn), timeout=30)
        log_before = len(c.log())
        # the new library captures into the old schema until the UPDATE...
        inserted += insert_events(conn, [("t-upgrade", None, None, None)] * 5)
        conn.execute("ALTER EXTENSION unleash_webhook UPDATE")
        version = extversion(conn)
        assert version != PREVIOUS
        # ...and into the new schema after it, without a restart
        inserted += insert_events(conn, [("t-upgrade", None, None, None)] * 5)
        for name in ("upgrade", "upgrade-template"):
            assert wait_until(lambda: [d[2] for d in deliveries(conn, name)] == ["delivered"] * 30,
                              timeout=60), deliveries(conn, name)
        # counted from the endpoint: every event before, across and after the upgrade
        got = sink.on("/upgrade")
        assert Ledger(sink, ["/upgrade"]).events("/upgrade") == set(inserted)
        bodies = {r.body for r in sink.on("/upgrade-template")}
        assert {json.loads(b)["id"] for b in bodies} == set(inserted)
        assert all(b.startswith(b'{"event": "t-upgrade", "id": ') for b in bodies)
        log = c.log()[log_before:]
        # the worker went on through the update: no exit, no restart
        assert "exited with exit code" not in log, log
        # and the updated schema is exactly what a fresh install of this version makes, in a
        # database that has Unleash's events table too (the trigger on it is compared)
        conn.execute("CREATE DATABASE fresh")
        c.psql_file(UNLEASH_FIXTURES / "events-table.sql", "fresh")
        with c.connect("fresh") as fresh:
            fresh.execute("CREATE EXTENSION unleash_webhook")
            want = [r[0] for r in fresh.execute(SCHEMA_FINGERPRINT).fetchall()]
        got_schema = [r[0] for r in conn.execute(SCHEMA_FINGERPRINT).fetchall()]
        missing = sorted(set(want) - set(got_schema))
        extra = sorted(set(got_schema) - set(want))
        assert (missing, extra) == ([], []), f"fresh only: {missing}\nupgraded only: {extra}"
        assert len(want) > 50
        report(f"PostgreSQL {PG_MAJOR}: upgrade {PREVIOUS} ({path}) -> {version} with {pending} "
               f"deliveries pending at restart: 30 events delivered, {len(got) - 30} duplicates, "
               f"0 lost")
    finally:
        c.destroy()
        pg.destroy()
