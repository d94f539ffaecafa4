"""ALTER EXTENSION ... UPDATE with deliveries pending: the released 0.1.0 (its install script,
frozen in sql/) upgraded in place to the current version, losing nothing."""

import shutil
import subprocess
import time

from conftest import ROOT, SHARED, Cluster, insert_events, wait_until, worker_pid
from sink import Reply
from test_delivery import create, deliveries


def test_update_from_0_1_0_with_pending_deliveries(sink):
    sharedir = subprocess.run(["/usr/lib/postgresql/15/bin/pg_config", "--sharedir"],
                              capture_output=True, text=True, check=True).stdout.strip()
    shutil.copy(ROOT / "sql" / "unleash_webhook--0.1.0.sql", f"{sharedir}/extension/")
    c = Cluster()
    try:
        with c.connect("postgres") as conn:
            conn.execute("CREATE DATABASE unleash")
        c.psql_file(SHARED / "unleash" / "events-table.sql")
        conn = c.connect()
        conn.execute("CREATE EXTENSION unleash_webhook VERSION '0.1.0'")
        assert wait_until(lambda: worker_pid(conn), timeout=30)
        # slow endpoint, one request at a time: most deliveries are still pending at UPDATE
        conn.execute("ALTER SYSTEM SET unleash_webhook.max_concurrency_per_subscription = 1")
        conn.execute("SELECT pg_reload_conf()")
        sink.script("/upgrade", Reply(200, delay=0.2))
        create(conn, "upgrade", sink.url("/upgrade"), ["t-upgrade"])
        insert_events(conn, [("t-upgrade", None, None, None)] * 20)
        time.sleep(0.5)
        pending = sum(1 for d in deliveries(conn, "upgrade") if d[2] in ("pending", "sending"))
        assert pending > 10
        log_before = len(c.log())
        conn.execute("ALTER EXTENSION unleash_webhook UPDATE")
        version = conn.execute("SELECT extversion FROM pg_extension "
                               "WHERE extname = 'unleash_webhook'").fetchone()[0]
        assert version != "0.1.0"
        insert_events(conn, [("t-upgrade", None, None, None)] * 5)
        assert wait_until(lambda: [d[2] for d in deliveries(conn, "upgrade")] == ["delivered"] * 25,
                          timeout=60)
        got = sink.on("/upgrade")
        assert len({r.header("webhook-id") for r in got}) == 25
        log = c.log()[log_before:]
        # the worker went on through the update: no exit, no restart
        assert "exited with exit code" not in log, log
        print(f"\nupgrade 0.1.0 -> {version} with {pending} deliveries pending: 25 delivered, "
              f"{len(got) - 25} duplicates, 0 lost")
    finally:
        c.destroy()
