"""The worker, end to end: a real cluster, real events, real HTTP servers."""

import json
import ssl
import time

import pytest

from conftest import (UNLEASH_FIXTURES, Cluster, Ledger, Producer, check_nothing_lost,
                      insert_events, kill9, reconnect, wait_until, worker_pid)
from sink import Reply, Sink

SAMPLE_TYPES = ["feature-created", "feature-environment-enabled", "feature-metadata-updated",
                "feature-tagged", "feature-strategy-update", "feature-archived"]


def create(db, name, url, types, **kw):
    args = ", ".join(f'"{k}" => %({k})s' for k in kw)
    sql = "SELECT unleash_webhook.create_subscription(%(name)s, %(url)s, %(types)s" + \
        (", " + args if args else "") + ")"
    params = {"name": name, "url": url, "types": types, **kw}
    for k, v in kw.items():
        if isinstance(v, dict):
            params[k] = json.dumps(v)
    return db.execute(sql, params).fetchone()[0]


def deliveries(db, name):
    return db.execute(
        "SELECT id, event_id, status, attempts, last_status_code, last_error "
        "FROM unleash_webhook.deliveries WHERE subscription = %s ORDER BY id", (name,)).fetchall()


def attempts(db, delivery_id):
    return db.execute(
        "SELECT attempt, status_code, error_class, error, duration_ms, response_excerpt "
        "FROM unleash_webhook.delivery_attempts WHERE delivery_id = %s ORDER BY attempt",
        (delivery_id,)).fetchall()


def settled(db, name, n):
    """Waits until `name` has n deliveries, none queued, pending or sending; returns them."""
    def done():
        rows = deliveries(db, name)
        return rows if len(rows) >= n and all(r[2] not in ("queued", "pending", "sending")
                                              for r in rows) else None
    return wait_until(done, timeout=30) or deliveries(db, name)


@pytest.mark.core
def test_worker_is_visible(db):
    row = db.execute("SELECT application_name, backend_type FROM pg_stat_activity "
                     "WHERE pid = unleash_webhook.worker_pid()").fetchone()
    assert row == ("unleash_webhook", "unleash_webhook")


@pytest.mark.core
def test_a_commit_wakes_the_worker_at_once(db, cluster, sink):
    """The COMMIT that queues a delivery sets the worker's latch (src/pg/wake.rs, which finds
    it by the worker's PGPROC number, read per version in src/pg/compat.rs). With the backstop
    poll at a minute, each of five events, one commit each, must arrive within seconds."""
    cluster.reload(db, poll_interval="60s")
    create(db, "wake", sink.url("/wake"), ["t-wake"])
    # (the wait begun before the reload may still end at the old 1 s backstop: the first event
    # proves nothing alone)
    for n in range(1, 6):
        start = time.monotonic()
        insert_events(db, [("t-wake", None, None, None)])
        assert len(sink.wait_for("/wake", n, timeout=10)) == n, f"event {n} was not sent at once"
        assert time.monotonic() - start < 5


@pytest.mark.core
def test_an_insert_matches_the_subscriptions_its_snapshot_sees(db, cluster, sink):
    """The trigger keeps the subscriptions it read for as long as the snapshot stays the same
    (src/pg/capture.rs, SnapshotKey); the key names the transaction by its local id, read per
    version in src/pg/compat.rs. Two transactions of one session that import one exported
    snapshot and have made the same number of their own changes differ in that id alone: the
    second must not match a subscription the first created, which its snapshot does not see."""
    create(db, "snap-other", sink.url("/snap-other"), ["t-snap-other"])
    exporter = cluster.connect()
    session = cluster.connect()
    try:
        exporter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot = exporter.execute("SELECT pg_export_snapshot()").fetchone()[0]

        def in_snapshot(subscription, types):
            session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            session.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            create(session, subscription, sink.url("/" + subscription), types)
            [event] = insert_events(session, [("t-snap", None, None, None)])
            session.execute("COMMIT")
            return event

        first = in_snapshot("snap", ["t-snap"])
        # the same snapshot, the same own changes, the subscription above out of its sight
        second = in_snapshot("snap-late", ["t-snap-none"])
    finally:
        exporter.close()
        session.close()
    assert [json.loads(r.body)["id"] for r in sink.wait_for("/snap", 1)] == [first]
    # a later event arriving shows that the worker has turned what those two queued into
    # deliveries: the second event has none for "snap"
    insert_events(db, [("t-snap-other", None, None, None)])
    assert len(sink.wait_for("/snap-other", 1)) == 1
    assert [r for r in deliveries(db, "snap") if r[1] == second] == []
    assert [json.loads(r.body)["id"] for r in sink.on("/snap")] == [first]


def unleash_tables_in_schema(cluster, schema):
    """Unleash's tables in a schema of their own (a second Unleash, as DATABASE_SCHEMA allows),
    with the capture trigger attached: events whose ids clash with no other test's."""
    cluster.psql_file_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; "
                          f"SET search_path = {schema}; "
                          + (UNLEASH_FIXTURES / "events-table.sql").read_text()
                          + f"SELECT unleash_webhook.attach('{schema}.events');")


@pytest.mark.core
def test_sample_events_arrive_byte_identical(db, cluster, sink):
    create(db, "bodies", sink.url("/bodies"), SAMPLE_TYPES)
    create(db, "bodies-auth", sink.url("/bodies-auth"), ["feature-created"],
           authorization="Bearer tok", headers={"X-Team": "flags", "content-type": "text/x-custom"})
    # Unleash's real rows keep their real ids (14-24), which the bodies contain
    unleash_tables_in_schema(cluster, "samples")
    cluster.psql_file_sql("SET search_path = samples;\n"
                          + (UNLEASH_FIXTURES / "sample-events.sql").read_text())
    got = sink.wait_for("/bodies", 6)
    assert len(got) == 6
    expected = {}
    for line in (UNLEASH_FIXTURES / "expected-default-bodies.jsonl").read_text().splitlines():
        e = json.loads(line)
        expected[e["event_id"]] = e["body"].encode()
    by_id = {json.loads(r.body)["id"]: r for r in got}
    assert sorted(by_id) == sorted(expected)
    for event_id, body in expected.items():
        r = by_id[event_id]
        assert r.body == body, event_id
        assert r.header("Content-Type") == "application/json"
        assert r.header("Authorization") is None
        assert r.header("webhook-id").startswith("msg_")
    (a,) = sink.wait_for("/bodies-auth", 1)
    assert a.body == expected[14]
    assert a.header("Authorization") == "Bearer tok"
    assert a.header("X-Team") == "flags"
    # a custom header replaces the one of the same name
    assert a.header("Content-Type") == "text/x-custom"
    assert [k.lower() for k, _ in a.headers].count("content-type") == 1
    rows = settled(db, "bodies", 6)
    assert [r[2] for r in rows] == ["delivered"] * 6
    # the rendered body is kept once per delivery
    stored = db.execute("SELECT request_body FROM unleash_webhook.deliveries "
                        "WHERE subscription = 'bodies' AND event_id = 14").fetchone()[0]
    assert stored.encode() == expected[14]
    cluster.psql_file_sql("DROP SCHEMA samples CASCADE")


def test_template_renders_as_mustache_js(db, sink):
    tpl = ('{"event": "{{event.type}}", "createdBy": "{{event.createdBy}}", '
           '"featureToggle": "{{event.data.name}}", "desc": "{{event.data.description}}", '
           '"raw": "{{{event.data.description}}}", '
           '"tags": "{{#event.tags}}{{value}};{{/event.tags}}", "at": "{{event.createdAt}}"}')
    create(db, "tpl", sink.url("/tpl"), ["feature-updated"], body_template=tpl,
           content_type="text/plain")
    db.execute("""INSERT INTO events (created_at, type, created_by, data, tags, project, feature_name)
                  VALUES ('2026-11-26T21:30:59.123456Z', 'feature-updated', 'alice',
                          '{"name": "f1", "description": "a<b & \\"c\\" / d"}',
                          '[{"value":"t1","type":"simple"},{"value":"t2","type":"simple"}]',
                          'default', 'f1')""")
    (r,) = sink.wait_for("/tpl", 1)
    assert r.header("Content-Type") == "text/plain"
    assert r.body.decode() == (
        '{"event": "feature-updated", "createdBy": "alice", "featureToggle": "f1", '
        '"desc": "a&lt;b &amp; &quot;c&quot; &#x2F; d", "raw": "a<b & "c" / d", '
        '"tags": "t1;t2;", "at": "Thu Nov 26 2026 21:30:59 GMT+0000 (Coordinated Universal Time)"}')


@pytest.mark.core
def test_503_then_200_is_delivered_after_two_attempts(db, sink):
    sink.script("/r503", Reply(503), Reply(200, body=b"thanks"))
    create(db, "r503", sink.url("/r503"), ["t-503"])
    insert_events(db, [("t-503", "default", None, "f")])
    (d,) = settled(db, "r503", 1)
    assert d[2:5] == ("delivered", 2, 200)
    a = attempts(db, d[0])
    assert [(x[0], x[1]) for x in a] == [(1, 503), (2, 200)]
    assert a[1][5] == "thanks"
    got = sink.on("/r503")
    assert len(got) == 2
    # the same delivery id on the retry
    assert got[0].header("webhook-id") == got[1].header("webhook-id")
    # the retry waited the default 300 ms
    assert got[1].at - got[0].at >= 0.29


@pytest.mark.core
def test_500_twice_fails_after_two_attempts(db, sink):
    sink.script("/r500", Reply(500, body=b"boom"))
    create(db, "r500", sink.url("/r500"), ["t-500"])
    insert_events(db, [("t-500", None, None, None)])
    (d,) = settled(db, "r500", 1)
    assert d[2:5] == ("failed", 2, 500)
    assert [x[1] for x in attempts(db, d[0])] == [500, 500]


def test_404_fails_at_once(db, sink):
    sink.script("/r404", Reply(404))
    create(db, "r404", sink.url("/r404"), ["t-404"])
    insert_events(db, [("t-404", None, None, None)])
    (d,) = settled(db, "r404", 1)
    assert d[2:5] == ("failed", 1, 404)


def test_redirect_is_not_followed(db, sink):
    sink.script("/r301", Reply(301, headers={"Location": sink.url("/r301-target")}))
    create(db, "r301", sink.url("/r301"), ["t-301"])
    insert_events(db, [("t-301", None, None, None)])
    (d,) = settled(db, "r301", 1)
    assert d[2:5] == ("failed", 1, 301)
    # the attempt is over: had the client followed the redirect, it would have done so in it
    assert sink.on("/r301-target") == []


def test_retry_after_is_honoured(db, sink):
    sink.script("/r429", Reply(429, headers={"Retry-After": "1"}), Reply(200))
    create(db, "r429", sink.url("/r429"), ["t-429"])
    insert_events(db, [("t-429", None, None, None)])
    got = sink.wait_for("/r429", 2)
    assert len(got) == 2
    assert got[1].at - got[0].at >= 0.95
    (d,) = settled(db, "r429", 1)
    assert d[2] == "delivered"


def test_connection_refused_is_retried_then_failed(db):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    create(db, "refused", f"http://127.0.0.1:{port}/x", ["t-refused"])
    insert_events(db, [("t-refused", None, None, None)])
    (d,) = settled(db, "refused", 1)
    assert d[2:4] == ("failed", 2)
    a = attempts(db, d[0])
    assert [x[2] for x in a] == ["connect", "connect"]
    assert all(x[1] is None for x in a)


def test_hanging_endpoint_does_not_delay_others(db, cluster, sink):
    cluster.reload(db, timeout="1500ms", max_retries="0")
    sink.script("/hang", Reply(200, delay=5))
    create(db, "hang", sink.url("/hang"), ["t-iso"])
    create(db, "healthy", sink.url("/healthy"), ["t-iso"])
    for _ in range(20):
        insert_events(db, [("t-iso", None, None, None)])
        time.sleep(0.02)  # a stream of events, 50 a second
    got = sink.wait_for("/healthy", 20, timeout=10)
    assert len(got) == 20
    # every healthy delivery arrived while the first hanging request was still waiting on its
    # 1.5 s timeout, i.e. before any hanging attempt could have freed a sender
    first_hang = min(r.at for r in sink.wait_for("/hang", 1))
    assert max(r.at for r in got) < first_hang + 1.5, (max(r.at for r in got) - first_hang)
    rows = settled(db, "hang", 20)
    assert {r[2] for r in rows} == {"failed"}
    errors = {a[2] for r in rows for a in attempts(db, r[0])}
    assert errors == {"timeout"}


def most_at_once(received):
    """The most requests the endpoint was answering at the same moment."""
    edges = sorted([(r.at, 1) for r in received] + [(r.replying, -1) for r in received],
                   key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_concurrency_per_subscription_is_what_the_endpoint_sees(db, cluster, sink):
    """The worker queues requests ahead of its senders; the endpoint still never sees more of
    one subscription's requests at once than max_concurrency_per_subscription, and a
    subscription at its limit does not hold back another."""
    cluster.reload(db, max_concurrency_per_subscription="2")
    for path in ("/conc-a", "/conc-b"):
        sink.script(path, Reply(200, delay=0.2))
    create(db, "conc-a", sink.url("/conc-a"), ["t-conc"])
    create(db, "conc-b", sink.url("/conc-b"), ["t-conc"])
    insert_events(db, [("t-conc", None, None, None)] * 10)
    got = {p: sink.wait_for(p, 10) for p in ("/conc-a", "/conc-b")}
    assert wait_until(lambda: all(r.answered for rs in got.values() for r in rs))
    assert [len(rs) for rs in got.values()] == [10, 10]
    # each at its limit, exactly, and both at once
    assert [most_at_once(rs) for rs in got.values()] == [2, 2]
    assert most_at_once(got["/conc-a"] + got["/conc-b"]) == 4


def thread_stat(pid, field):
    """One field of /proc/PID/task/TID/stat for each thread of a process, numbered as proc(5)
    numbers them (19: nice, 41: scheduling policy)."""
    import os
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            # fields 1 and 2 are the pid and the (parenthesized, any-character) name
            out[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[field - 3])
    return out


def thread_nice(pid):
    return thread_stat(pid, 19)


def test_worker_yields_the_cpu_to_unleash(db, cluster, sink):
    """The worker and its senders run at unleash_webhook.worker_nice (10 by default), so that
    Unleash's own queries come first on a busy machine; a reload raises it at once, for every
    thread. The senders are batch-scheduled."""
    create(db, "nice", sink.url("/nice"), ["t-nice"])
    insert_events(db, [("t-nice", None, None, None)] * 20)
    assert len(sink.wait_for("/nice", 20)) == 20
    pid = worker_pid(db)
    nice = thread_nice(pid)
    assert len(nice) > 1 and set(nice.values()) == {10}, nice
    # the senders are SCHED_BATCH (3): woken by a response, they wait for the running
    # thread's slice instead of taking its CPU; the main thread stays SCHED_OTHER (0)
    policy = thread_stat(pid, 41)
    assert policy.pop(pid) == 0
    assert set(policy.values()) == {3}, policy
    cluster.reload(db, worker_nice="15")
    insert_events(db, [("t-nice", None, None, None)] * 20)
    assert len(sink.wait_for("/nice", 40)) == 40
    assert set(thread_nice(pid).values()) == {15}, thread_nice(pid)
    # lowering needs a new worker process: said in the log, nothing else changes
    log_before = len(cluster.log())
    cluster.reload(db, worker_nice="0")
    assert "takes effect when the worker starts again" in cluster.log()[log_before:]
    insert_events(db, [("t-nice", None, None, None)])
    assert len(sink.wait_for("/nice", 41)) == 41


def test_drop_with_attempts_in_flight_leaves_nothing_pending(db, cluster, sink):
    """An attempt in flight when its subscription is dropped ends after the drop (here: a
    timeout, which would be retried): the delivery ends cancelled, not pending for ever."""
    cluster.reload(db, timeout="1s", retry_delay="0")
    sink.script("/dropped", Reply(200, delay=3))
    create(db, "dropped", sink.url("/dropped"), ["t-dropped"])
    insert_events(db, [("t-dropped", None, None, None)] * 3)
    assert len(sink.wait_for("/dropped", 3)) == 3
    db.execute("SELECT unleash_webhook.drop_subscription('dropped')")
    # the timeouts come back after the drop; within a claim turn they are cancelled
    assert wait_until(lambda: [r[2] for r in deliveries(db, "dropped")] == ["cancelled"] * 3,
                      timeout=15), deliveries(db, "dropped")
    assert all(r[3] == 1 for r in deliveries(db, "dropped"))


def test_rolled_back_insert_sends_nothing(db, sink, cluster):
    create(db, "rollback", sink.url("/rollback"), ["t-rollback", "t-after"])
    with cluster.connect() as conn:
        conn.autocommit = False
        insert_events(conn, [("t-rollback", None, None, None)])
        conn.rollback()
    # a committed event to the same subscription after it: once it has arrived and nothing is
    # left to send, a queued rolled-back event would have been sent too
    (after,) = insert_events(db, [("t-after", None, None, None)])
    (r,) = sink.wait_for("/rollback", 1)
    assert json.loads(r.body)["id"] == after
    assert [d[1] for d in settled(db, "rollback", 1)] == [after]
    assert [json.loads(r.body)["id"] for r in sink.on("/rollback")] == [after]


@pytest.mark.core
def test_copy_and_savepoints_deliver_exactly_what_committed(db, sink, cluster):
    """The trigger keeps what it matched in memory until the statement ends, or for COPY (which
    does not end through the executor) until the enclosing subtransaction or transaction commits
    or the next statement in it ends. Whatever a rolled-back savepoint inserted is dropped;
    nothing else is, and nothing is queued twice."""
    create(db, "copy", sink.url("/copy"), ["t-copy"])

    def copy(feature, table="events"):
        return (f"COPY {table} (type, created_by, feature_name) FROM STDIN;\n"
                f"t-copy\tadmin\t{feature}\n\\.\n")

    def insert(feature):
        return ("INSERT INTO events (type, created_by, feature_name) "
                f"VALUES ('t-copy', 'admin', '{feature}');\n")

    # a second events table, so that one transaction has events of both pending at once
    unleash_tables_in_schema(cluster, "copy2")
    # psql runs it as written: no statement of its own in between
    cluster.psql_file_sql(
        "BEGIN;\n" + copy("c1") + copy("c2")           # top level: pending until COMMIT
        + "SAVEPOINT a;\n" + insert("gone-1")          # written at its statement's end...
        + copy("gone-2")
        + "ROLLBACK TO SAVEPOINT a; RELEASE SAVEPOINT a;\n"  # ...and both dropped with a
        + "SAVEPOINT b;\n" + copy("c3")
        + "RELEASE SAVEPOINT b;\n"                     # written inside b as it is released
        + "SAVEPOINT c;\n" + insert("gone-3") + "ROLLBACK TO SAVEPOINT c; RELEASE SAVEPOINT c;\n"
        # back at the top level, with c1 and c2 still pending: one table, the other, the
        # first again
        + copy("c4", "copy2.events") + copy("c5")
        + "COMMIT;\n")
    wanted = ["c1", "c2", "c3", "c4", "c5"]
    sink.wait_for("/copy", 5)
    rows = settled(db, "copy", 5)
    assert [r[2] for r in rows] == ["delivered"] * 5, rows
    # all sent: exactly the committed ones arrived, each once
    names = sorted(json.loads(r.body)["featureName"] for r in sink.on("/copy"))
    assert names == wanted, names
    cluster.psql_file_sql("DROP SCHEMA copy2 CASCADE")


def test_sighup_reload_applies_settings(db, cluster, sink):
    sink.script("/reload", Reply(500))
    cluster.reload(db, max_retries="0")
    create(db, "reload", sink.url("/reload"), ["t-reload"])
    insert_events(db, [("t-reload", None, None, None)])
    (d,) = settled(db, "reload", 1)
    assert d[2:4] == ("failed", 1)
    log_before = len(cluster.log())
    cluster.reload(db, max_retries="2")
    # the worker says what it applied
    assert "max_retries=2" in cluster.log()[log_before:]
    db.execute("SELECT unleash_webhook.redeliver(%s)", (d[0],))
    (d,) = settled(db, "reload", 1)
    assert d[2:4] == ("failed", 4)  # 1 before + 3 in the new round


def test_redeliver_sends_again_with_same_id(db, sink):
    create(db, "again", sink.url("/again"), ["t-again"])
    insert_events(db, [("t-again", None, None, None)])
    (d,) = settled(db, "again", 1)
    db.execute("SELECT unleash_webhook.redeliver(%s)", (d[0],))
    got = sink.wait_for("/again", 2)
    assert len(got) == 2
    assert got[0].header("webhook-id") == got[1].header("webhook-id")
    assert got[0].body == got[1].body


def make_tls():
    """A CA made for this test and a certificate it signed for localhost and 127.0.0.1."""
    import tempfile
    import pathlib
    import trustme
    # somewhere the postgres user can read (pytest's tmp_path is private to root)
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="uw-tls-"))
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca_file.chmod(0o644)
    tmp_path.chmod(0o755)
    return ctx, ca_file


def test_custom_ca_over_tls(db, cluster):
    ctx, ca_file = make_tls()
    tls = Sink(tls_context=ctx)
    try:
        cluster.reload(db, max_retries="0")
        create(db, "tls", tls.url("/tls"), ["t-tls"])
        insert_events(db, [("t-tls", None, None, None)])
        (d,) = settled(db, "tls", 1)
        assert d[2] == "failed"
        assert attempts(db, d[0])[0][2] == "tls"
        assert tls.on("/tls") == []
        # trusted after a reload, without a restart
        cluster.reload(db, ca_file=str(ca_file))
        db.execute("SELECT unleash_webhook.redeliver(%s)", (d[0],))
        got = tls.wait_for("/tls", 1)
        assert len(got) == 1
        (d,) = settled(db, "tls", 1)
        assert d[2:5] == ("delivered", 2, 200)
    finally:
        tls.close()


@pytest.mark.core
def test_kill9_of_the_worker_loses_nothing(db, cluster, sink):
    create(db, "bulk", sink.url("/bulk"), ["t-bulk"])
    n = 3000
    producer = Producer(cluster, "t-bulk", n)
    assert wait_until(lambda: len(sink.on("/bulk")) >= 300, timeout=30)
    pid = worker_pid(db)
    before = len(sink.on("/bulk"))
    kill9(pid)
    assert 0 < before < n, f"the kill did not hit mid-stream: {before} of {n} received"
    # the postmaster restarts every backend after a crash: reconnect
    conn = reconnect(cluster, pid)
    inserted = producer.join()
    assert wait_until(lambda: Ledger(sink, ["/bulk"]).events("/bulk") >= set(inserted),
                      timeout=90, every=0.5)
    check_nothing_lost(sink, inserted, ["/bulk"],
                       f"kill -9 of the worker after {before} of {n} deliveries")
    conn.close()


@pytest.mark.core
def test_library_must_be_preloaded():
    c = Cluster(preload=False)
    try:
        with c.connect("postgres") as conn:
            with pytest.raises(Exception) as e:
                conn.execute("CREATE EXTENSION unleash_webhook")
            assert "shared_preload_libraries" in str(e.value)
            assert e.value.sqlstate == "55000"
            assert "Add unleash_webhook to shared_preload_libraries" in e.value.diag.message_hint
    finally:
        c.destroy()
