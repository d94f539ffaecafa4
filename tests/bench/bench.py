"""Benchmark: commit-to-receipt latency and sustained deliveries per second.

Real stack: the installed extension (build it with --release) in a real cluster with the
library preloaded, Unleash's events table, and a fast Rust HTTP/1.1 keep-alive endpoint
(tests/bench/sink) on 127.0.0.1. Run it through tests/bench/run.sh.

Latency: single-event INSERTs at a steady rate, each its own transaction; the time from the
client's COMMIT returning to the endpoint reading the POST (same machine, same clock).
Throughput: events inserted as fast as one client can (multi-row INSERTs of 200, like
Unleash's batches), deliveries per second from the first COMMIT to the last receipt.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from conftest import UNLEASH_FIXTURES, make_unleash_cluster  # noqa: E402


class Targets:
    """The figures the benchmark must reach (issue #17's table), each checked where it is
    measured; main() exits non-zero when one is missed, unless --no-targets."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.missed = []

    def check(self, what, value, target, ok):
        if not self.enabled:
            return
        print(f"  target {what}: {value} (target {target}) {'ok' if ok else 'MISSED'}")
        if not ok:
            self.missed.append(f"{what}: {value}, target {target}")

    def at_most(self, what, value, limit, fmt="{:.2f}"):
        self.check(what, fmt.format(value), f"<= {fmt.format(limit)}", value <= limit)

    def at_least(self, what, value, limit, fmt="{:.2f}"):
        self.check(what, fmt.format(value), f">= {fmt.format(limit)}", value >= limit)


# WAL per delivery before issue #17's work, to which its target (a third) refers, for 1 and 10
# subscriptions: (all WAL, the extension's share), printed by this benchmark's throughput runs
# with 0.2.0 installed (commit 1fa3902: `cargo pgrx install --release` from a checkout of it,
# then `python tests/bench/bench.py --no-targets --sink ...` from this one), 2026-12-07, on the
# 2-core development machine. WAL bytes do not depend on the machine's speed.
WAL_PER_DELIVERY_BEFORE = {1: (2_728, 1_732), 10: (2_077, 1_977)}
BEFORE_HOW = "0.2.0, measured 2026-12-07 by this benchmark"


def cpu_seconds(pid):
    """utime + stime of a process, all its threads, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wal_lsn(conn):
    return conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


class BenchSink:
    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}") as r:
            return r.read().decode()

    def count(self):
        return int(self.get("/count"))

    def dump(self):
        out = {}
        for line in self.get("/dump").splitlines():
            i, t = line.split()
            out.setdefault(int(i), int(t) / 1e9)
        return out

    def close(self):
        self.proc.kill()


def wait_count(sink, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sink.count() >= n:
            return True
        time.sleep(0.01)
    return False


def paced_inserts(conn, sql, rate, committed, more):
    """Runs `sql` (an INSERT ... RETURNING id) `rate` times a second while more() says so, each
    its own transaction; records each event id's commit time in `committed`."""
    next_at = time.time()
    while more():
        now = time.time()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += 1.0 / rate
        (eid,) = conn.execute(sql).fetchone()
        committed[eid] = time.time()


def counted(n):
    left = [n]

    def more():
        left[0] -= 1
        return left[0] >= 0
    return more


def latency(conn, sink, n, rate):
    sink.get("/reset")
    committed = {}
    paced_inserts(conn, "INSERT INTO events (type, created_by, project, environment, "
                  "feature_name) VALUES ('feature-created', 'bench', 'default', 'production', "
                  "'f') RETURNING id", rate, committed, counted(n))
    wait_count(sink, n, 30)
    got = sink.dump()
    lat = [(got[i] - t) * 1000 for i, t in committed.items() if i in got]
    return lat, n - len(lat)


def insert_rows(batch):
    return ",".join(["('feature-created', 'bench', 'default', 'production', 'f', "
                     "'{\"name\": \"f\", \"enabled\": true}')"] * batch)


def insert_events(conn, table, n, batch):
    rows = insert_rows(batch)
    for _ in range(n // batch):
        conn.execute(f"INSERT INTO {table} (type, created_by, project, environment, "
                     f"feature_name, data) VALUES {rows}")


def prepare_plain(cluster, dbname="unleash"):
    """plain.events: Unleash's events table (with Unleash's own trigger) without ours."""
    cluster.psql_file_sql("DROP SCHEMA IF EXISTS plain CASCADE; CREATE SCHEMA plain; "
                          "SET search_path = plain; "
                          + (UNLEASH_FIXTURES / "events-table.sql").read_text(), dbname)


def throughput(conn, sink, n, subs, batch=200):
    """n events in INSERTs of `batch` rows, delivered to `subs` subscriptions: deliveries per
    second from the first INSERT to the last receipt, and the worker's CPU time (all threads)
    and the WAL written, per delivery, from the first INSERT to the last result recorded.
    Then the same INSERTs into plain.events (no extension): the WAL that Unleash's own table
    writes for them, so that the extension's share is what remains."""
    sink.get("/reset")
    wait_settled(conn, 60)
    pid = conn.execute("SELECT unleash_webhook.worker_pid()").fetchone()[0]
    cpu0, wal0 = cpu_seconds(pid), wal_lsn(conn)
    start = time.time()
    insert_events(conn, "events", n, batch)
    inserted = time.time()
    ok = wait_count(sink, n * subs, 300)
    got = sink.dump()
    end = max(got.values()) if got else time.time()
    total = sink.count()
    wait_settled(conn, 60)
    cpu, wal = cpu_seconds(pid) - cpu0, wal_lsn(conn) - wal0
    plain0 = wal_lsn(conn)
    insert_events(conn, "plain.events", n, batch)
    plain = wal_lsn(conn) - plain0
    return {"total": total, "secs": end - start, "insert_secs": inserted - start, "ok": ok,
            "cpu_us": cpu / max(total, 1) * 1e6, "wal_bytes": wal / max(total, 1),
            "wal_ours": (wal - plain) / max(total, 1), "wal_plain_event": plain / n}


def storage(conn):
    """Bytes on disk per delivery kept in the log (its row, its attempts, their indexes), after
    a VACUUM, over everything the log holds now."""
    conn.execute("VACUUM unleash_webhook._deliveries, unleash_webhook._attempts")
    n, size = conn.execute(
        "SELECT (SELECT count(*) FROM unleash_webhook._deliveries), "
        "pg_total_relation_size('unleash_webhook._deliveries') + "
        "pg_total_relation_size('unleash_webhook._attempts')").fetchone()
    body = conn.execute("SELECT avg(octet_length(request_body)) "
                        "FROM unleash_webhook._deliveries").fetchone()[0] or 0
    print(f"storage   {n:,} deliveries kept: {size / max(n, 1):,.0f} bytes per delivery on disk "
          f"(tables and indexes), of which the stored body is {body:.0f} bytes")


def print_throughput(what, r):
    print(f"throughput {what}: {r['total']} deliveries in {r['secs']:.2f} s = "
          f"{r['total'] / r['secs']:,.0f}/s (inserting took {r['insert_secs']:.2f} s); worker CPU "
          f"{r['cpu_us']:.0f} us and WAL {r['wal_bytes']:,.0f} bytes per delivery, of which the "
          f"extension's {r['wal_ours']:,.0f} (the same INSERTs without it: "
          f"{r['wal_plain_event']:,.0f} bytes per event){'' if r['ok'] else '  INCOMPLETE'}")


def isolation(conn, sink, n, rate):
    """One subscription's endpoint hangs until the timeout; five healthy ones: their latency."""
    conn.execute("SELECT unleash_webhook.create_subscription('iso-hang', %s, ARRAY['iso'])",
                 (f"http://127.0.0.1:{sink.port}/hang",))
    for i in range(5):
        conn.execute("SELECT unleash_webhook.create_subscription(%s, %s, ARRAY['iso'])",
                     (f"iso-{i}", f"http://127.0.0.1:{sink.port}/iso{i}"))
    sink.get("/reset")
    committed = {}
    paced_inserts(conn, "INSERT INTO events (type, created_by) VALUES ('iso', 'bench') "
                  "RETURNING id", rate, committed, counted(n))
    wait_count(sink, n * 5, 30)
    lines = sink.get("/dump").splitlines()
    lat = []
    for line in lines:
        i, t = line.split()
        if int(i) in committed:
            lat.append((int(t) / 1e9 - committed[int(i)]) * 1000)
    for name in ["iso-hang"] + [f"iso-{i}" for i in range(5)]:
        conn.execute("SELECT unleash_webhook.drop_subscription(%s)", (name,))
    return lat


# Unleash's INSERTs in the capture benchmarks: pgbench with this many connections (issue #17).
CAPTURE_CLIENTS = 2


def capture(cluster, dbname, seconds, clients, rows_per_statement, table):
    """INSERT rows per second into `table` with pgbench (C, so the client costs little):
    `clients` connections, each INSERT statement `rows_per_statement` rows, as Unleash writes."""
    values = ",".join(["('feature-created', 'bench', 'default', 'production', 'f', "
                       "'{\"name\": \"f\"}')"] * rows_per_statement)
    script = cluster.dir / f"capture-{rows_per_statement}.sql"
    script.write_text(f"INSERT INTO {table} (type, created_by, project, environment, "
                      f"feature_name, data) VALUES {values};\n")
    os.chmod(script, 0o644)
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--", cluster.pgbin / "pgbench", "-n", "-h", cluster.dir,
         "-p", str(cluster.port), "-c", str(clients), "-j", "2", "-T", str(seconds),
         "-f", script, dbname], check=True, capture_output=True, text=True).stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    return tps * rows_per_statement


def prepare_capture_db(cluster, sink_port):
    """A second database shaped like Unleash's, with the extension and 10 subscriptions, that the
    worker does not serve (it serves unleash_webhook.database_name only): INSERTs there pay for
    the capture trigger and nothing else, since no worker takes what it queues."""
    with cluster.connect("postgres") as c:
        c.execute("CREATE DATABASE capture")
    cluster.psql_file(UNLEASH_FIXTURES / "events-table.sql", "capture")
    with cluster.connect("capture") as c:
        c.execute("CREATE EXTENSION unleash_webhook")
        for i in range(1, 11):
            c.execute("SELECT unleash_webhook.create_subscription(%s, %s, "
                      "ARRAY['feature-created'])",
                      (f"bench-{i}", f"http://127.0.0.1:{sink_port}/hook{i}"))


def capture_ratio(cluster, conn, dbname, rows, rounds, seconds):
    """Median INSERT rate into events (our trigger, 10 subscriptions) over the median rate into
    a copy of it without the trigger, in `dbname`, measured alternately so that drift hits both."""
    # both tables start empty (nothing is pending: the worker has delivered what it had)
    wait_settled(conn, 600)
    prepare_plain(cluster, dbname)
    ours, plain = [], []

    def run(table):
        # each run starts from an empty table (its indexes grow as it runs) and right after a
        # checkpoint: one landing inside a run (full-page writes after it) would otherwise tilt
        # the comparison by 10%
        cluster.psql_file_sql(f"TRUNCATE {table}; CHECKPOINT", dbname)
        return capture(cluster, dbname, seconds, CAPTURE_CLIENTS, rows, table)

    for _ in range(rounds):
        plain.append(run("plain.events"))
        ours.append(run("public.events"))
        # let the worker deliver what it has before the next round
        wait_settled(conn, 600)
    return statistics.median(ours), statistics.median(plain)


def capture_benchmarks(cluster, conn, sink, targets, which="both"):
    """Unleash's INSERT rate with the extension against the same table without it: first what
    the trigger costs (a database the worker does not serve), then the same while the worker
    delivers all it queues (10 subscriptions in Unleash's database)."""
    add_subscriptions(conn, sink, 10)
    prepare_capture_db(cluster, sink.port)
    # (while delivering, single-row only: 10 s of 10-row INSERTs to 10 subscriptions
    # is 3 minutes of delivering per round)
    for dbname, what, rounds, sizes, target in (
            ("capture", "capture only", 5, (1, 10), 0.90),
            ("unleash", "worker delivering", 3, (1,), 0.85)):
        if which != "both" and (which == "trigger") != (dbname == "capture"):
            continue
        for rows in sizes:
            ours, plain = capture_ratio(cluster, conn, dbname, rows, rounds, 10)
            print_capture(ours, plain, rows, what)
            targets.at_least(f"INSERT rate with / without the extension, {rows}-row "
                             f"INSERTs, {what}", ours / plain, target)


def print_capture(ours, plain, rows, what):
    print(f"capture   {CAPTURE_CLIENTS} clients, {rows:>2}-row INSERTs, 10 subscriptions, {what}: "
          f"{ours:,.0f} rows/s with the trigger, {plain:,.0f} without: ratio {ours / plain:.2f}")


def dump_all(sink):
    """Every POST the sink has: (event id, receipt time in s)."""
    out = []
    for line in sink.get("/dump").splitlines():
        i, t = line.split()
        out.append((int(i), int(t) / 1e9))
    return out


def bulk(cluster, conn, sink, n, steady_rate=100):
    """One INSERT statement of n events for one subscription (an import or a bulk archive),
    while 3 other subscriptions receive single events at steady_rate/s from another client:
    how soon after its COMMIT the first bulk delivery arrives, the others' latency meanwhile,
    and the rate at which the bulk is delivered."""
    subs = [("bulk", "bulk-import")] + [(f"steady-{i}", "steady") for i in range(3)]
    for name, kind in subs:
        conn.execute("SELECT unleash_webhook.create_subscription(%s, %s, ARRAY[%s])",
                     (name, f"http://127.0.0.1:{sink.port}/{name}", kind))
    wait_settled(conn, 60)
    sink.get("/reset")
    steady_conn = cluster.connect()
    committed, stop = {}, []

    thread = threading.Thread(target=paced_inserts, args=(
        steady_conn, "INSERT INTO events (type, created_by) VALUES ('steady', 'bench') "
        "RETURNING id", steady_rate, committed, lambda: not stop))
    thread.start()
    try:
        time.sleep(0.5)  # steady traffic before the bulk, as in a live Unleash
        bulk_start = time.time()
        with conn.transaction():
            first = conn.execute(
                "INSERT INTO events (type, created_by, project, feature_name, data) "
                "SELECT 'bulk-import', 'bench', 'default', 'f' || g, "
                "json_build_object('name', 'f' || g) FROM generate_series(1, %s) g "
                "RETURNING id", (n,)).fetchall()
        commit = time.time()
        bulk_ids = {r[0] for r in first}
        ok = wait_until_count(sink, lambda got: sum(1 for i, _ in got if i in bulk_ids) >= n, 300)
        time.sleep(0.5)  # steady traffic after the bulk too
    finally:
        stop.append(True)
        thread.join()
        steady_conn.close()
    wait_count(sink, n + 3 * len(committed), 30)
    got = dump_all(sink)
    bulk_times = sorted(t for i, t in got if i in bulk_ids)
    during = [(t - committed[i]) * 1000 for i, t in got
              if i in committed and bulk_start <= committed[i] <= bulk_times[-1]]
    for name, _ in subs:
        conn.execute("SELECT unleash_webhook.drop_subscription(%s)", (name,))
    return {"ok": ok and len(bulk_times) == n, "first_ms": (bulk_times[0] - commit) * 1000,
            "rate": n / (bulk_times[-1] - commit), "steady": during,
            "steady_missing": 3 * len(committed) - sum(1 for i, _ in got if i in committed)}


def wait_until_count(sink, pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred(dump_all(sink)):
            return True
        time.sleep(0.2)
    return False


def first_event(cluster, conn, sink):
    """Commit to receipt of the first event after CREATE EXTENSION, and after a restart of the
    server (ms)."""
    sink.get("/reset")
    url = f"http://127.0.0.1:{sink.port}/first"
    conn.execute("DROP EXTENSION unleash_webhook CASCADE")
    conn.execute("CREATE EXTENSION unleash_webhook")
    conn.execute("SELECT unleash_webhook.create_subscription('first', %s, ARRAY['first'])", (url,))

    def one(conn):
        (eid,) = conn.execute("INSERT INTO events (type, created_by) VALUES ('first', 'bench') "
                              "RETURNING id").fetchone()
        at = time.time()
        if not wait_until_count(sink, lambda got: any(i == eid for i, _ in got), 30):
            return float("inf")
        return (min(t for i, t in dump_all(sink) if i == eid) - at) * 1000

    after_create = one(conn)
    conn.close()
    cluster.stop()
    cluster.start()
    conn = cluster.wait_connect()
    after_restart = one(conn)
    return conn, after_create, after_restart


def wait_settled(conn, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = conn.execute("SELECT (SELECT count(*) FROM unleash_webhook._inbox) + "
                            "(SELECT count(*) FROM unleash_webhook._deliveries "
                            "WHERE status IN ('pending', 'sending'))").fetchone()[0]
        if not left:
            return
        time.sleep(0.1)


def soak(cluster, conn, sink, total, batch=1000):
    """`total` deliveries to one subscription with retention on: throughput per 100k, table
    sizes, and the worker's resident memory, as the queue is drained and purged."""
    cluster.reload(conn, retention="5s")
    sink.get("/reset")
    rows = ",".join(["('feature-created', 'bench', 'default', 'production', 'f', "
                     "'{\"name\": \"f\", \"enabled\": true}')"] * batch)
    pid = conn.execute("SELECT unleash_webhook.worker_pid()").fetchone()[0]
    marks, start, inserted = [], time.time(), 0
    next_mark = 100_000
    while True:
        got = sink.count()
        if inserted < total and inserted - got < 20_000:  # keep a backlog, never a flood
            conn.execute("INSERT INTO events (type, created_by, project, environment, "
                         f"feature_name, data) VALUES {rows}")
            inserted += batch
            continue
        if got >= next_mark:
            sizes = conn.execute(
                "SELECT pg_total_relation_size('unleash_webhook._deliveries'), "
                "pg_total_relation_size('unleash_webhook._attempts')").fetchone()
            # VmRSS counts the shared buffers the worker touched; RssAnon is its own memory
            with open(f"/proc/{pid}/status") as f:
                status = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith("Rss")}
            marks.append((got, time.time(), sizes, status.get("RssAnon", 0)))
            # the next whole 100k after what arrived (inserting may have passed several marks)
            next_mark = (got // 100_000 + 1) * 100_000
        if got >= total:
            break
        time.sleep(0.05)
    prev_n, prev_t = 0, start
    rates = []
    for n, t, (dsize, asize), rss in marks:
        rate = (n - prev_n) / (t - prev_t)
        rates.append(rate)
        print(f"soak {n:>9,} delivered: {rate:,.0f}/s over the last 100k, _deliveries "
              f"{dsize / 2**20:.0f} MiB, _attempts {asize / 2**20:.0f} MiB, worker private RSS "
              f"{rss / 1024:.0f} MiB")
        prev_n, prev_t = n, t
    print(f"soak last 100k vs first 100k: {rates[-1] / rates[0]:.2f}")
    return rates[-1] / rates[0]


def report_targets(targets):
    if targets.missed:
        print("targets missed:\n  " + "\n  ".join(targets.missed))
        sys.exit(2)


def add_subscriptions(conn, sink, upto):
    """bench-2 to bench-`upto` beside bench-1 (main() creates it), each to its own path; those
    that exist already are kept."""
    for i in range(2, upto + 1):
        conn.execute("SELECT unleash_webhook.create_subscription(%s, %s, "
                     "ARRAY['feature-created']) WHERE NOT EXISTS "
                     "(SELECT FROM unleash_webhook.subscriptions WHERE name = %s)",
                     (f"bench-{i}", f"http://127.0.0.1:{sink.port}/hook{i}", f"bench-{i}"))


def reference_loop_ms():
    """A fixed piece of pure CPU work, timed: its CPU time and its wall time (which also counts
    time the hypervisor gave to others). On a shared virtual machine the same work takes longer
    in some minutes than in others, and every CPU figure moves with it: printed beside each
    run so that a reader can tell the code from the moment."""
    cpu, wall = time.process_time(), time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i * i
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def throughput_median(conn, sink, n, subs, times):
    """`times` throughput runs; each printed, and a run made of the median of each figure: on
    a shared machine one run says as much about the moment as about the code. Each run starts
    with the log of the ones before it in place."""
    what = f"{subs} subscription{'s' if subs > 1 else ''}"
    rs = []
    for _ in range(times):
        loop = reference_loop_ms()
        rs.append(throughput(conn, sink, n // subs, subs))
        print_throughput(what, rs[-1])
        print(f"  (a reference loop just before took {loop[0]:.0f} ms of CPU, {loop[1]:.0f} ms "
              f"of wall time: the speed of the moment)")
    med = {k: statistics.median(r[k] for r in rs)
           for k in ("cpu_us", "wal_bytes", "wal_ours", "wal_plain_event")}
    med.update(rate=statistics.median(r["total"] / r["secs"] for r in rs),
               ok=all(r["ok"] for r in rs))
    if times > 1:
        print(f"  median of the {times} runs, {what}: {med['rate']:,.0f}/s, worker CPU "
              f"{med['cpu_us']:.0f} us and WAL {med['wal_bytes']:,.0f} bytes per delivery, of "
              f"which the extension's {med['wal_ours']:,.0f}")
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sink", required=True)
    ap.add_argument("--quick", action="store_true", help="a few seconds: the CI smoke run")
    ap.add_argument("--extra", action="store_true",
                    help="also the isolation, bulk, capture-overhead, first-event and 1M soak "
                         "benchmarks: every figure of the README's table, in one run")
    ap.add_argument("--capture", nargs="?", const="both", choices=("both", "trigger",
                                                                    "delivering"),
                    help="only the capture-overhead benchmarks: the trigger alone, while the "
                         "worker delivers, or both (the default)")
    ap.add_argument("--soak", type=int, default=0, metavar="N",
                    help="only the soak: N deliveries with retention on (e.g. 1000000)")
    ap.add_argument("--throughput", type=int, default=0, metavar="N",
                    help="only the throughput runs (1 and 10 subscriptions), N times each, with "
                         "their medians: comparing builds")
    ap.add_argument("--no-targets", action="store_true",
                    help="print the figures without checking them against the targets "
                         "(exploring; the CI smoke run)")
    ap.add_argument("--pg-conf", action="append", default=[], metavar="LINE",
                    help="a postgresql.conf line for the cluster, e.g. 'autovacuum_naptime = 10s'"
                         " (repeatable)")
    args = ap.parse_args()
    if args.throughput < 0:
        ap.error("--throughput needs a number of runs, at least 1")
    lat_n, rate, thr_n = (100, 100, 2000) if args.quick else (1000, 100, 50000)
    thr_runs = 1 if args.quick else 3

    # the smoke run is too short to say anything about targets
    targets = Targets(not (args.no_targets or args.quick))
    sink = BenchSink(args.sink)
    cluster = make_unleash_cluster(conf="".join(line + "\n" for line in args.pg_conf))
    try:
        conn = cluster.connect()
        conn.execute("SELECT unleash_webhook.create_subscription('bench-1', %s, "
                     "ARRAY['feature-created'])", (f"http://127.0.0.1:{sink.port}/hook",))
        if args.soak:
            soak(cluster, conn, sink, args.soak)
            return
        if args.capture:
            capture_benchmarks(cluster, conn, sink, targets, args.capture)
            report_targets(targets)
            return
        prepare_plain(cluster)
        # warm up: connections, caches
        latency(conn, sink, 20, 200)
        if args.throughput:
            one = throughput_median(conn, sink, thr_n, 1, args.throughput)
            add_subscriptions(conn, sink, 10)
            ten = throughput_median(conn, sink, thr_n, 10, args.throughput)
            if not (one["ok"] and ten["ok"]):
                sys.exit(1)
            return

        lat, lost = latency(conn, sink, lat_n, rate)
        print(f"latency   {lat_n} single-event commits at {rate}/s: "
              f"p50 {statistics.median(lat):.2f} ms  p95 {pct(lat, 95):.2f} ms  "
              f"p99 {pct(lat, 99):.2f} ms  max {max(lat):.2f} ms  (missing: {lost})")
        targets.at_most("latency p50 (ms)", statistics.median(lat), 0.5)
        targets.at_most("latency p99 (ms)", pct(lat, 99), 2.0)

        runs = {1: throughput_median(conn, sink, thr_n, 1, thr_runs)}
        storage(conn)
        add_subscriptions(conn, sink, 10)
        runs[10] = throughput_median(conn, sink, thr_n, 10, thr_runs)
        for subs, r in runs.items():
            targets.at_least(f"deliveries/s, {subs} subscription(s)", r["rate"],
                             15_000, "{:,.0f}")
            targets.at_most(f"worker CPU per delivery (us), {subs} subscription(s)", r["cpu_us"],
                            70, "{:.0f}")
            if WAL_PER_DELIVERY_BEFORE:
                all_before, ours_before = WAL_PER_DELIVERY_BEFORE[subs]
                print(f"  WAL per delivery, {subs} subscription(s): all {r['wal_bytes']:,.0f} "
                      f"bytes (before: {all_before:,}), the extension's {r['wal_ours']:,.0f} "
                      f"(before: {ours_before:,}; {BEFORE_HOW})")
                targets.at_most(f"the extension's WAL per delivery (bytes), {subs} "
                                "subscription(s)", r["wal_ours"], ours_before / 3, "{:,.0f}")
        # the endpoint has every request; the worker records the last results a moment later
        wait_settled(conn, 10)
        failed = conn.execute("SELECT count(*) FROM unleash_webhook.deliveries "
                              "WHERE status <> 'delivered'").fetchone()[0]
        for row in conn.execute("SELECT status, last_status_code, last_error, count(*) "
                                "FROM unleash_webhook.deliveries WHERE status <> 'delivered' "
                                "GROUP BY 1, 2, 3").fetchall():
            print(f"not delivered: {row}")
        if args.extra:
            cluster.reload(conn, timeout="10s")
            lat = isolation(conn, sink, 500, 50)
            print(f"isolation 1 endpoint hanging, 5 healthy, 500 events at 50/s: healthy "
                  f"p50 {statistics.median(lat):.2f} ms  p99 {pct(lat, 99):.2f} ms  "
                  f"max {max(lat):.2f} ms  ({len(lat)} deliveries)")
            b = bulk(cluster, conn, sink, 100_000)
            print(f"bulk      one INSERT of 100,000 events for 1 subscription, 3 others at "
                  f"100 events/s meanwhile: first bulk delivery {b['first_ms']:.1f} ms after "
                  f"COMMIT, all at {b['rate']:,.0f}/s; the others p50 "
                  f"{statistics.median(b['steady']):.2f} ms  p99 {pct(b['steady'], 99):.2f} ms  "
                  f"max {max(b['steady']):.2f} ms ({len(b['steady'])} deliveries, missing: "
                  f"{b['steady_missing']}){'' if b['ok'] else '  INCOMPLETE'}")
            targets.at_most("bulk: first delivery after COMMIT (ms)", b["first_ms"], 100, "{:.1f}")
            targets.at_most("bulk: other subscriptions' p99 (ms)", pct(b["steady"], 99), 10)
            targets.at_least("bulk: deliveries/s", b["rate"], 15_000, "{:,.0f}")
            lost = lost or b["steady_missing"] or not b["ok"]
            capture_benchmarks(cluster, conn, sink, targets)
            conn, after_create, after_restart = first_event(cluster, conn, sink)
            print(f"first     event after CREATE EXTENSION: delivered {after_create:.1f} ms after "
                  f"COMMIT; after a restart of the server: {after_restart:.1f} ms")
            targets.at_most("first event after CREATE EXTENSION (ms)", after_create, 50, "{:.1f}")
            targets.at_most("first event after a restart (ms)", after_restart, 50, "{:.1f}")
            conn.execute("SELECT unleash_webhook.create_subscription('bench-1', %s, "
                         "ARRAY['feature-created'])", (f"http://127.0.0.1:{sink.port}/hook",))
            flat = soak(cluster, conn, sink, 1_000_000)
            targets.at_least("soak: last 100k / first 100k", flat, 0.9)
        print(f"not delivered at the end: {failed}")
        if failed or lost or not all(r["ok"] for r in runs.values()):
            sys.exit(1)
        report_targets(targets)
    finally:
        cluster.destroy()
        sink.close()


if __name__ == "__main__":
    main()
