"""The queue's own vacuum: while the worker is busy it has its tables vacuumed every
unleash_webhook.vacuum_interval by a short-lived helper, instead of waiting up to
autovacuum_naptime. Autovacuum is off in this cluster, so only the helper can vacuum."""

import re

import pytest

from conftest import PG_MAJOR, insert_events, make_unleash_cluster, report, wait_until, worker_pid
from test_delivery import create


@pytest.fixture(scope="module")
def quiet_cluster():
    c = make_unleash_cluster(conf="autovacuum = off\n")
    yield c
    c.destroy()


def vacuums(conn):
    return dict(conn.execute(
        "SELECT relname, vacuum_count FROM pg_stat_user_tables "
        "WHERE schemaname = 'unleash_webhook' AND relname IN ('_deliveries', '_attempts')"
    ).fetchall())


def deliver(conn, sink, path, n):
    """n events to one subscription, 200 per INSERT as Unleash batches them; waits for all."""
    for _ in range(n // 200):
        insert_events(conn, [("t-vacuum", None, None, None)] * 200)
    assert wait_until(lambda: len(sink.on(path)) >= n, timeout=120), len(sink.on(path))


def test_busy_worker_has_its_queue_vacuumed(quiet_cluster, sink):
    c = quiet_cluster
    with c.connect() as conn:
        # retention 1 s: each delivery is also purged, two changed rows per event
        c.reload(conn, retention="1s", vacuum_interval="0")
        create(conn, "vacuum", sink.url("/vacuum"), ["t-vacuum"])
        deliver(conn, sink, "/vacuum", 6000)
        # switched off, and autovacuum off: nothing vacuumed the queue while it turned over
        # 6,000 deliveries (several seconds, where the helper below runs every second)
        assert vacuums(conn) == {"_deliveries": 0, "_attempts": 0}

        c.reload(conn, vacuum_interval="1s")
        deliver(conn, sink, "/vacuum", 12000)
        assert wait_until(lambda: min(vacuums(conn).values()) > 0, timeout=30), vacuums(conn)
        got = vacuums(conn)
        helpers = conn.execute("SELECT count(*) FROM pg_stat_activity "
                               "WHERE backend_type = 'unleash_webhook vacuum'").fetchone()[0]
        report(f"queue vacuumed by the helper while delivering 12,000 events: {got}; "
               f"helpers running now: {helpers}")
        # a helper that failed would be logged as exiting with code 1
        assert not re.search(r'"unleash_webhook vacuum" \(PID \d+\) exited with exit code [1-9]',
                             c.log()), c.log()


@pytest.mark.core
@pytest.mark.skipif(PG_MAJOR < 17, reason="transaction_timeout exists from PostgreSQL 17")
def test_transaction_timeout_ends_neither_the_worker_nor_the_vacuum_helper(sink):
    """From 17, transaction_timeout ends a background worker's transaction with a FATAL too.
    Set cluster-wide to 1 ms (far below the milliseconds a claim of a busy queue or a VACUUM
    takes), it would make the worker and the helper exit again and again; they turn it off for
    themselves (src/pg/compat.rs)."""
    c = make_unleash_cluster(conf="autovacuum = off\n")
    # (the worker's exits while it waited for the database to be created are not the subject)
    started = len(c.log())
    try:
        # this test's own session is not the subject: it opts out
        with c.connect(options="-c transaction_timeout=0") as conn:
            pid = worker_pid(conn)
            create(conn, "timeout", sink.url("/timeout"), ["t-vacuum"])
            conn.execute("ALTER SYSTEM SET transaction_timeout = '1ms'")
            c.reload(conn, retention="1s", vacuum_interval="1s")
            deliver(conn, sink, "/timeout", 12000)
            assert wait_until(lambda: min(vacuums(conn).values()) > 0, timeout=30), vacuums(conn)
            assert worker_pid(conn) == pid
            log = c.log()[started:]
            # (PostgreSQL's own logical replication launcher does exit, again and again)
            assert not re.search(r'"unleash_webhook[^"]*" \(PID \d+\) exited with exit code [1-9]',
                                 log), log[-5000:]
            report(f"PostgreSQL {PG_MAJOR}: transaction_timeout = 1ms cluster-wide: 12,000 "
                   f"events delivered by one worker, queue vacuumed {vacuums(conn)}, no timeout")
    finally:
        c.destroy()
