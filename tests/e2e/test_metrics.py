"""docs/prometheus/queries.yaml, scraped for real: a cluster after a mixed run (delivered,
failed after a retry, delivered after a 503, one still in flight), Debian's
prometheus-postgres-exporter started with that file, /metrics read over HTTP, values checked.

The exporter comes from the Debian package `prometheus-postgres-exporter` (binary
/usr/bin/prometheus-postgres-exporter). Without it these tests FAIL, they do not skip.
It runs as the package's own `prometheus` user (as its systemd unit does), not as root.
"""

import contextlib
import math
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import psycopg
import pytest

from conftest import ROOT, free_port, insert_events, make_unleash_cluster, wait_until, worker_pid
from sink import Reply, Sink
from test_delivery import settled

QUERIES = ROOT / "docs" / "prometheus" / "queries.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
EXPORTER_PACKAGE = "prometheus-postgres-exporter"


def exporter_binary():
    path = shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: install the Debian package {EXPORTER_PACKAGE} "
                    f"(apt-get install -y {EXPORTER_PACKAGE})", pytrace=False)
    return path


def exporter_account():
    """The OS account the exporter runs as: the package's `prometheus` user, else nobody."""
    for name in ("prometheus", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    pytest.fail("no unprivileged OS user (prometheus or nobody) to run the exporter as")


class Exporter:
    """prometheus-postgres-exporter with our queries file, on 127.0.0.1:<free port>."""

    def __init__(self, cluster, db_user="postgres", args=()):
        binary = exporter_binary()
        account = exporter_account()
        # The cluster's socket directory is postgres's 0700 temp dir: let others traverse it
        # (the socket itself is 0777, PostgreSQL's default) so the exporter's user reaches it.
        os.chmod(cluster.dir, 0o711)
        # A copy the exporter's user can read whatever the checkout's permissions.
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="uw-exporter-"))
        self.tmp.chmod(0o755)
        queries = self.tmp / "queries.yaml"
        shutil.copyfile(QUERIES, queries)
        queries.chmod(0o644)
        self.logfile = self.tmp / "exporter.log"
        self.port = free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "DATA_SOURCE_NAME": f"host={cluster.dir} port={cluster.port} user={db_user} "
                                "dbname=unleash sslmode=disable",
        }
        with open(self.logfile, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--extend.query-path={queries}", *args],
                env=env, cwd="/", user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}/metrics"

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"the exporter exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False
        if not wait_until(listening, timeout=20, every=0.1):
            self.close()
            raise AssertionError(f"the exporter did not answer on {self.url}:\n{self.log()}")

    def log(self):
        return self.logfile.read_text(errors="replace")

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=20) as r:
            return Metrics(r.read().decode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """The Prometheus text exposition format, parsed: samples and # TYPE lines."""

    def __init__(self, text):
        self.text = text
        self.samples = []  # (name, {label: value}, float)
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind
            elif line and not line.startswith("#"):
                m = SAMPLE.match(line)
                assert m, f"unparsable line {line!r}"
                labels = dict(LABEL.findall(m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def get(self, name, **labels):
        found = [v for n, ls, v in self.samples
                 if n == name and all(ls.get(k) == v2 for k, v2 in labels.items())]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples\n" + "\n".join(
            ln for ln in self.text.splitlines() if ln.startswith("unleash_webhook"))
        return found[0]

    def names(self, prefix):
        return {n for n, _, _ in self.samples if n.startswith(prefix)}


@pytest.fixture(scope="module")
def mixed():
    """A cluster after a mixed run, shared by the tests that only read it."""
    with mixed_run() as cluster:
        yield cluster


@contextlib.contextmanager
def mixed_run():
    """A cluster after a mixed run. The hanging endpoint answers after 10 minutes and the
    attempt timeout is 10 minutes (not 10 s), so that delivery stays in flight (status
    'sending', counted as pending) for the whole module. Pausing a subscription would not do:
    a paused subscription captures nothing."""
    cluster = make_unleash_cluster(conf="unleash_webhook.timeout = '600s'\n")
    sink = Sink()
    try:
        sink.script("/m-fail", Reply(500, body=b"boom"))
        sink.script("/m-retry", Reply(503), Reply(200))
        sink.script("/m-hang", Reply(200, delay=600))
        db = cluster.connect()
        for name in ("m-ok", "m-fail", "m-retry", "m-hang"):
            db.execute("SELECT unleash_webhook.create_subscription(%s, %s, %s)",
                       (name, sink.url("/" + name), [name]))
        # one multi-row INSERT, as Unleash writes a transaction's events
        insert_events(db, [("m-ok", "default", "production", "f1"),
                           ("m-ok", "default", "production", "f2"),
                           ("m-fail", "default", None, "f3"),
                           ("m-retry", "default", None, "f4"),
                           ("m-hang", "default", None, "f5")])
        assert [r[2] for r in settled(db, "m-ok", 2)] == ["delivered"] * 2
        assert [r[2] for r in settled(db, "m-fail", 1)] == ["failed"]
        assert [r[2] for r in settled(db, "m-retry", 1)] == ["delivered"]
        assert len(sink.wait_for("/m-hang", 1)) == 1
        # 6 attempts finished (2 ok, 500 + 500, 503 + 200), 2 of them scheduled a retry;
        # the hanging one is in flight
        expected = (1, 6, 3, 1, 2)
        assert wait_until(lambda: db.execute(
            "SELECT in_flight, attempts, delivered, failed, retries "
            "FROM unleash_webhook.worker_status()").fetchone() == expected), \
            db.execute("SELECT * FROM unleash_webhook.worker_status()").fetchone()
        db.close()
        yield cluster
    finally:
        sink.close()
        cluster.destroy()


def check_mixed_run(m):
    sub = "unleash_webhook_subscription_"
    assert m.get(sub + "delivered", subscription="m-ok") == 2
    assert m.get(sub + "failed", subscription="m-ok") == 0
    assert m.get(sub + "retried", subscription="m-ok") == 0
    assert m.get(sub + "pending", subscription="m-ok") == 0
    assert m.get(sub + "failed", subscription="m-fail") == 1
    assert m.get(sub + "delivered", subscription="m-fail") == 0
    assert m.get(sub + "retried", subscription="m-fail") == 1
    assert m.get(sub + "delivered", subscription="m-retry") == 1
    assert m.get(sub + "retried", subscription="m-retry") == 1
    assert m.get(sub + "failed", subscription="m-retry") == 0
    assert m.get(sub + "pending", subscription="m-hang") == 1
    assert m.get(sub + "delivered", subscription="m-hang") == 0
    assert m.get(sub + "enabled", subscription="m-hang") == 1
    age = m.get(sub + "oldest_pending_age_seconds", subscription="m-hang")
    assert 0 < age < 600
    assert m.get(sub + "oldest_pending_age_seconds", subscription="m-ok") == 0
    # latency over the last hour, in seconds: local deliveries take milliseconds
    p50 = m.get(sub + "latency_p50_seconds", subscription="m-ok")
    p95 = m.get(sub + "latency_p95_seconds", subscription="m-ok")
    assert 0 < p50 <= p95 < 5
    # the 503 -> 200 delivery waited the 300 ms retry delay
    assert m.get(sub + "latency_p50_seconds", subscription="m-retry") >= 0.29
    # nothing delivered: no latency (NaN), not a made-up 0
    assert math.isnan(m.get(sub + "latency_p50_seconds", subscription="m-fail"))
    assert math.isnan(m.get(sub + "latency_p95_seconds", subscription="m-hang"))
    now = time.time()
    assert now - 120 < m.get(sub + "last_success_timestamp_seconds", subscription="m-ok") <= now + 1
    assert now - 120 < m.get(sub + "last_failure_timestamp_seconds", subscription="m-fail") <= now + 1
    assert math.isnan(m.get(sub + "last_failure_timestamp_seconds", subscription="m-ok"))

    w = "unleash_webhook_worker_"
    assert m.get(w + "up") == 1
    assert m.get(w + "primary") == 1
    assert m.get(w + "in_flight") == 1
    assert m.get(w + "attempts_total") == 6
    assert m.get(w + "delivered_total") == 3
    assert m.get(w + "failed_total") == 1
    assert m.get(w + "retries_total") == 2
    assert m.get(w + "purged_total") == 0
    assert now - 600 < m.get(w + "start_time_seconds") <= now + 1

    # types: the worker's totals are counters, everything else a gauge
    for name in m.names("unleash_webhook_"):
        want = "counter" if name.endswith("_total") else "gauge"
        assert m.types.get(name) == want, name


def test_exporter_scrapes_the_mixed_run(mixed):
    exporter = Exporter(mixed)
    try:
        m = exporter.scrape()
        assert m.get("pg_up") == 1
        assert m.get("pg_exporter_user_queries_load_error") == 0
        check_mixed_run(m)
        # our queries ran without error (nor did the exporter's own default ones)
        assert m.get("pg_exporter_last_scrape_error") == 0, exporter.log()
        # every metric of the file, and no others under our prefix
        assert m.names("unleash_webhook_") == {
            "unleash_webhook_subscription_" + c for c in (
                "enabled", "pending", "delivered", "failed", "retried",
                "oldest_pending_age_seconds", "latency_p50_seconds", "latency_p95_seconds",
                "last_success_timestamp_seconds", "last_failure_timestamp_seconds")
        } | {
            "unleash_webhook_worker_" + c for c in (
                "up", "primary", "in_flight", "attempts_total", "delivered_total", "failed_total",
                "retries_total", "purged_total", "start_time_seconds",
                "last_activity_timestamp_seconds")
        }
    finally:
        exporter.close()
    assert exporter.proc.poll() is not None


def sql_block_with(path, needle):
    blocks = re.findall(r"^```sql\n(.*?)^```", path.read_text(), re.S | re.M)
    found = [b for b in blocks if needle in b]
    assert len(found) == 1, f"{path}: {len(found)} ```sql blocks contain {needle!r}"
    return found[0]


def test_monitoring_role_of_the_operations_guide_is_enough(mixed):
    """The GRANT block of docs/operations.md, run as written, lets a role without superuser
    run the queries file (and nothing else: no private table, no management function)."""
    block = sql_block_with(OPERATIONS, "GRANT USAGE ON SCHEMA unleash_webhook")
    role = re.search(r"CREATE ROLE (\w+)", block).group(1)
    with mixed.connect() as db:
        db.execute(block)
    with psycopg.connect(host=str(mixed.dir), port=mixed.port, user=role, dbname="unleash",
                         autocommit=True) as conn:
        for private in ("_subscriptions", "_deliveries", "_attempts", "_inbox"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM unleash_webhook.{private} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT unleash_webhook.pause_subscription('m-ok')")
        assert conn.execute("SELECT count(*) FROM unleash_webhook.subscriptions").fetchone()[0] == 4
    exporter = Exporter(mixed, db_user=role,
                        args=["--disable-default-metrics", "--disable-settings-metrics"])
    try:
        m = exporter.scrape()
        check_mixed_run(m)
        assert m.get("pg_exporter_last_scrape_error") == 0, exporter.log()
    finally:
        exporter.close()


def test_worker_up_drops_to_0_while_it_restarts():
    # a cluster of its own: the other tests read the shared one's worker counters
    with mixed_run() as mixed:
        worker_restarts_while_scraped(mixed)


def worker_restarts_while_scraped(mixed):
    exporter = Exporter(mixed)
    try:
        with mixed.connect() as db:
            pid = worker_pid(db)
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # the postmaster starts it again after a few seconds: scrape in between
            seen = []

            def down():
                m = exporter.scrape()
                seen.append(m.get("unleash_webhook_worker_up"))
                return seen[-1] == 0 and m
            m = wait_until(down, timeout=20, every=0.02)
            assert m, f"worker_up never 0: {seen}"
            assert m.get("unleash_webhook_worker_in_flight") == 0
            assert m.get("unleash_webhook_worker_attempts_total") == 0
            assert m.get("unleash_webhook_worker_start_time_seconds") == 0
            assert wait_until(lambda: worker_pid(db) not in (None, pid), timeout=30)
        m = exporter.scrape()
        assert m.get("unleash_webhook_worker_up") == 1
        # the delivery that was in flight is pending again, not lost
        assert m.get("unleash_webhook_subscription_pending", subscription="m-hang") == 1
    finally:
        exporter.close()
