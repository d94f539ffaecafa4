"""One bad row, one lock or one database operation stops one delivery, not all of them; a
restore keeps the webhook-ids receivers have seen and sends nothing old again. Counted at the
endpoint: an events table that nothing breaks (`other.events`, beside Unleash's own) keeps
delivering whatever happens to the other."""

import json
import secrets

import pytest

from conftest import (UNLEASH_FIXTURES, Cluster, Ledger, as_postgres, insert_events,
                      make_unleash_cluster, report, wait_until, worker_pid)
from test_delivery import create, deliveries, settled


@pytest.fixture()
def two_tables(sink):
    """A cluster with Unleash's events table and a second one (schema `other`), a subscription
    to each. The sink serves the whole session: each test gets paths of its own."""
    c = make_unleash_cluster()
    tag = secrets.token_hex(4)
    c.main, c.other = f"/rel-main-{tag}", f"/rel-other-{tag}"
    c.psql_file_sql("CREATE SCHEMA other; SET search_path = other; "
                    + (UNLEASH_FIXTURES / "events-table.sql").read_text()
                    + "SELECT unleash_webhook.attach('other.events');")
    with c.connect() as db:
        create(db, "main", sink.url(c.main), ["t-main"])
        create(db, "other", sink.url(c.other), ["t-other"])
    yield c
    c.destroy()


def other_event(db):
    return db.execute("INSERT INTO other.events (type, created_by) VALUES ('t-other', 'o') "
                      "RETURNING id").fetchone()[0]


def arrives(sink, path, event_id, timeout=20):
    return wait_until(lambda: event_id in Ledger(sink, [path]).events(path), timeout=timeout)


def test_a_renamed_events_column_fails_only_that_tables_deliveries(two_tables, sink):
    """A future Unleash migration renames a column: the deliveries of that table fail, once,
    with the reason; the other table's go on, and so do its own after the rename is undone."""
    c = two_tables
    with c.connect() as db:
        db.execute("ALTER TABLE public.events RENAME COLUMN feature_name TO flag_name")
        (bad,) = db.execute("INSERT INTO public.events (type, created_by) VALUES "
                            "('t-main', 'u') RETURNING id").fetchone()
        ok = other_event(db)
        assert arrives(sink, c.other, ok)
        (d,) = settled(db, "main", 1)
        assert d[1:4] == (bad, "failed", 1), d
        assert "feature_name is missing" in d[5], d
        assert sink.on(c.main) == []
        db.execute("ALTER TABLE public.events RENAME COLUMN flag_name TO feature_name")
        (good,) = insert_events(db, [("t-main", None, None, None)])
        assert arrives(sink, c.main, good)
    report(f"reliability: events column renamed: its delivery failed once with the reason, the "
           f"other table's arrived ({len(sink.on(c.other))} of 1)")


def test_an_open_transaction_of_an_admin_stalls_nothing(two_tables, sink):
    """An admin drops a subscription while one of its deliveries is being retried, and leaves
    the transaction open: the rows it locked hold up nothing else. The other deliveries arrive
    while it stays open."""
    from sink import Reply
    c = two_tables
    with c.connect() as db:
        # the first attempt fails at once, the retry hangs for 2 s: in flight when the admin
        # comes, and finished while the admin's transaction holds the delivery's row
        sink.script("/rel-doomed", Reply(503), Reply(200, delay=2))
        create(db, "doomed", sink.url("/rel-doomed"), ["t-doomed"])
        insert_events(db, [("t-doomed", None, None, None)])
        assert len(sink.wait_for("/rel-doomed", 2)) == 2
    admin = c.connect()
    admin.autocommit = False
    admin.execute("SELECT unleash_webhook.drop_subscription('doomed')")
    try:
        # the retry's answer is out: the worker now records it, on the row the admin holds
        retry = sink.on("/rel-doomed")[1]
        assert wait_until(lambda: retry.answered, timeout=10)
        with c.connect() as db:
            main = insert_events(db, [("t-main", None, None, None)] * 5)
            other = [other_event(db) for _ in range(5)]
            for i in other:
                assert arrives(sink, c.other, i), i
            for i in main:
                assert arrives(sink, c.main, i), i
    finally:
        admin.rollback()
    report("reliability: a transaction left open after drop_subscription() during a retry: 10 "
           "of 10 other deliveries arrived meanwhile")


def test_a_locked_events_table_holds_back_only_its_own_deliveries(two_tables, sink):
    """Unleash's events table locked by an open transaction (a migration's ALTER TABLE): the
    worker does not queue behind it; the other table's deliveries go out, worker_status() names
    the pid that holds the lock, and the held-back delivery goes out once it is released."""
    c = two_tables
    from sink import Reply
    with c.connect() as db:
        # the first attempt fails; its retry, due 2 s later, finds the table locked
        c.reload(db, retry_delay="2s")
        sink.script(c.main, Reply(503), Reply(200))
        (held,) = insert_events(db, [("t-main", None, None, None)])
        assert wait_until(lambda: [(r[1], r[2]) for r in deliveries(db, "main")]
                          == [(held, "pending")])
    migration = c.connect()
    migration.autocommit = False
    migration.execute("LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE")
    holder = migration.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with c.connect() as db:
            status = "SELECT waiting_for_pid, last_error FROM unleash_webhook.worker_status()"
            assert wait_until(lambda: db.execute(status).fetchone()[0] == holder, timeout=10), \
                db.execute(status).fetchone()
            assert f"locked by pid {holder}" in db.execute(status).fetchone()[1]
            ok = other_event(db)
            assert arrives(sink, c.other, ok)
            # the first attempt only
            assert len(sink.on(c.main)) == 1
    finally:
        migration.rollback()
    assert len(sink.wait_for(c.main, 2)) == 2
    with c.connect() as db:
        assert wait_until(lambda: db.execute(
            "SELECT waiting_for_pid FROM unleash_webhook.worker_status()").fetchone()[0] is None)
    report(f"reliability: events table locked by pid {holder}: the other table's delivery went "
           "out meanwhile, worker_status() named the pid, the held one went out after the lock")


def test_the_worker_leaves_its_database_when_asked(two_tables, sink):
    """CREATE DATABASE ... TEMPLATE, ALTER DATABASE ... RENAME and DROP DATABASE of the
    worker's database need it gone; it leaves, and comes back when the database is there."""
    c = two_tables
    with c.connect("postgres") as pg:
        pg.execute("CREATE DATABASE unleash_copy TEMPLATE unleash")
        with c.connect() as db:
            assert wait_until(lambda: worker_pid(db), timeout=30)
            ok = other_event(db)
        assert arrives(sink, c.other, ok)
        pg.execute("ALTER DATABASE unleash RENAME TO unleash_old")
        pg.execute("ALTER DATABASE unleash_old RENAME TO unleash")
        with c.connect() as db:
            assert wait_until(lambda: worker_pid(db), timeout=60)
            ok = other_event(db)
        assert arrives(sink, c.other, ok, timeout=60)
        pg.execute("DROP DATABASE unleash_copy")
        pg.execute("DROP DATABASE unleash")
        assert "leaving database" in c.log()
    report("reliability: CREATE DATABASE ... TEMPLATE, RENAME and DROP DATABASE of the worker's "
           "database: each ran, the worker came back and delivered")


def test_another_database_warns_and_shows_what_waits(sink):
    """An extension created where the worker does not serve: a WARNING at CREATE EXTENSION,
    worker_status() says so, and what is captured there shows as queued at once."""
    c = make_unleash_cluster()
    try:
        with c.connect("postgres") as pg:
            pg.execute("CREATE DATABASE elsewhere")
        c.psql_file(UNLEASH_FIXTURES / "events-table.sql", "elsewhere")
        notices = []
        with c.connect("elsewhere") as db:
            # (a notice's fields can be read only while the handler runs)
            db.add_notice_handler(lambda d: notices.append((d.severity, d.message_primary)))
            db.execute("CREATE EXTENSION unleash_webhook")
            assert any(sev == "WARNING" and "never sent" in msg for sev, msg in notices), notices
            assert db.execute("SELECT serves_this_database FROM unleash_webhook.worker_status()"
                              ).fetchone()[0] is False
            create(db, "nowhere", sink.url("/nowhere"), ["t-x"])
            (eid,) = insert_events(db, [("t-x", None, None, None)])
            rows = deliveries(db, "nowhere")
            assert [(r[1], r[2]) for r in rows] == [(eid, "queued")], rows
            assert db.execute("SELECT oldest_pending_at IS NOT NULL "
                              "FROM unleash_webhook.worker_status()").fetchone()[0]
    finally:
        c.destroy()


def dump(cluster, *args):
    path = cluster.dir / "dump.pgc"
    as_postgres([cluster.pgbin / "pg_dump", "-h", cluster.dir, "-p", cluster.port, "-Fc",
                 "-f", path, *args, "unleash"])
    return path


def test_a_restore_keeps_webhook_ids_and_sends_nothing_old(sink):
    """pg_dump of Unleash's database into a new cluster: the deliveries waiting there are sent
    with the webhook-ids they had, nothing delivered is sent again; then a data-only restore of
    `events` (old events, announced long ago) sends nothing either."""
    a = make_unleash_cluster()
    b = Cluster()
    try:
        with a.connect() as db:
            create(db, "kept", sink.url("/restore"), ["t-kept"])
            done = insert_events(db, [("t-kept", None, None, None)] * 5)
            assert wait_until(lambda: Ledger(sink, ["/restore"]).events("/restore") == set(done))
            settled(db, "kept", 5)
            sent_ids = {r.header("webhook-id") for r in sink.on("/restore")}
            before = len(sink.on("/restore"))
            # a redelivery waiting when the dump is taken: its webhook-id is known already
            (first,) = db.execute("SELECT min(id) FROM unleash_webhook.deliveries "
                                  "WHERE subscription = 'kept'").fetchone()
            db.execute("SELECT unleash_webhook.pause_subscription('kept')")
            db.execute("SELECT unleash_webhook.redeliver(%s)", (first,))
            # Unleash's announcer marks what it has seen (about a second after the INSERT)
            db.execute("UPDATE events SET announced = true WHERE announced = false")
        path = dump(a)
        with b.connect("postgres") as pg:
            pg.execute("CREATE DATABASE unleash")
        as_postgres([b.pgbin / "pg_restore", "-h", b.dir, "-p", b.port, "-d", "unleash", path])
        with b.connect() as db:
            assert wait_until(lambda: worker_pid(db), timeout=30)
            db.execute("SELECT unleash_webhook.resume_subscription('kept')")
            (redelivered,) = sink.wait_for("/restore", before + 1)[before:]
            # the same delivery, the same request: the same webhook-id as before the dump
            assert redelivered.header("webhook-id") in sent_ids
            assert json.loads(redelivered.body)["id"] == done[0]
            settled(db, "kept", 5)
            # a data-only restore of events (say, into an emptied table)
            db.execute("TRUNCATE events")
            events_only = dump(a, "--data-only", "-t", "events")
            as_postgres([b.pgbin / "pg_restore", "-h", b.dir, "-p", b.port, "-d", "unleash",
                         events_only])
            assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 5
            # something new after it is sent, and it is the only new request
            (new,) = insert_events(db, [("t-kept", None, None, None)])
            assert wait_until(lambda: new in Ledger(sink, ["/restore"]).events("/restore"))
        got = [json.loads(r.body)["id"] for r in sink.on("/restore")[before:]]
        assert got == [done[0], new], got
        report(f"restore: pg_dump | pg_restore into a new cluster, then a data-only restore of "
               f"events: {len(got)} requests in the new cluster (the waiting redelivery, with "
               f"its webhook-id, and one new event), nothing old sent again")
    finally:
        a.destroy()
        b.destroy()
