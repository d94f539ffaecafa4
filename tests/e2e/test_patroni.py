"""High availability under Patroni, the HA manager self-hosted PostgreSQL runs with.

Three PostgreSQL nodes on 127.0.0.1 (own ports and data directories under the run's directory)
managed by Patroni with one local etcd (v2 API), synchronous mode on, our library preloaded on
every node. While events stream in, as Unleash writes them:
  1. switchover: `patronictl switchover` to the synchronous standby;
  2. failover: the leader node is lost (its Patroni and its postmaster killed with SIGKILL at
     once; killing only the postmaster makes Patroni restart it in place), and Patroni promotes
     the synchronous standby on its own once the leader key expires;
  3. rejoin: the lost node's Patroni starts again and brings it back as a replica of the new
     leader (pg_rewind: wal_log_hints is on).
Counted from the endpoint's side only, per subscription: every inserted event id received,
duplicates bounded, no webhook-id naming two different requests, every request sent by a
process of the node that was the leader (looked up from the request's TCP connection), the
leaders' requests never interleaved, no worker on a standby, and delivery resuming within a few
seconds of each promotion. Prints, per phase: inserted / received / lost / duplicates / seconds
until delivery resumed.

Patroni and etcd come from Debian (`patroni`, `etcd-server`; .ci/setup installs them). The
PostgreSQL binaries are conftest's PGBIN, as for every other test.
"""

import ctypes
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import psycopg
import pytest

from conftest import (PGBIN, TMPDIR, Cluster, Ledger, Producer, check_nothing_lost, free_port,
                      report, setup_unleash, wait_until)
from sink import Reply
from test_delivery import create
from test_faults import wait_all_received

ETCD = "/usr/bin/etcd"
PATRONI = "/usr/bin/patroni"
PATRONICTL = "/usr/bin/patronictl"
# A healthy replica's state in `patronictl list` (3.0.2 says running, later versions streaming)
REPLICA_OK = ("running", "streaming")
# The worker's process in pg_stat_activity (its bgw_type)
WORKER_TYPE = "unleash_webhook"
# Requests in flight at most (unleash_webhook.max_concurrency, default): what a change of leader
# may send twice is these, plus as many finished whose result the old leader had not recorded.
MAX_IN_FLIGHT = 64
# A promoted leader must be delivering again within this many seconds.
RESUME_WITHIN = 5.0


def die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, however it dies, so that
    no Patroni or etcd outlives a killed pytest (postmasters do, as for every test: tests/run.sh
    stops them). Runs after the switch to the postgres user, which would clear it."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def clean_env(**extra):
    """The environment for etcd and Patroni: none of the caller's ETCD_* and PATRONI_*
    settings, which they would read as configuration, nor PG* ones, which libpq would apply
    to Patroni's own connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "PATRONI_", "PG"))}
    env.update(extra)
    return env


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# The cluster-wide configuration (bootstrap.dcs, kept in etcd: the same on every node). The
# "Running under Patroni" section of docs/operations.md shows these settings, and test_docs.py
# checks that what it shows is what this test runs.
DCS = {
    # A lost leader's key expires after ttl seconds; Patroni checks every loop_wait seconds
    # (loop_wait + 2 * retry_timeout <= ttl).
    "ttl": 10, "loop_wait": 1, "retry_timeout": 3,
    # A commit returns once a standby has it; failover only to that standby.
    "synchronous_mode": True,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            # pg_rewind needs hint-bit changes in the WAL (or data checksums)
            "wal_log_hints": "on",
            "shared_preload_libraries": "unleash_webhook",
            "unleash_webhook.database_name": "unleash",
            # the sink is on loopback, which is refused by default
            "unleash_webhook.destination_allowlist": "127.0.0.1, localhost",
            "max_connections": 50,
        },
    },
}


class Etcd:
    """One etcd member on 127.0.0.1 only (client and peer ports), with the v2 API Patroni 3.0
    speaks."""

    def __init__(self, root):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{free_port()}"
        self.log = root / "etcd.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", "uw", "--data-dir", root / "etcd",
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"uw={peer}", "--initial-cluster-state", "new",
                 "--enable-v2=true"],
                stdout=log, stderr=subprocess.STDOUT, env=clean_env(),
                preexec_fn=die_with_parent)
        if not wait_until(self.healthy, timeout=30, every=0.1):
            self.stop()
            raise RuntimeError("etcd did not start:\n" + self.log.read_text()[-3000:])

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except OSError:
            return False

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class PatroniNode(Cluster):
    """A PostgreSQL node managed by its own Patroni process, running as postgres.

    A Cluster for the test's own connections (connect, psql_file, log: unix socket in its
    directory, trust), but Patroni starts, stops, promotes and demotes its postmaster."""

    def __init__(self, root, name, etcd, scope, password):
        self.name = name
        self.pgbin = PGBIN
        self.dir = root / name
        self.dir.mkdir()
        pg = pwd.getpwnam("postgres")
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self.data = self.dir / "data"
        self.logfile = self.dir / "postgresql.log"
        self.patroni_log = self.dir / "patroni.log"
        self.port = free_port()
        api = f"127.0.0.1:{free_port()}"
        self.proc = None
        config = {
            "scope": scope,
            "name": name,
            "restapi": {"listen": api, "connect_address": api},
            "etcd": {"host": f"127.0.0.1:{etcd.port}"},
            "bootstrap": {
                # The cluster-wide configuration, kept in etcd: the same on every node.
                "dcs": DCS,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth-local": "trust"},
                           {"auth-host": "scram-sha-256"}],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.port}",
                "connect_address": f"127.0.0.1:{self.port}",
                "data_dir": str(self.data),
                "bin_dir": str(PGBIN),
                "pgpass": str(self.dir / "pgpass"),
                "use_unix_socket": True,
                "authentication": {
                    "superuser": {"username": "postgres", "password": password},
                    "replication": {"username": "replicator", "password": password},
                },
                # Replication and pg_rewind connect over TCP, with a password: other users of
                # this machine can reach 127.0.0.1 too. The test itself uses the socket.
                "pg_hba": ["local all all trust",
                           "host all all 127.0.0.1/32 scram-sha-256",
                           "host replication replicator 127.0.0.1/32 scram-sha-256"],
                "parameters": {
                    "unix_socket_directories": str(self.dir),
                    "logging_collector": "on",
                    "log_directory": str(self.dir),
                    "log_filename": "postgresql.log",
                },
            },
        }
        self.config = self.dir / "patroni.yml"
        # JSON is YAML
        self.config.write_text(json.dumps(config, indent=1))
        os.chmod(self.config, 0o600)
        os.chown(self.config, pg.pw_uid, pg.pw_gid)
        self.start()

    def start(self):
        """Starts this node's Patroni (which starts, bootstraps or rejoins PostgreSQL)."""
        assert self.proc is None or self.proc.poll() is not None
        with open(self.patroni_log, "a") as log:
            self.proc = subprocess.Popen(
                [PATRONI, self.config], user="postgres", group="postgres", extra_groups=[],
                cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                env=clean_env(HOME=str(self.dir)), preexec_fn=die_with_parent)

    def postmaster_pid(self):
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def kill9(self):
        """Loses the node: its Patroni and its postmaster, SIGKILL, one right after the other.
        The postmaster's children notice that it is gone and exit on their own."""
        pm = self.postmaster_pid()
        assert pm, f"{self.name} has no postmaster running"
        os.kill(self.proc.pid, signal.SIGKILL)
        os.kill(pm, signal.SIGKILL)
        self.proc.wait()

    def stop(self, mode="immediate"):
        """Stops Patroni first (it would start PostgreSQL again), then PostgreSQL (SIGQUIT: an
        immediate shutdown), then anything else still running in the data directory (a
        postmaster's orphaned children, pg_rewind, pg_basebackup). Nothing of the node runs
        once this returns."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        pm = self.postmaster_pid()
        if pm:
            os.kill(pm, signal.SIGQUIT)
            if not wait_until(lambda: not alive(pm), timeout=30, every=0.1):
                os.kill(pm, signal.SIGKILL)
        if not wait_until(lambda: not self.processes(), timeout=30, every=0.1):
            for pid in self.processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            assert wait_until(lambda: not self.processes(), timeout=10, every=0.1), \
                f"{self.name}: processes left: {self.processes()}"

    def processes(self):
        """Live processes working in this node's data directory (PostgreSQL's all do)."""
        found = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cwd = os.readlink(f"/proc/{d}/cwd")
                except OSError:
                    continue
                if cwd == str(self.data) and alive(int(d)):
                    found.append(int(d))
        return found

    def destroy(self):
        self.stop()

    def role(self):
        """'primary', 'standby', or None when it does not answer."""
        try:
            with self.connect("postgres", connect_timeout=2) as conn:
                standby = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        except psycopg.OperationalError:
            return None
        return "standby" if standby else "primary"

    def logs(self):
        out = []
        for f in (self.patroni_log, self.logfile):
            if f.exists():
                tail = f.read_text(errors="replace")[-2500:]
                out.append(f"--- {self.name} {f.name} (tail)\n{tail}")
        return "\n".join(out)


class PatroniCluster:
    """etcd and three Patroni nodes, bootstrapped until every replica streams and one of them is
    the synchronous standby. connect() reaches the current leader (the Producer's way in)."""

    def __init__(self, size=3):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="uw-pa-", dir=TMPDIR))
        os.chmod(self.root, 0o755)
        self.etcd = Etcd(self.root)
        self.nodes = []
        try:
            password = secrets.token_hex(16)
            scope = f"uw-{self.root.name}"
            # the first bootstraps the cluster; the others then copy it with pg_basebackup
            self.nodes.append(PatroniNode(self.root, "n1", self.etcd, scope, password))
            self.wait(lambda: self.nodes[0].role() == "primary", 90, "n1 to bootstrap")
            for name in ("n2", "n3")[:size - 1]:
                self.nodes.append(PatroniNode(self.root, name, self.etcd, scope, password))
            self.wait(lambda: len(self.streaming(self.nodes[0])) == size - 1, 120,
                      "the replicas to stream")
            self.wait_sync_standby()
        except BaseException:
            self.destroy()
            raise

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def patronictl(self, *args, timeout=120):
        # any node's configuration names the cluster and the etcd, whether that node runs or not
        r = subprocess.run([PATRONICTL, "-c", self.nodes[0].config, *args], capture_output=True,
                           text=True, timeout=timeout, env=clean_env())
        assert r.returncode == 0, f"patronictl {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout

    def members(self):
        """`patronictl list` as a user reads it: [{Member, Role, State, TL, Lag in MB, ...}]."""
        return json.loads(self.patronictl("list", "-f", "json"))

    def leader(self):
        """The node `patronictl list` shows as the leader, once it shows one."""
        def find():
            ms = self.members()
            return next((m["Member"] for m in ms
                         if m["Role"] == "Leader" and m["State"] == "running"), None)
        return self.node(self.wait(find, 60, "a leader"))

    def wait_sync_standby(self, timeout=60):
        """Waits until `patronictl list` shows a synchronous standby of the leader; returns
        it. In synchronous mode Patroni promotes no other node: a leader lost before it has one
        leaves the cluster (rightly) without a leader."""
        def find():
            ms = self.members()
            return next((m["Member"] for m in ms
                         if m["Role"] == "Sync Standby" and m["State"] in REPLICA_OK), None)
        return self.node(self.wait(find, timeout, "a synchronous standby"))

    def streaming(self, leader):
        """Names of the replicas streaming from `leader`, from its pg_stat_replication."""
        try:
            with leader.connect("postgres", connect_timeout=2) as conn:
                return {r[0] for r in conn.execute(
                    "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")}
        except psycopg.OperationalError:
            return set()

    def connect(self, dbname="unleash"):
        """A connection to whichever node is the primary now."""
        for n in self.nodes:
            try:
                conn = n.connect(dbname, connect_timeout=2)
            except psycopg.OperationalError:
                continue
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                return conn
            conn.close()
        raise psycopg.OperationalError("no primary at the moment")

    def wait(self, fn, timeout, what):
        v = wait_until(fn, timeout=timeout, every=0.2)
        if not v:
            raise AssertionError(f"waited {timeout} s for {what}:\n{self.status()}")
        return v

    def status(self):
        try:
            listing = self.patronictl("list", timeout=30)
        except Exception as e:  # noqa: BLE001 - diagnostics only
            listing = f"(patronictl list failed: {e})"
        return listing + "\n" + "\n".join(n.logs() for n in self.nodes)

    def destroy(self):
        for n in self.nodes:
            n.stop()
        self.etcd.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture()
def patroni():
    pc = PatroniCluster()
    try:
        yield pc
    finally:
        pc.destroy()


class Origins:
    """Which node sent each request, looked up while its connection is open (the sink calls
    this before it answers): the sender's TCP port gives the socket's inode
    (/proc/net/tcp), the inode the process holding it, and the process its working directory,
    which for every PostgreSQL process is its data directory. The worker's sender threads are
    threads of the worker process. None when the sender was already gone (killed with its
    node while the request was under way)."""

    def __init__(self, nodes, sink_port):
        self.nodes = {str(n.data): n.name for n in nodes}
        self.sink_port = f"{sink_port:04X}"
        self.postgres_uid = pwd.getpwnam("postgres").pw_uid
        self.by_inode = {}
        self.of = {}  # id(request) -> node name
        self.missed = {}  # id(request) -> when its lookup found no sender
        self.misses = []  # (time, sender's port, what was not found)

    def __call__(self, rec):
        try:
            self.of[id(rec)] = self.lookup(rec.peer[1])
        except Exception as e:  # noqa: BLE001 - counted as a miss, with the reason
            self.misses.append((time.time(), rec.peer[1], repr(e)))
            self.of[id(rec)] = None
        if self.of[id(rec)] is None:
            self.missed[id(rec)] = time.time()

    def lookup(self, port):
        inode = self.inode(f"{port:04X}")
        if inode is None:
            self.misses.append((time.time(), port, "no such connection"))
            return None
        if inode not in self.by_inode:
            owner = self.owner(inode)
            if owner is None:
                self.misses.append((time.time(), port, f"no process holds socket {inode}"))
                return None
            self.by_inode[inode] = owner
        return self.by_inode[inode]

    def inode(self, port):
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                # local 127.0.0.1:port -> remote 127.0.0.1:sink, established (01)
                if (fields[1] == f"0100007F:{port}" and fields[2] == f"0100007F:{self.sink_port}"
                        and fields[3] == "01" and fields[9] != "0"):
                    return fields[9]
        return None

    def owner(self, inode):
        target = f"socket:[{inode}]"
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.stat(f"/proc/{d}").st_uid != self.postgres_uid:
                    continue
                fds = os.listdir(f"/proc/{d}/fd")
            except OSError:  # the process is gone
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{d}/fd/{fd}") != target:
                        continue
                    cwd = os.readlink(f"/proc/{d}/cwd")
                except OSError:  # that file was closed meanwhile (the worker's come and go)
                    continue
                return self.nodes.get(cwd, f"another process ({cwd})")
        return None


class Watch(threading.Thread):
    """Polls every node ten times a second: primary, standby or down, and whether a worker
    process runs there. Keeps each node's roles over time (to tell when a node was promoted)
    and every sighting of a worker on a standby."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        # name -> [[first seen, role, last seen]], one entry per stretch in one role
        self.roles = {n.name: [] for n in nodes}
        self.worker_on_standby = []  # (time, name, pids)
        self.stopping = threading.Event()
        self.start()

    def run(self):
        conns = {}
        while not self.stopping.is_set():
            for n in self.nodes:
                role, workers = None, []
                try:
                    if n.name not in conns:
                        conns[n.name] = n.connect("postgres", connect_timeout=1)
                    standby, workers = conns[n.name].execute(
                        "SELECT pg_is_in_recovery(), coalesce(array_agg(pid) "
                        f"FILTER (WHERE backend_type = '{WORKER_TYPE}'), '{{}}') "
                        "FROM pg_stat_activity").fetchone()
                    role = "standby" if standby else "primary"
                except psycopg.Error:
                    conns.pop(n.name, None)
                now = time.time()
                stretches = self.roles[n.name]
                if stretches and stretches[-1][1] == role:
                    stretches[-1][2] = now
                else:
                    stretches.append([now, role, now])
                if role == "standby" and workers:
                    self.worker_on_standby.append((now, n.name, workers))
            self.stopping.wait(0.1)
        for c in conns.values():
            c.close()

    def promoted(self, name, after):
        """When `name` became the primary after time `after`, or None: the last time it was
        seen otherwise before it was seen as the primary. Its promotion came later (by up to a
        polling round), so delays measured from here are upper bounds."""
        stretches = self.roles[name]
        for i, (first, role, _) in enumerate(stretches):
            if i and first >= after and role == "primary":
                return max(stretches[i - 1][2], after)
        return None

    def stop(self):
        self.stopping.set()
        self.join(10)


def test_switchover_failover_rejoin_under_patroni(patroni, sink):
    pc = patroni
    paths = ["/ha-a", "/ha-b"]
    first = pc.leader()
    setup_unleash(first)
    with first.connect() as conn:
        for p in paths:
            create(conn, "ha" + p[3:], sink.url(p), ["t-ha"])
    # Each reply takes 20 ms, as a real endpoint's does: the worker always has requests in
    # flight, and a change of leader catches some of them.
    for p in paths:
        sink.script(p, Reply(200, delay=0.02))
    origins = Origins(pc.nodes, sink.port)
    tripwire = []  # a function called with each request once its sender is known
    def on_receive(rec):
        origins(rec)
        for trip in tripwire:
            trip(rec)
    sink.on_receive = on_receive
    watch = Watch(pc.nodes)

    def requests():
        """Every request of this test so far, in the order the endpoint received them."""
        return sorted((r for p in paths for r in sink.on(p)), key=lambda r: r.at)

    def from_node(name, after=0.0):
        return [r for r in requests() if r.at >= after and origins.of.get(id(r)) == name]

    def wait_delivering(node, n=300, after=0.0):
        """Waits until `node` has sent `n` requests since `after`: it delivers, steadily."""
        pc.wait(lambda: len(from_node(node.name, after)) >= n, 120,
                f"{n} requests from {node.name}")

    # Unleash's writes: small transactions, one after the other, synchronous_commit on
    producer = Producer(pc, "t-ha", 10**9, batch=10, pause=0.05)
    # (name, leader before, leader after, when the change began, index into inserted, a function
    # giving the phase's own figures for its report)
    phases = []
    try:
        wait_delivering(first)

        # 1. switchover to the synchronous standby (in synchronous mode the only candidate)
        target = pc.wait_sync_standby()
        began, mark = time.time(), len(producer.inserted)
        pc.patronictl("switchover", "--leader", first.name, "--candidate", target.name, "--force")
        phases.append(("switchover", first, target, began, mark, lambda: ""))
        pc.wait(lambda: watch.promoted(target.name, began), 60, f"{target.name} promoted")
        wait_delivering(target, after=began)
        # the old leader follows the new one, as a replica
        pc.wait(lambda: first.name in pc.streaming(target), 120, f"{first.name} to stream")

        # 2. the leader node is lost, right after its worker has sent a request (from the
        # endpoint's handler, before it answers): Patroni fails over by itself, to its
        # synchronous standby
        successor = pc.wait_sync_standby()
        fired, killed = threading.Lock(), []

        def kill_mid_send(rec):
            if origins.of.get(id(rec)) == target.name and fired.acquire(blocking=False):
                unanswered = [r for r in requests()
                              if r.answered == 0 and origins.of.get(id(r)) == target.name]
                at, mark = time.time(), len(producer.inserted)
                target.kill9()
                killed.append((at, mark, len(unanswered)))
        tripwire.append(kill_mid_send)
        pc.wait(lambda: killed, 60, f"a request from {target.name}")
        tripwire.clear()
        began, mark, in_flight = killed[0]

        def orphans():
            # The postmaster's children outlive it until they notice; the worker's last
            # requests can arrive after its process is gone (and cannot be looked up then).
            late = [r for r in requests() if r.at >= began
                    and origins.of.get(id(r)) in (target.name, None)]
            return (f"requests unanswered at the kill {in_flight}, "
                    + (f"{len(late)} more from the lost node after it, the last "
                       f"{late[-1].at - began:.2f} s after; " if late else
                       "none from the lost node after it; "))
        phases.append(("failover", target, successor, began, mark, orphans))
        pc.wait(lambda: watch.promoted(successor.name, began), 90, f"{successor.name} promoted")
        wait_delivering(successor, after=began)

        # 3. the lost node comes back: Patroni rewinds it and it follows the new leader
        lost = target
        began, mark = time.time(), len(producer.inserted)
        log_from = lost.patroni_log.stat().st_size
        lost.start()

        def rewound():
            log = lost.patroni_log.read_text(errors="replace")[log_from:]
            return ("pg_rewind ran (exit code 0); " if "pg_rewind exit code=0" in log else
                    "pg_rewind failed; " if "pg_rewind exit code" in log else
                    "no pg_rewind needed; ")
        phases.append(("rejoin", successor, successor, began, mark, rewound))
        pc.wait(lambda: lost.name in pc.streaming(successor), 120, f"{lost.name} to rejoin")
        rejoined = time.time()
        wait_delivering(successor, after=rejoined)
        with lost.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

        inserted = producer.stop()
        # the final truth: the events table on the leader holds exactly what the producer
        # was acknowledged (synchronous replication: no acknowledged commit was lost)
        with successor.connect() as conn:
            table = {r[0] for r in conn.execute("SELECT id FROM events WHERE type = 't-ha'")}
        assert table == set(inserted), (len(table), len(inserted))
        assert wait_all_received(sink, paths, inserted), "not everything arrived"
    except BaseException:
        producer.stopping = True
        print(pc.status())
        raise
    finally:
        sink.on_receive = None
        watch.stop()
    ended = time.time()

    # ---- counted from the endpoint's side, per phase: an event counts with the phase in which
    # it was inserted (those of the stream's first seconds with the switchover), a duplicate (a
    # webhook-id received before) with the phase in which it was received
    ledger = Ledger(sink, paths)
    all_requests = requests()
    starts = [ph[3] for ph in phases[1:]]
    duplicates, seen = [0] * len(phases), set()
    for r in all_requests:
        if r.header("webhook-id") in seen:
            duplicates[sum(1 for t in starts if r.at >= t)] += 1
        seen.add(r.header("webhook-id"))
    failures = []
    for i, (name, before, after, began, mark, note) in enumerate(phases):
        last = i + 1 == len(phases)
        events = set(inserted[0 if i == 0 else mark:len(inserted) if last else phases[i + 1][4]])
        until = ended if last else phases[i + 1][3]
        received = sum(len(events & ledger.events(p)) for p in paths)
        # from the last request before the change: a pause that began with it counts
        window = [r for r in all_requests if r.at < began][-1:] + \
            [r for r in all_requests if began <= r.at < until]
        longest = max((b.at - a.at for a, b in zip(window, window[1:])), default=0.0)
        if before is after:
            resumed = f"the leader stayed {after.name}; longest pause in delivery {longest:.2f} s"
            if longest > RESUME_WITHIN:
                failures.append(f"{name}: delivery paused {longest:.2f} s")
        else:
            promoted = watch.promoted(after.name, began)
            delay = from_node(after.name, began)[0].at - promoted
            resumed = (f"{before.name} -> {after.name} promoted {promoted - began:.2f} s after "
                       f"the {name} began, delivering {delay:.2f} s after that (longest pause "
                       f"{longest:.2f} s)")
            if delay > RESUME_WITHIN:
                failures.append(f"{name}: {after.name} delivered {delay:.2f} s after promotion")
        report(f"patroni {name}: inserted {len(events)} events x {len(paths)} subscriptions, "
               f"received {received}, lost {len(events) * len(paths) - received}, duplicates "
               f"{duplicates[i]}; {note()}{resumed}")
        if duplicates[i] > 2 * MAX_IN_FLIGHT:
            failures.append(f"{name}: {duplicates[i]} duplicates")

    # ---- one worker at a time, on the leader only: the senders, in the order the endpoint
    # received their requests, are the leaders in the order they led, each once
    sent_by = [origins.of.get(id(r)) for r in all_requests]
    known = [s for s in sent_by if s is not None]
    runs = [s for i, s in enumerate(known) if i == 0 or s != known[i - 1]]
    leaders = [phases[0][1].name] + [ph[2].name for ph in phases[:2]]
    gone = len(sent_by) - len(known)
    misses = sorted({why.split(" socket")[0] for _, _, why in origins.misses})
    report(f"patroni senders: {len(sent_by)} requests sent by {' then '.join(runs)} ({gone} "
           f"whose sender was gone when looked up: {', '.join(misses) or '-'}); the leaders were "
           f"{' then '.join(leaders)}; "
           f"a worker seen on a standby {len(watch.worker_on_standby)} times")
    if runs != leaders:
        failures.append(f"requests came from {runs}, the leaders were {leaders}")
    # only a lost node's last requests may find their sender gone: looked up after the kill,
    # and received before its successor's first request
    lost_at, successor_first = phases[1][3], from_node(phases[1][2].name, phases[1][3])[0].at
    odd = [(r.at, origins.missed.get(id(r))) for s, r in zip(sent_by, all_requests)
           if s is None
           and not (origins.missed.get(id(r), 0) >= lost_at and r.at < successor_first)]
    if odd:
        failures.append(f"senders gone at other times than the loss of the leader at {lost_at} "
                        f"(until {successor_first}): (received, looked up) {odd[:5]}")
    if gone > MAX_IN_FLIGHT:
        failures.append(f"{gone} requests whose sender was gone: {origins.misses[:10]}, "
                        f"phases began at {[ph[3] for ph in phases]}")
    if watch.worker_on_standby:
        failures.append(f"a worker ran on a standby: {watch.worker_on_standby[:5]}")
    # every inserted event received at every subscription, no webhook-id naming two requests
    check_nothing_lost(sink, inserted, paths, "patroni, all phases")
    assert failures == [], failures
