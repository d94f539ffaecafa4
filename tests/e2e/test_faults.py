"""Proven under faults: crashes of the worker and of the whole server, failover to a standby,
hostile endpoints, and lifecycle changes. Each test prints what it counted."""

import json
import socket
import threading
import time

import psycopg
import pytest

from conftest import (PGBIN, SHARED, Cluster, as_postgres, free_port, insert_events, kill9,
                      make_unleash_cluster, wait_until, worker_pid)
from test_delivery import attempts, create, deliveries, settled


@pytest.fixture()
def own_cluster():
    """A cluster of its own, for tests that crash or stop it."""
    c = make_unleash_cluster()
    yield c
    c.destroy()


def counts(conn, like):
    return conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FROM "
        "unleash_webhook.deliveries WHERE subscription LIKE %s", (like,)).fetchone()


def reconnect(cluster, old_pid=None, timeout=60):
    conn = cluster.wait_connect(timeout=timeout)
    wait_until(lambda: worker_pid(conn) not in (None, old_pid), timeout=timeout)
    return conn


def received_ids(sink, paths):
    return [r.header("webhook-id") for p in paths for r in sink.on(p)]


def test_twenty_kill9_during_20000_events_to_3_subscriptions(own_cluster, sink):
    c = own_cluster
    conn = c.connect()
    paths = ["/k9-a", "/k9-b", "/k9-c"]
    for p in paths:
        create(conn, "k9" + p[3:], sink.url(p), ["t-k9"])
    n_events, kills = 20000, 20
    stop = threading.Event()

    def produce():
        with c.wait_connect() as pc:
            done = 0
            while done < n_events:
                try:
                    insert_events(pc, [("t-k9", None, None, None)] * 100)
                    done += 100
                except psycopg.OperationalError:
                    pc = reconnect(c)  # the crash restart dropped us; the INSERT rolled back
        stop.set()

    producer = threading.Thread(target=produce)
    producer.start()
    killed = 0
    while killed < kills:
        time.sleep(0.4)
        try:
            pid = worker_pid(conn)
        except psycopg.OperationalError:
            conn = reconnect(c)
            continue
        if pid:
            kill9(pid)
            killed += 1
            time.sleep(0.5)
            conn = reconnect(c, pid)
    producer.join()
    conn = reconnect(c)
    # an INSERT whose connection died at COMMIT may have committed: count what is there
    events = conn.execute("SELECT count(*) FROM events WHERE type = 't-k9'").fetchone()[0]
    assert events >= n_events
    total = events * 3
    assert wait_until(lambda: counts(conn, "k9-%") == (total, total), timeout=180), counts(conn, "k9-%")
    ids = received_ids(sink, paths)
    dupes = len(ids) - len(set(ids))
    print(f"\n{kills} kill -9 during {events} events x 3 subscriptions: {total} deliveries, "
          f"{len(ids)} requests, {dupes} duplicates, 0 lost")
    assert len(set(ids)) == total
    # a kill can only re-send what the worker had claimed: at most max_concurrency per kill
    assert dupes <= kills * 64


def test_postmaster_crash_mid_stream_loses_nothing(own_cluster, sink):
    c = own_cluster
    conn = c.connect()
    create(conn, "crash", sink.url("/crash"), ["t-crash"])
    for _ in range(30):
        insert_events(conn, [("t-crash", None, None, None)] * 100)
    wait_until(lambda: len(sink.on("/crash")) >= 200, timeout=30)
    c.stop("immediate")
    c.start()
    conn = reconnect(c)
    assert wait_until(lambda: counts(conn, "crash") == (3000, 3000), timeout=60)
    ids = received_ids(sink, ["/crash"])
    print(f"\npostmaster crash mid-stream: 3000 deliveries, {len(ids) - len(set(ids))} duplicates, 0 lost")
    assert len(set(ids)) == 3000


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
    standby.start()
    sconn = standby.wait_connect()
    assert sconn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    time.sleep(1)
    # no worker on a standby
    assert worker_pid(sconn) is None
    pconn = primary.wait_connect()
    create(pconn, "failover", sink.url("/failover"), ["t-failover"])
    committed = 0
    for i in range(20):
        insert_events(pconn, [("t-failover", None, None, None)] * 100)
        committed += 100
        if i == 10:
            # the primary dies mid-stream
            primary.stop("immediate")
            break
    as_postgres([PGBIN / "pg_ctl", "-D", standby_dir, "promote", "-w"])
    sconn = reconnect(standby)
    assert wait_until(lambda: counts(sconn, "failover")[1] >= committed and
                      counts(sconn, "failover")[0] == counts(sconn, "failover")[1], timeout=60)
    ids = received_ids(sink, ["/failover"])
    queued = counts(sconn, "failover")[1]
    print(f"\nfailover: {committed} events acknowledged by the primary, {queued} deliveries on the "
          f"promoted standby, {len(set(ids))} received, {len(ids) - len(set(ids))} duplicates")
    assert len(set(ids)) == queued >= committed
    standby.stop("immediate")


class BadServer:
    """Endpoints that misbehave at the TCP level, on 127.0.0.1."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

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

    def close(self):
        self.sock.close()


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
        cluster.reload(db, timeout="2s", max_retries="1", retry_delay="100ms")
        name = f"bad-{behaviour}"
        create(db, name, f"{scheme}://127.0.0.1:{server.port}/x", ["t-" + name])
        insert_events(db, [("t-" + name, None, None, None)])
        (d,) = settled(db, name, 1)
        a = attempts(db, d[0])
        print(f"\n{behaviour}: {d[2]} after {d[3]} attempt(s): "
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
        assert worker_pid(db)
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
    conn.execute("DROP EXTENSION unleash_webhook CASCADE")
    time.sleep(3)
    # the worker noticed, logged it, and waits: no crash, no restart loop
    assert running_worker() == pid
    assert "is not installed" in c.log()
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
    # one request at a time, each taking a second: the other deliveries stay queued
    c.reload(conn, max_concurrency_per_subscription="1")
    sink.script("/recreate", Reply(200, delay=1))
    create(conn, "recreate", sink.url("/recreate"), ["t-rec"])
    insert_events(conn, [("t-rec", None, None, None)] * 3)
    sink.wait_for("/recreate", 1)
    conn.execute("DROP TABLE events CASCADE")
    rows = settled(conn, "recreate", 3)
    # delivered before the drop, or failed with the reason after it: never stuck, no crash
    statuses = [r[2] for r in rows]
    print(f"\nevents table dropped under 3 queued deliveries: {statuses}")
    assert "failed" in statuses and set(statuses) <= {"delivered", "failed"}
    for r in rows:
        if r[2] == "failed":
            assert "no longer exists" in r[5]
    # Unleash's migrations again: the whole schema file, so drop what the file creates
    conn.execute("DROP TABLE addons, stat_environment_updates")
    conn.execute("DROP FUNCTION unleash_update_stat_environment_changes_counter()")
    c.psql_file(SHARED / "unleash" / "events-table.sql")
    conn.execute("SELECT unleash_webhook.attach('public.events')")
    insert_events(conn, [("t-rec", None, None, None)])
    assert wait_until(lambda: len(deliveries(conn, "recreate")) == 4
                      and deliveries(conn, "recreate")[-1][2] == "delivered", timeout=20)


def test_secrets_never_leak_after_a_run_full_of_failures(own_cluster, sink):
    from sink import Reply
    c = own_cluster
    conn = c.connect()
    conn.execute("ALTER SYSTEM SET log_min_messages = 'debug1'")
    conn.execute("ALTER SYSTEM SET log_statement = 'none'")
    conn.execute("SELECT pg_reload_conf()")
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
    settled(conn, "leak", 5)
    settled(conn, "leak-refused", 5)
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
    print(f"\nsecrets: {len(secrets) + 1} secrets, 10 failed deliveries, 3 refused inputs: "
          f"none in the server log ({len(log)} bytes), the views or preview")


def test_missing_database_is_waited_for_without_a_restart_loop(sink):
    c = Cluster(conf="unleash_webhook.database_name = 'later'\n")
    try:
        time.sleep(8)
        log = c.log()
        fatals = log.count('database "later" does not exist')
        assert "waiting for it to be created" in log
        # one FATAL at the first start, then a quiet wait: no restart loop
        assert log.count("FATAL") <= 1 and fatals >= 1, log
        with c.connect("postgres") as conn:
            conn.execute("CREATE DATABASE later")
        c.psql_file(SHARED / "unleash" / "events-table.sql", dbname="later")
        with c.connect("later") as conn:
            conn.execute("CREATE EXTENSION unleash_webhook")
            assert wait_until(lambda: worker_pid(conn), timeout=30)
            create(conn, "later", sink.url("/later"), ["t-later"])
            insert_events(conn, [("t-later", None, None, None)])
            assert len(sink.wait_for("/later", 1)) == 1
        print(f"\nmissing database: {log.count('FATAL')} FATAL, then waited; delivered once it existed")
        # dropped while the worker serves it: FORCE terminates the worker, which then waits
        with c.connect("postgres") as conn:
            conn.execute("DROP DATABASE later WITH (FORCE)")
            time.sleep(8)
            fatals_after = c.log().count("FATAL")
            time.sleep(6)
            # quiet: no new FATAL while it waits
            assert c.log().count("FATAL") == fatals_after
            assert c.log().count("waiting for it to be created") >= 2
            conn.execute("CREATE DATABASE later")
        c.psql_file(SHARED / "unleash" / "events-table.sql", dbname="later")
        with c.connect("later") as conn:
            conn.execute("CREATE EXTENSION unleash_webhook")
            assert wait_until(lambda: worker_pid(conn), timeout=30)
            create(conn, "later2", sink.url("/later2"), ["t-later"])
            insert_events(conn, [("t-later", None, None, None)])
            assert len(sink.wait_for("/later2", 1)) == 1
        print(f"dropped database: {c.log().count('FATAL')} FATAL in all, delivery resumed once it was back")
    finally:
        c.destroy()
