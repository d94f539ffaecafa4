"""Proven under faults: crashes of the worker and of the whole server, failover to a standby,
hostile endpoints, and lifecycle changes. Each test prints what it counted."""

import json
import os
import signal
import socket
import threading
import time

import psycopg
import pytest

from conftest import (PGBIN, UNLEASH_FIXTURES, Cluster, Ledger, Producer, as_postgres,
                      check_nothing_lost, free_port, insert_events, kill9, make_unleash_cluster,
                      reconnect, report, wait_until, worker_pid)
from tcpserver import TcpServer
from test_delivery import attempts, create, deliveries, settled


@pytest.fixture()
def own_cluster():
    """A cluster of its own, for tests that crash or stop it."""
    c = make_unleash_cluster()
    yield c
    c.destroy()


def received(sink, paths):
    return sum(len(sink.on(p)) for p in paths)


def fire_mid_stream(sink, paths, total, fault, min_received=1):
    """Waits until the endpoint has received at least `min_received` requests, then fires
    `fault()` and asserts that it hit mid-stream: some, but not all, of `total` requests had
    arrived. Returns how many had."""
    assert wait_until(lambda: received(sink, paths) >= min_received, timeout=60), \
        f"only {received(sink, paths)} requests arrived before the fault"
    before = received(sink, paths)
    fault()
    assert 0 < before < total, f"the fault did not hit mid-stream: {before} of {total} received"
    return before


def wait_all_received(sink, paths, inserted, timeout=180):
    """Waits until every path has received every inserted event (duplicates aside)."""
    want = set(inserted)
    if not wait_until(lambda: received(sink, paths) >= len(want) * len(paths), timeout=timeout):
        return False
    return wait_until(lambda: all(Ledger(sink, [p]).events(p) >= want for p in paths),
                      timeout=timeout, every=0.5)


def test_twenty_kill9_during_20000_events_to_3_subscriptions(own_cluster, sink):
    c = own_cluster
    conn = c.connect()
    paths = ["/k9-a", "/k9-b", "/k9-c"]
    for p in paths:
        create(conn, "k9" + p[3:], sink.url(p), ["t-k9"])
    # The worker records results with asynchronous commits, and a kill -9 restarts the cluster:
    # what the WAL writer had not written yet is lost and sent again. With the default 200 ms,
    # 17 and 18 wrote later than 15 and 16 (~185 duplicates per kill against ~55). The bound
    # below is about the worker's own window, so the WAL writer here writes every 10 ms.
    conn.execute("ALTER SYSTEM SET wal_writer_delay = '10ms'")
    conn.execute("SELECT pg_reload_conf()")
    n_events, kills = 20000, 20
    producer = Producer(c, "t-k9", n_events)
    hits = []
    for i in range(kills):
        pid = worker_pid(conn)
        # each kill lands after a share of the stream has arrived, never before the first
        # request nor after the last
        hits.append(fire_mid_stream(sink, paths, n_events * 3, lambda: kill9(pid),
                                    min_received=(i + 1) * n_events * 3 // (kills + 4)))
        conn = reconnect(c, pid)
    inserted = producer.join()
    assert len(inserted) == n_events
    assert wait_all_received(sink, paths, inserted), "not everything arrived"
    ledger = check_nothing_lost(sink, inserted, paths,
                                f"{kills} x kill -9 of the worker (at {hits[0]}..{hits[-1]} "
                                "requests received)")
    # a kill re-sends only what had been sent and not yet recorded: the attempts in flight
    # (max_concurrency, 64) and those finished since the last write (at most as many)
    assert ledger.duplicates() <= kills * 2 * 64


def test_postmaster_crash_mid_stream_loses_nothing(own_cluster, sink):
    c = own_cluster
    conn = c.connect()
    create(conn, "crash", sink.url("/crash"), ["t-crash"])
    producer = Producer(c, "t-crash", 3000)
    fire_mid_stream(sink, ["/crash"], 3000, lambda: c.stop("immediate"), min_received=200)
    c.start()
    inserted = producer.join()
    assert wait_all_received(sink, ["/crash"], inserted)
    check_nothing_lost(sink, inserted, ["/crash"], "postmaster crash (immediate stop) mid-stream")


def test_webhook_ids_never_name_two_requests_across_crashes_right_after_sends(sink):
    """The server crashes, losing the WAL it had not yet written out, the moment the endpoint
    has received a request, over and over while events stream in. After each restart the
    worker sends again what it had in flight; a webhook-id it re-sends must name the same
    request (same path, same body), never another event.

    Unleash's sessions commit with synchronous_commit = off here, as an operator may configure
    its database, and the WAL writer is frozen between crashes, as if the OS lost its page
    cache in each crash: every crash loses the transactions committed since the last WAL
    flush. Events are lost with them (Unleash's choice) and their ids are handed out again to
    new events; nothing the extension sent for a lost event may share its webhook-id with a
    request for another one. This is also what a failover does to what the old primary had
    committed but not yet replicated. The events that count are those the events table holds
    after the last restart."""
    c = make_unleash_cluster(conf="wal_buffers = '16MB'\n")
    try:
        crash_right_after_sends(c, sink)
    finally:
        c.destroy()


def wal_writer(conn):
    return conn.execute("SELECT pid FROM pg_stat_activity "
                        "WHERE backend_type = 'walwriter'").fetchone()[0]


def freeze_wal_writer(conn, pid):
    """Stops the WAL writer while it sleeps between rounds: stopped inside a write it would
    keep WALWriteLock, and every backend would wait for it."""
    for _ in range(1000):
        os.kill(pid, signal.SIGSTOP)
        state = conn.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                             (pid,)).fetchone()
        if state and state[0] == "WalWriterMain":
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.001)
    raise AssertionError("the WAL writer never rested")


def crash_right_after_sends(c, sink):
    conn = c.connect()
    paths = ["/clash-a", "/clash-b"]
    for p in paths:
        create(conn, p[1:], sink.url(p), ["t-clash"])
    crashes, every = 15, 200
    # Three producers whose transactions overlap and commit out of order, in small batches,
    # until the last crash: new events keep arriving between a crash and the restart, and in
    # another order than they began.
    producers = [Producer(c, "t-clash", 10**9, batch=5, pause=0.005, hold=0.02, tag=f"p{i}",
                          synchronous_commit="off")
                 for i in range(3)]
    for i in range(crashes):
        # each crash lands after `every` more requests have arrived since the last restart
        target = received(sink, paths) + every
        worker, writer = worker_pid(conn), wal_writer(conn)
        # WAL written from here on stays in shared memory until a backend must write it (its
        # buffers are full, or a synchronous commit flushes)
        freeze_wal_writer(conn, writer)
        fired = threading.Lock()
        crashed = threading.Event()
        before = []

        def crash_now(rec, target=target, fired=fired, crashed=crashed, before=before,
                      writer=writer):
            # in the endpoint's handler thread, before it answers: the worker has just sent
            # this request and waits for the response. A killed WAL writer makes the
            # postmaster restart every process, and shared memory with the WAL in it is gone.
            if received(sink, paths) >= target and fired.acquire(blocking=False):
                before.append(received(sink, paths))
                os.kill(writer, signal.SIGKILL)
                crashed.set()
        sink.on_receive = crash_now
        try:
            if not crashed.wait(120):
                activity = c.connect().execute(
                    "SELECT pid, backend_type, state, wait_event_type, wait_event, "
                    "left(query, 80) FROM pg_stat_activity").fetchall()
                raise AssertionError(
                    f"crash {i + 1} never fired: {received(sink, paths)} received, target "
                    f"{target}, producers {[(len(p.inserted), p.error) for p in producers]}\n"
                    f"{activity}\n{c.log()[-3000:]}")
        finally:
            sink.on_receive = None
        conn = reconnect(c, worker)
    for p in producers:
        p.stop()
    # what survived the crashes (the producers' acknowledged ids include lost ones)
    inserted = [r[0] for r in conn.execute("SELECT id FROM events WHERE type = 't-clash'")]
    lost_events = sum(len(p.inserted) for p in producers) - len(inserted)
    assert wait_all_received(sink, paths, inserted)
    check_nothing_lost(sink, inserted, paths,
                       f"{crashes} crashes right after sends ({lost_events} events lost with "
                       "Unleash's asynchronous commits)", sent_for_lost_events=True)


def test_failover_to_a_promoted_standby(own_cluster, sink):
    primary = own_cluster
    pconn = primary.connect()
    pconn.execute("ALTER SYSTEM SET wal_level = 'replica'")
    # synchronous: every event the primary acknowledged is on the standby too
    pconn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
    primary.stop()
    primary.start()
    standby_dir = primary.dir / "standby"
    as_postgres([PGBIN / "pg_basebackup", "-D", standby_dir, "-R", "-h", primary.dir,
                 "-p", primary.port, "-U", "postgres", "-X", "stream"])
    standby = Cluster.__new__(Cluster)
    standby.dir, standby.data, standby.pgbin = primary.dir, standby_dir, primary.pgbin
    standby.logfile = primary.dir / "standby.log"
    standby.port = free_port()
    with open(standby_dir / "postgresql.auto.conf", "a") as f:
        f.write(f"\nport = {standby.port}\nsynchronous_standby_names = ''\n")
    try:
        standby.start()
        sconn = standby.wait_connect()
        assert sconn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        # no worker on a standby: it is registered to start only once recovery has ended
        assert worker_pid(sconn) is None
        pconn = primary.wait_connect()
        create(pconn, "failover", sink.url("/failover"), ["t-failover"])
        producer = Producer(primary, "t-failover", 2000)
        # the primary dies mid-stream
        fire_mid_stream(sink, ["/failover"], 2000, lambda: primary.stop("immediate"),
                        min_received=300)
        # the producer reconnects to the promoted standby, where it finds out whether the
        # INSERT in flight when the primary died was acknowledged (synchronous replication:
        # then the standby has it)
        producer.cluster = standby
        as_postgres([PGBIN / "pg_ctl", "-D", standby_dir, "promote", "-w"])
        sconn = reconnect(standby)
        inserted = producer.join()
        assert wait_all_received(sink, ["/failover"], inserted)
        check_nothing_lost(sink, inserted, ["/failover"],
                           "primary killed mid-stream, synchronous standby promoted")
    finally:
        standby.stop("immediate")


class BadServer(TcpServer):
    """Endpoints that misbehave at the TCP level, on 127.0.0.1."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        super().__init__(self.handle)

    def read_request(self, c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk

    def handle(self, c):
        try:
            if self.behaviour == "tls-garbage":
                c.recv(1024)
                c.sendall(b"this is not TLS\r\n")
                c.close()
                return
            self.read_request(c)
            if self.behaviour == "reset":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Len")
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
            elif self.behaviour == "silent":
                time.sleep(30)
            elif self.behaviour == "huge":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
                chunk = b"x" * 65536
                for _ in range(1600):
                    c.sendall(chunk)
            elif self.behaviour == "drip":
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                    c.sendall(bytes([b]))
                    time.sleep(0.2)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


@pytest.mark.parametrize("behaviour,scheme,expect_class,expect_status", [
    ("reset", "http", "reset", None),
    ("silent", "http", "timeout", None),
    ("huge", "http", None, 200),
    ("drip", "http", "timeout", None),
    ("tls-garbage", "https", "tls", None),
])
def test_hostile_endpoints(db, cluster, behaviour, scheme, expect_class, expect_status):
    server = BadServer(behaviour)
    try:
        pid = worker_pid(db)
        assert pid
        cluster.reload(db, timeout="2s", max_retries="1", retry_delay="100ms")
        name = f"bad-{behaviour}"
        create(db, name, f"{scheme}://127.0.0.1:{server.port}/x", ["t-" + name])
        insert_events(db, [("t-" + name, None, None, None)])
        (d,) = settled(db, name, 1)
        a = attempts(db, d[0])
        report(f"hostile endpoint {behaviour}: {d[2]} after {d[3]} attempt(s): "
               + "; ".join(f"{x[1] or x[2]}: {x[3]} ({x[4]:.0f} ms)" for x in a))
        if expect_status:
            assert d[2] == "delivered" and a[-1][1] == expect_status
            assert len(a[-1][5]) <= 1024  # bounded excerpt of the 100 MB body
            assert a[-1][4] < 2000
        else:
            assert {x[2] for x in a} == {expect_class}
            assert all(x[3] for x in a)  # error text
            assert d[2] == "failed"
            # retried once unless the failure class is final
            assert d[3] == (1 if expect_class == "tls" else 2)
        # the worker is still the same process
        assert worker_pid(db) == pid
    finally:
        server.close()


def test_drop_extension_while_deliveries_are_in_flight(own_cluster, sink):
    from sink import Reply
    c = own_cluster
    conn = c.connect()
    sink.script("/slow-drop", Reply(200, delay=1))
    create(conn, "slow-drop", sink.url("/slow-drop"), ["t-drop"])
    insert_events(conn, [("t-drop", None, None, None)] * 50)
    wait_until(lambda: len(sink.on("/slow-drop")) >= 1, timeout=10)
    def running_worker():
        row = conn.execute("SELECT pid FROM pg_stat_activity "
                           "WHERE backend_type = 'unleash_webhook'").fetchone()
        return row and row[0]
    pid = running_worker()
    assert pid
    conn.execute("DROP EXTENSION unleash_webhook CASCADE")
    # the worker notices at its next turn, logs it and waits: no crash, no restart loop
    assert wait_until(lambda: "is not installed" in c.log(), timeout=20)
    assert running_worker() == pid
    assert c.log().count("terminated by signal") == 0
    # Unleash keeps writing events without us
    insert_events(conn, [("t-drop", None, None, None)])
    conn.execute("CREATE EXTENSION unleash_webhook")
    create(conn, "after-drop", sink.url("/after-drop"), ["t-drop"])
    insert_events(conn, [("t-drop", None, None, None)])
    assert len(sink.wait_for("/after-drop", 1)) == 1


def test_events_table_dropped_and_recreated(own_cluster, sink):
    from sink import Reply
    c = own_cluster
    conn = c.connect()
    # one request at a time, each taking a second; the worker hands at most 4 x the
    # concurrency to its senders (events read, bodies rendered): the other 4 stay queued
    c.reload(conn, max_concurrency_per_subscription="1")
    sink.script("/recreate", Reply(200, delay=1))
    create(conn, "recreate", sink.url("/recreate"), ["t-rec"])
    n = 8
    insert_events(conn, [("t-rec", None, None, None)] * n)
    sink.wait_for("/recreate", 1)
    conn.execute("DROP TABLE events CASCADE")
    rows = settled(conn, "recreate", n)
    # delivered before the drop, or failed with the reason after it: never stuck, no crash
    statuses = [r[2] for r in rows]
    report(f"events table dropped under {n} queued deliveries: {statuses}")
    assert "failed" in statuses and set(statuses) <= {"delivered", "failed"}
    for r in rows:
        if r[2] == "failed":
            assert "no longer exists" in r[5]
    # Unleash's migrations again: the whole schema file, so drop what the file creates
    conn.execute("DROP TABLE addons, stat_environment_updates")
    conn.execute("DROP FUNCTION unleash_update_stat_environment_changes_counter()")
    c.psql_file(UNLEASH_FIXTURES / "events-table.sql")
    conn.execute("SELECT unleash_webhook.attach('public.events')")
    insert_events(conn, [("t-rec", None, None, None)])
    assert wait_until(lambda: len(deliveries(conn, "recreate")) == n + 1
                      and deliveries(conn, "recreate")[-1][2] == "delivered", timeout=20)


def test_secrets_never_leak_after_a_run_full_of_failures(own_cluster, sink):
    from sink import Reply
    c = own_cluster
    conn = c.connect()
    conn.execute("ALTER SYSTEM SET log_min_messages = 'debug1'")
    conn.execute("ALTER SYSTEM SET log_statement = 'none'")
    c.reload_and_wait(conn)
    secrets = ["AUTH-S3CRET-1", "HDR-S3CRET-2", "URL-PW-S3CRET-3"]
    sink.script("/leak", Reply(500, body=b"server error"))
    signing = conn.execute("SELECT unleash_webhook.generate_signing_secret()").fetchone()[0]
    port = sink.port
    create(conn, "leak", f"http://user:{secrets[2]}@127.0.0.1:{port}/leak", ["t-leak"],
           authorization="Bearer " + secrets[0], headers={"X-Key": secrets[1]},
           signing_secret=signing)
    create(conn, "leak-refused", f"http://user:{secrets[2]}@127.0.0.1:9/x", ["t-leak"],
           authorization="Bearer " + secrets[0], headers={"X-Key": secrets[1]})
    # bad input that mentions the secrets must not echo them
    for bad in ({"X-Key": secrets[1] + "\r\nInjected: 1"}, {"Bad Name": secrets[1]}):
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT unleash_webhook.alter_subscription('leak', headers => %s)",
                         (json.dumps(bad),))
    with pytest.raises(psycopg.Error):
        conn.execute("SELECT unleash_webhook.alter_subscription('leak', \"authorization\" => %s)",
                     (secrets[0] + "\n",))
    insert_events(conn, [("t-leak", None, None, None)] * 5)
    # 5 events x 2 subscriptions, each tried twice (the default retry) and failed: 20 attempts,
    # every one of them logged at DEBUG1 and recorded with its error
    for name in ("leak", "leak-refused"):
        rows = settled(conn, name, 5)
        assert [(r[2], r[3]) for r in rows] == [("failed", 2)] * 5, rows
    assert len(sink.on("/leak")) == 10
    preview = conn.execute("SELECT row_to_json(p)::text FROM unleash_webhook.preview('leak', "
                           "(SELECT max(event_id) FROM unleash_webhook.deliveries)) p").fetchone()[0]
    views = "".join(str(conn.execute(f"SELECT json_agg(v) FROM unleash_webhook.{v} v").fetchone()[0])
                    for v in ("subscriptions", "deliveries", "delivery_attempts", "dead_letters",
                              "subscription_stats"))
    log = c.log()
    for s in secrets + [signing, signing[6:]]:
        assert s not in log, s
        assert s not in views, s
        assert s not in preview, s
    report(f"secrets: {len(secrets) + 1} secrets, 10 failed deliveries (20 attempts), 3 refused "
           f"inputs: none in the server log ({len(log)} bytes), the views or preview")


def waiting_checks(conn, database):
    """(pid, checks) of the worker while it waits for `database` to exist, from its
    pg_stat_activity entry ("waiting for database "x" (checked N times)"), else None."""
    row = conn.execute("SELECT pid, query FROM pg_stat_activity "
                       "WHERE backend_type = 'unleash_webhook'").fetchone()
    import re
    m = row and re.search(rf'waiting for database "{database}" \(checked (\d+) times\)', row[1] or "")
    return m and (row[0], int(m.group(1)))


def test_missing_database_is_waited_for_without_a_restart_loop(sink):
    c = Cluster(conf="unleash_webhook.database_name = 'later'\n")
    try:
        with c.connect("postgres") as conn:
            # one process keeps waiting: it has checked three times (every 5 s) and is the
            # same process throughout, so nothing restarted it in between
            first = wait_until(lambda: waiting_checks(conn, "later"), timeout=30)
            assert first, c.log()
            third = wait_until(lambda: (w := waiting_checks(conn, "later")) and w[1] >= 3 and w,
                               timeout=30)
            assert third and third[0] == first[0], (first, third)
        log = c.log()
        missing = 'FATAL:  database "later" does not exist'
        # one FATAL at the first start (connecting to a database that does not exist)
        assert log.count(missing) == 1, log
        with c.connect("postgres") as conn:
            conn.execute("CREATE DATABASE later")
        c.psql_file(UNLEASH_FIXTURES / "events-table.sql", dbname="later")
        with c.connect("later") as conn:
            conn.execute("CREATE EXTENSION unleash_webhook")
            assert wait_until(lambda: worker_pid(conn), timeout=30)
            create(conn, "later", sink.url("/later"), ["t-later"])
            insert_events(conn, [("t-later", None, None, None)])
            assert len(sink.wait_for("/later", 1)) == 1
        # dropped while the worker serves it: FORCE terminates the worker, which then waits
        with c.connect("postgres") as conn:
            conn.execute("DROP DATABASE later WITH (FORCE)")
            first = wait_until(lambda: waiting_checks(conn, "later"), timeout=30)
            third = wait_until(lambda: (w := waiting_checks(conn, "later")) and w[1] >= 3 and w,
                               timeout=30)
            assert first and third and third[0] == first[0], (first, third)
            # at most one more FATAL, for the restart that found the database gone
            assert c.log().count(missing) <= 2, c.log()
            conn.execute("CREATE DATABASE later")
        c.psql_file(UNLEASH_FIXTURES / "events-table.sql", dbname="later")
        with c.connect("later") as conn:
            conn.execute("CREATE EXTENSION unleash_webhook")
            assert wait_until(lambda: worker_pid(conn), timeout=30)
            create(conn, "later2", sink.url("/later2"), ["t-later"])
            insert_events(conn, [("t-later", None, None, None)])
            assert len(sink.wait_for("/later2", 1)) == 1
        report(f"missing database: {c.log().count(missing)} FATAL for it in all, one process "
               "waited each time; delivery resumed once it existed")
    finally:
        c.destroy()
