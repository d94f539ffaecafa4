"""The demo behind tests/demo.sh: one real cluster, one real endpoint, six real events."""

import json
import time

from conftest import UNLEASH_FIXTURES, make_unleash_cluster, wait_until
from sink import Sink


def show(conn, title, sql):
    cur = conn.execute(sql)
    cols = [d.name for d in cur.description]
    rows = cur.fetchall()
    print(f"\n-- {title}\n{sql}")
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) if rows else len(c)
              for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(r, widths)))


def main():
    sink = Sink()
    print("== starting a throwaway cluster (shared_preload_libraries = 'unleash_webhook')")
    cluster = make_unleash_cluster()
    try:
        conn = cluster.connect()
        conn.execute("""SELECT unleash_webhook.create_subscription(
            'demo', %s,
            ARRAY['feature-created','feature-environment-enabled','feature-metadata-updated',
                  'feature-tagged','feature-strategy-update','feature-archived'])""",
                     (sink.url("/webhook"),))
        conn.execute("""SELECT unleash_webhook.create_subscription(
            'demo-production-slack', %s, ARRAY['feature-strategy-update','feature-created'],
            environments => ARRAY['production'],
            body_template => '{"text": "{{event.createdBy}} did {{event.type}} on *{{event.featureName}}* ({{event.environment}})"}')""",
                     (sink.url("/slack"),))
        show(conn, "subscriptions", "SELECT name, url, event_types, environments, enabled "
             "FROM unleash_webhook.subscriptions")
        # Unleash inserts its events inside its own transaction; so do we, and look at the queue
        # before COMMIT (the worker only ever sees committed rows): every event x subscription
        # pair is there already, with its delivery id, as one inbox row for the whole INSERT.
        with conn.transaction():
            conn.execute((UNLEASH_FIXTURES / "sample-events.sql").read_text())
            show(conn, "queued in the event's transaction, before COMMIT",
                 "SELECT id, subscription, event_id, event_type, status "
                 "FROM unleash_webhook.deliveries ORDER BY id")
        sink.wait_for("/webhook", 6, timeout=10)
        sink.wait_for("/slack", 2, timeout=10)
        # the worker records each outcome a moment after the response
        wait_until(lambda: conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'delivered') = 8 "
            "FROM unleash_webhook.deliveries").fetchone()[0], timeout=10)
        show(conn, "delivered", "SELECT id, subscription, event_id, status, attempts, "
             "last_status_code, delivered_at - created_at AS after_queueing "
             "FROM unleash_webhook.deliveries ORDER BY id")
        print("\n-- what the endpoint received")
        for r in sink.received:
            print(f"POST {r.path}  webhook-id: {r.header('webhook-id')}")
            print(f"  {r.body.decode()[:160]}{'...' if len(r.body) > 160 else ''}")
        print("\n-- latency: a fresh event, commit to receipt")
        n0 = len(sink.on("/webhook"))
        t0 = time.time()
        conn.execute("INSERT INTO events (type, created_by, project, feature_name) "
                     "VALUES ('feature-created', 'demo', 'default', 'fresh-flag')")
        t1 = time.time()
        got = sink.wait_for("/webhook", n0 + 1, timeout=5)
        print(f"received {1000 * (got[-1].at - t1):.1f} ms after COMMIT returned "
              f"(INSERT+COMMIT took {1000 * (t1 - t0):.1f} ms)")
        print(json.dumps(json.loads(got[-1].body), indent=2))
    finally:
        cluster.destroy()
        sink.close()


if __name__ == "__main__":
    main()
