"""Beyond Unleash, end to end: signing (verified by the standardwebhooks package), preview,
replay, eventMarkdown, the destination policy at send time, a proxy, stats and retention."""

import json
import select
import socket

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import insert_events, report, wait_until
from tcpserver import TcpServer
from sink import Reply
from test_delivery import attempts, create, deliveries, settled


def headers_of(r):
    return {k.lower(): v for k, v in r.headers}


def test_signatures_verify_with_standardwebhooks_through_a_rotation(db, sink):
    old = db.execute("SELECT unleash_webhook.generate_signing_secret()").fetchone()[0]
    create(db, "signed", sink.url("/signed"), ["t-sign"], signing_secret=old)
    insert_events(db, [("t-sign", None, None, None)])
    (r1,) = sink.wait_for("/signed", 1)
    h = headers_of(r1)
    assert h["webhook-signature"].startswith("v1,")
    payload = Webhook(old).verify(r1.body, h)
    assert payload["type"] == "t-sign"
    # rotation: both secrets sign; a receiver with either one verifies
    new = db.execute("SELECT unleash_webhook.generate_signing_secret()").fetchone()[0]
    db.execute("SELECT unleash_webhook.alter_subscription('signed', signing_secret => %s)", (new,))
    insert_events(db, [("t-sign", None, None, None)])
    r2 = sink.wait_for("/signed", 2)[1]
    h2 = headers_of(r2)
    assert len(h2["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(r2.body, h2)
    Webhook(old).verify(r2.body, h2)
    db.execute("SELECT unleash_webhook.end_secret_rotation('signed')")
    insert_events(db, [("t-sign", None, None, None)])
    r3 = sink.wait_for("/signed", 3)[2]
    h3 = headers_of(r3)
    Webhook(new).verify(r3.body, h3)
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(old).verify(r3.body, h3)
    # a tampered body fails verification
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(new).verify(r3.body + b" ", h3)
    # the webhook-id is stable across a redelivery, and the signature is fresh
    d = deliveries(db, "signed")[2]
    db.execute("SELECT unleash_webhook.redeliver(%s)", (d[0],))
    r4 = sink.wait_for("/signed", 4)[3]
    assert headers_of(r4)["webhook-id"] == h3["webhook-id"]
    Webhook(new).verify(r4.body, headers_of(r4))
    # no secret in any view or the server log
    dump = json.dumps(db.execute("SELECT json_agg(s) FROM unleash_webhook.subscriptions s").fetchone()[0])
    assert old[6:] not in dump and new[6:] not in dump


def test_preview_shows_what_would_be_sent_with_secrets_masked(db, sink):
    tpl = '{"text": "{{eventMarkdown}}", "raw": {{{eventJson}}}}'
    create(db, "pv", sink.url("/pv"), ["t-pv"], authorization="Bearer very-secret",
           headers={"X-Api-Key": "also-secret", "X-Team": "flags"}, body_template=tpl)
    (eid,) = insert_events(db, [("t-pv", "default", "production", "flag-a")])
    method, url, headers, body = db.execute(
        "SELECT * FROM unleash_webhook.preview('pv', %s)", (eid,)).fetchone()
    # the path may carry a token (Slack's and Teams' do): masked, as in every view
    assert method == "POST" and url == sink.url("/***")
    assert headers["Authorization"] == "***"
    assert headers["X-Api-Key"] == "***" and headers["X-Team"] == "***"
    assert headers["Content-Type"] == "application/json"
    assert "very-secret" not in json.dumps(headers) and "also-secret" not in json.dumps(headers)
    (r,) = sink.wait_for("/pv", 1)
    assert r.body.decode() == body
    doc = json.loads(body)
    assert json.loads(doc["raw"])["id"] == eid
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT * FROM unleash_webhook.preview('pv', 999999999)")


def test_event_markdown_is_json_escaped_inside_strings(db, sink):
    tpl = '{"text": "{{eventMarkdown}}"}\n{{{eventMarkdown}}}'
    create(db, "md", sink.url("/md"), ["feature-environment-enabled"], body_template=tpl)
    db.execute("""INSERT INTO events (type, created_by, project, environment, feature_name)
                  VALUES ('feature-environment-enabled', 'ad"min', 'default', 'development', 'f1')""")
    (r,) = sink.wait_for("/md", 1)
    first, second = r.body.decode().split("\n", 1)
    text = json.loads(first)["text"]
    assert text == second
    assert "[f1](http://localhost:4242/projects/default/features/f1)" in text
    assert "development" in text


def test_replay_sends_past_events_again(db, sink):
    create(db, "rp", sink.url("/rp"), ["t-replay"])
    ids = insert_events(db, [("t-replay", None, None, None)] * 3)
    sink.wait_for("/rp", 3)
    n = db.execute("SELECT unleash_webhook.replay('rp', now() - interval '1 minute')").fetchone()[0]
    assert n == 3
    got = sink.wait_for("/rp", 6)
    assert sorted(json.loads(r.body)["id"] for r in got[3:]) == ids
    # new deliveries: new ids
    assert len({headers_of(r)["webhook-id"] for r in got}) == 6


def test_retries_are_not_paced_by_the_log_check(db, sink):
    """Retries wait in the log and are claimed at most one subscription's share of the senders
    (max_concurrency_per_subscription x 4 = 64) at a time. A share's results make the log due
    again at once; before, each next share waited for the once-a-second log check, so 1,280
    retries took 20 s to send. Counted and timed at the endpoint."""
    n = 1280
    seen = set()

    def first_fails(rec):
        # each delivery's first attempt fails, its retry succeeds (whenever either comes)
        wid = rec.header("webhook-id")
        if wid in seen:
            return Reply(200)
        seen.add(wid)
        return Reply(500)

    sink.answer("/backlog", first_fails)
    create(db, "backlog", sink.url("/backlog"), ["t-backlog"])
    insert_events(db, [("t-backlog", None, None, None)] * n)
    got = sink.wait_for("/backlog", 2 * n, timeout=90)
    assert len(got) == 2 * n
    ids = [r.header("webhook-id") for r in got]
    assert len(set(ids)) == n
    firsts = {}
    for r, wid in zip(got, ids):
        firsts.setdefault(wid, r.at)
    first_attempts_end = max(firsts.values())
    # the retries still to send once every first attempt was answered: paced at a share a
    # second they take about 19 s more; the sink needs about a second
    took = max(r.at for r in got) - first_attempts_end
    report(f"{n} retries from the log: the last arrived {took:.1f} s after the last first attempt")
    assert took < 10, f"the retries ended {took:.1f} s after the last first attempt"


def test_destination_policy_at_send_time(db, cluster, sink):
    create(db, "policy", sink.url("/policy"), ["t-policy"])
    cluster.reload(db, destination_allowlist="")
    insert_events(db, [("t-policy", None, None, None)])
    (d,) = settled(db, "policy", 1)
    assert d[2:4] == ("failed", 1)
    a = attempts(db, d[0])
    assert a[0][2] == "policy" and "127.0.0.1" in a[0][3]
    assert sink.on("/policy") == []
    # and at subscription time
    with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
        create(db, "policy2", sink.url("/policy2"), ["t-policy"])
    assert "destination_allowlist" in e.value.diag.message_hint


class ConnectProxy(TcpServer):
    """A real HTTP CONNECT proxy on 127.0.0.1 that counts the tunnels it opened."""

    def __init__(self):
        self.tunnels = []
        super().__init__(self.tunnel)

    def tunnel(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                return
            head += chunk
        target = head.split(b" ")[1].decode()
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        up = socket.create_connection((host, int(port)))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [c, up]
        while True:
            r, _, _ = select.select(socks, [], [], 10)
            if not r:
                break
            for s in r:
                data = s.recv(65536)
                if not data:
                    c.close()
                    up.close()
                    return
                (up if s is c else c).sendall(data)


def test_requests_go_through_the_proxy(db, cluster, sink):
    proxy = ConnectProxy()
    cluster.reload(db, http_proxy=f"http://127.0.0.1:{proxy.port}")
    create(db, "proxied", sink.url("/proxied"), ["t-proxy"])
    insert_events(db, [("t-proxy", None, None, None)])
    (r,) = sink.wait_for("/proxied", 1)
    assert proxy.tunnels and proxy.tunnels[0].endswith(f":{sink.port}")
    proxy.sock.close()


def test_stats_and_worker_status_after_a_mixed_run(db, cluster, sink):
    from sink import Reply
    sink.script("/st-fail", Reply(500))
    sink.script("/st-retry", Reply(503), Reply(200))
    # the cluster is shared: start when nothing of another test is queued or in flight
    assert wait_until(lambda: db.execute(
        "SELECT (SELECT in_flight FROM unleash_webhook.worker_status()) = 0 AND NOT EXISTS "
        "(SELECT 1 FROM unleash_webhook.deliveries "
        " WHERE status IN ('queued', 'pending', 'sending'))").fetchone()[0], timeout=60)
    before = db.execute("SELECT attempts, delivered, failed, retries "
                        "FROM unleash_webhook.worker_status()").fetchone()
    create(db, "st-ok", sink.url("/st-ok"), ["t-stats"])
    create(db, "st-fail", sink.url("/st-fail"), ["t-stats"])
    create(db, "st-retry", sink.url("/st-retry"), ["t-stats"])
    insert_events(db, [("t-stats", None, None, None)] * 2)
    for name in ("st-ok", "st-fail", "st-retry"):
        settled(db, name, 2)
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT subscription, pending, delivered, failed, retried, last_success_at IS NOT NULL, "
        "last_failure_reason, latency_p50_ms_1h IS NOT NULL FROM unleash_webhook.subscription_stats "
        "WHERE subscription LIKE 'st-%'").fetchall()}
    assert rows["st-ok"] == (0, 2, 0, 0, True, None, True)
    assert rows["st-fail"][:4] == (0, 0, 2, 2) and rows["st-fail"][5].startswith("HTTP 500")
    # the endpoint answers 503 once, then 200: one of the two needed a retry
    assert rows["st-retry"][:4] == (0, 2, 0, 1)
    status = db.execute("SELECT pid, running, attempts, delivered, failed, retries "
                        "FROM unleash_webhook.worker_status()").fetchone()
    assert status[0] and status[1]
    # this test's attempts: 2 delivered at once, 2 x (500, 500), 503 then 200 for one of the
    # two and 200 for the other: 9 attempts, 4 delivered, 2 failed, 3 retries scheduled
    delta = tuple(a - b for a, b in zip(status[2:], before))
    assert delta == (9, 4, 2, 3), delta


def test_retention_purges_finished_deliveries(db, cluster, sink):
    create(db, "ret", sink.url("/ret"), ["t-ret"])
    insert_events(db, [("t-ret", None, None, None)] * 5)
    settled(db, "ret", 5)
    cluster.reload(db, retention="1s")
    gone = wait_until(lambda: not deliveries(db, "ret"), timeout=15)
    assert gone
    assert db.execute("SELECT count(*) FROM unleash_webhook._attempts a LEFT JOIN "
                      "unleash_webhook._deliveries d ON d.id = a.delivery_id "
                      "WHERE d.id IS NULL").fetchone()[0] == 0
