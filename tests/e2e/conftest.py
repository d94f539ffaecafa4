"""Out-of-process test harness: a real PostgreSQL 15 cluster with the installed extension
preloaded, Unleash's real events table, and real HTTP servers on 127.0.0.1.

The extension must be installed into the system PostgreSQL first (`cargo pgrx install`, which
tests/run.sh does). Tests run as root; PostgreSQL runs as the `postgres` user.
"""

import os
import pathlib
import pwd
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
SHARED = pathlib.Path(os.environ.get("UNLEASH_SHARED", ROOT.parent / "shared"))
PGBIN = pathlib.Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
# Debian's layout: binaries and libraries under PGHOME, scripts and extensions under PGSHARE.
PGHOME = PGBIN.parent
PGSHARE = pathlib.Path("/usr/share/postgresql/15")


def installed_extension_files():
    """Our files in the system PostgreSQL: what `cargo pgrx install` or the package put there."""
    return [PGHOME / "lib" / "unleash_webhook.so",
            *sorted((PGSHARE / "extension").glob("unleash_webhook*"))]


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
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="uw-", dir="/tmp"))
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

    def connect(self, dbname="unleash", **kw):
        return psycopg.connect(host=str(self.dir), port=self.port, user="postgres",
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
        for k, v in settings.items():
            conn.execute(f"ALTER SYSTEM SET unleash_webhook.{k} = '{v}'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # the worker applies SIGHUP at its next loop turn

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres:
    """A copy of the system PostgreSQL 15 (binaries, libraries, share) in a temporary directory.

    PostgreSQL finds its library and share directories relative to its own binary, so a cluster
    started from this copy loads extensions from here: a test can install another version of the
    extension into it (overlay) without touching the system installation other tests use."""

    def __init__(self):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="uw-pg-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        shutil.copytree(PGHOME, self.root / PGHOME.relative_to("/"), symlinks=True,
                        ignore=shutil.ignore_patterns("bitcode", "unleash_webhook*"))
        shutil.copytree(PGSHARE, self.root / PGSHARE.relative_to("/"), symlinks=True,
                        ignore=shutil.ignore_patterns("man", "unleash_webhook*"))
        self.bin = self.root / PGBIN.relative_to("/")

    def overlay(self, package_root):
        """Installs a package tree (usr/...) over this copy, as `dpkg -i` would: every file
        replaced by a rename, and files of the previous version that the new one lacks removed."""
        ext = self.root / PGSHARE.relative_to("/") / "extension"
        for old in ext.glob("unleash_webhook*"):
            old.unlink()
        src_root = pathlib.Path(package_root) / "usr"
        for src in src_root.rglob("*"):
            if src.is_file() and "/doc/" not in str(src):
                dst = self.root / "usr" / src.relative_to(src_root)
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".new")
                shutil.copy2(src, tmp)
                os.chmod(tmp, 0o755 if dst.suffix == ".so" else 0o644)
                os.replace(tmp, dst)

    def destroy(self):
        shutil.rmtree(self.root, ignore_errors=True)


def make_unleash_cluster(**kw):
    c = Cluster(**kw)
    with c.connect("postgres") as conn:
        conn.execute("CREATE DATABASE unleash")
    c.psql_file(SHARED / "unleash" / "events-table.sql")
    with c.connect() as conn:
        conn.execute("CREATE EXTENSION unleash_webhook")
        # The worker started before the database existed: it waits for it and reconnects
        # within a few seconds; wait for that.
        if not wait_until(lambda: worker_pid(conn), timeout=30):
            raise RuntimeError("the worker did not start:\n" + c.log())
    return c


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
        conn.execute("SELECT pg_reload_conf()")
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


def kill9(pid):
    os.kill(pid, signal.SIGKILL)
