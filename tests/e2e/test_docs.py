"""docs/migrating-from-unleash-webhooks.md, run as written.

Every ```sql block of the guide is taken from the markdown and run in order, statement by
statement in one autocommit session (as psql runs a pasted script), against a cluster from
make_unleash_cluster(): Unleash's real `events` and `addons` tables, filled with webhook addons
shaped as Unleash stores them. Then an Unleash-like INSERT into events must reach the sink,
and the roll-back blocks must switch the addons back on.

What is not SQL is exercised by the harness itself, not here: the ```sh blocks (installing
the library: tests/run.sh runs `cargo pgrx install`; restarting PostgreSQL) and the ```conf
block (postgresql.conf: the harness's clusters are started with those lines; this test checks
that the running server has the guide's values).

Placeholders in the guide, `<name>`, are filled in by the test as an admin would:
  <schema>         public (Unleash's default DATABASE_SCHEMA; attach() of it is a no-op)
  <private hosts>  127.0.0.1, localhost (the sink is on loopback, as the harness allows)
  <addon id>       the first webhook addon; <event id>: an event from before the migration
  <addon ids>      the addon_ids that the import's report says it disabled
An unknown placeholder fails the test. After `SELECT pg_reload_conf()` the test waits until the
worker has logged that it applied the reload before it runs the next statement.
"""

import json
import re

from conftest import ROOT, insert_events, make_unleash_cluster, wait_until, worker_pid
from sink import Sink

GUIDE = ROOT / "docs" / "migrating-from-unleash-webhooks.md"
PLACEHOLDER = re.compile(r"<([a-z][a-z ]*[a-z])>")
TEMPLATE = ('{"event": "{{event.type}}", "createdBy": "{{event.createdBy}}", '
            '"featureToggle": "{{event.featureName}}", "project": "{{event.project}}"}')


def fenced_blocks(markdown):
    """[(language, body, section)] of every fenced block, section = the last ## heading."""
    blocks, section, lang, body = [], "", None, []
    for line in markdown.splitlines():
        if lang is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                lang, body = line[3:].strip(), []
        elif line.startswith("```"):
            blocks.append((lang, "\n".join(body) + "\n", section))
            lang = None
        else:
            body.append(line)
    assert lang is None, "unclosed code fence"
    return blocks


def split_sql(sql):
    """Statements of a script: splits at ; outside quotes, dollar quotes and comments."""
    out, cur, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            i = sql.index("*/", i) + 2
            continue
        if c in "'\"":
            j = i + 1
            while True:
                j = sql.index(c, j)
                if sql.startswith(c, j + 1):  # doubled quote
                    j += 2
                    continue
                break
            cur.append(sql[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
        if m:
            j = sql.index(m.group(0), i + len(m.group(0)))
            cur.append(sql[i:j + len(m.group(0))])
            i = j + len(m.group(0))
            continue
        if c == ";":
            stmt = "".join(cur).strip()
            if stmt:
                out.append(stmt)
            cur = []
        else:
            cur.append(c)
        i += 1
    assert not "".join(cur).strip(), f"statement without a final semicolon: {''.join(cur)!r}"
    return out


def fill(stmt, values):
    def sub(m):
        assert values.get(m.group(1)) is not None, f"placeholder <{m.group(1)}> not filled: {stmt}"
        return values[m.group(1)]
    return PLACEHOLDER.sub(sub, stmt)


def run(cluster, db, blocks, values, results):
    """Runs the statements of `blocks`; results[statement as written] = (columns, rows)."""
    for _, body, _ in blocks:
        for stmt in split_sql(body):
            if "pg_reload_conf()" in stmt:
                # as a person would, the next statement comes once the reload is applied
                cluster.reload_and_wait(db)
                results[stmt] = ([], [])
                continue
            cur = db.execute(fill(stmt, values))
            cols = [d.name for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
            results[stmt] = (cols, rows)
            if "import_unleash_addons" in stmt:
                disabled = [str(r[0]) for r in rows if r[3] == "disabled the addon in Unleash"]
                values["addon ids"] = ", ".join(disabled)


def result_of(results, needle):
    found = [v for k, v in results.items() if needle in k]
    assert len(found) == 1, f"{len(found)} statements contain {needle!r}"
    cols, rows = found[0]
    return [dict(zip(cols, r)) for r in rows]


def add_addon(db, provider, enabled, params, events, projects=(), environments=()):
    return db.execute(
        "INSERT INTO addons (provider, description, enabled, parameters, events, projects, "
        "environments) VALUES (%s, %s, %s, %s::json, %s::json, %s::jsonb, %s::jsonb) RETURNING id",
        (provider, f"{provider} integration", enabled, json.dumps(params), json.dumps(events),
         json.dumps(list(projects)), json.dumps(list(environments)))).fetchone()[0]


def test_migration_guide_runs_as_written():
    blocks = fenced_blocks(GUIDE.read_text())
    assert {lang for lang, _, _ in blocks} == {"sql", "sh", "conf"}
    sql = [b for b in blocks if b[0] == "sql"]
    migration = [b for b in sql if not b[2].startswith("Roll back")]
    rollback = [b for b in sql if b[2].startswith("Roll back")]
    assert len(migration) >= 8 and len(rollback) == 3
    conf = {}
    for _, body, _ in (b for b in blocks if b[0] == "conf"):
        for line in body.splitlines():
            m = re.match(r"\s*([\w.]+)\s*=\s*'([^']*)'", line)
            if m:
                conf[m.group(1)] = m.group(2)
    assert set(conf) == {"shared_preload_libraries", "unleash_webhook.database_name"}

    cluster = make_unleash_cluster()
    sink = Sink()
    try:
        db = cluster.connect()
        # the ```conf block is what the harness's clusters run with
        assert db.execute("SHOW shared_preload_libraries").fetchone()[0] == \
            conf["shared_preload_libraries"]
        assert db.execute("SHOW unleash_webhook.database_name").fetchone()[0] == \
            conf["unleash_webhook.database_name"] == "unleash"
        # The harness created the extension; the guide creates it: start from before that.
        db.execute("DROP EXTENSION unleash_webhook CASCADE")
        assert wait_until(lambda: "waiting for CREATE EXTENSION" in cluster.log(), timeout=20)

        # Unleash before the migration: webhook addons as Unleash stores them (customHeaders
        # is a JSON object serialised into a string), another integration, and history.
        team = add_addon(db, "webhook", True, {
            "url": sink.url("/hook-team"), "contentType": "application/json",
            "authorization": "Bearer team-secret",
            "customHeaders": json.dumps({"X-Team": "flags"}), "bodyTemplate": TEMPLATE},
            ["feature-created", "feature-environment-enabled"], ["default"], ["production"])
        audit = add_addon(db, "webhook", True, {
            "url": sink.url("/hook-audit"), "contentType": "", "authorization": "",
            "customHeaders": "", "bodyTemplate": ""}, ["feature-archived"], [], ["*"])
        off = add_addon(db, "webhook", False, {"url": sink.url("/hook-off")}, ["feature-created"])
        bad = add_addon(db, "webhook", True, {
            "url": sink.url("/hook-bad"), "customHeaders": "{X-Team: flags"}, ["feature-created"])
        add_addon(db, "slack", True, {"url": "https://hooks.slack.com/services/T0/B0/X"},
                  ["feature-created"])
        (old_event,) = insert_events(db, [("feature-created", "default", None, "old-flag")])

        values = {"schema": "public", "private hosts": "127.0.0.1, localhost",
                  "addon id": str(team), "event id": str(old_event), "addon ids": None}
        results = {}
        run(cluster, db, migration, values, results)

        stock = result_of(results, "WHERE provider = 'webhook'")
        assert [r["id"] for r in stock] == [team, audit, off, bad]
        report = {r["addon_id"]: r for r in result_of(results, "import_unleash_addons")}
        assert sorted(report) == [team, audit, off, bad]
        assert report[team]["action"] == report[audit]["action"] == "created"
        assert report[team]["detail"] == report[audit]["detail"] == "disabled the addon in Unleash"
        assert report[off]["action"] == "created" and report[off]["detail"] is None
        assert report[bad]["action"] == "skipped"
        assert report[bad]["detail"] == "customHeaders is not valid JSON"
        assert values["addon ids"] == f"{team}, {audit}"
        enabled = dict(db.execute("SELECT id, enabled FROM addons WHERE provider = 'webhook'").fetchall())
        assert enabled == {team: False, audit: False, off: False, bad: True}

        subs = {r["name"]: r for r in result_of(results, "FROM unleash_webhook.subscriptions ORDER BY name")}
        assert set(subs) == {f"unleash-addon-{team}", f"unleash-addon-{audit}", f"unleash-addon-{off}"}
        assert subs[f"unleash-addon-{team}"]["has_authorization"]
        assert subs[f"unleash-addon-{team}"]["header_names"] == ["X-Team"]
        assert not subs[f"unleash-addon-{off}"]["enabled"]
        (preview,) = result_of(results, "unleash_webhook.preview(")
        # the path may carry a token (Slack's and Teams' do): shown masked, as in every view
        assert preview["url"] == sink.url("/***")
        assert preview["headers"]["Authorization"] == "***" and preview["headers"]["X-Team"] == "***"
        assert preview["body"] == ('{"event": "feature-created", "createdBy": "admin", '
                                   '"featureToggle": "old-flag", "project": "default"}')
        assert wait_until(lambda: worker_pid(db))

        # Unleash changes flags: one multi-row INSERT, as Unleash writes a transaction's events
        insert_events(db, [("feature-environment-enabled", "default", "production", "my-flag"),
                           ("feature-archived", "default", None, "my-flag"),
                           ("feature-created", "default", None, "new-flag")])
        team_got = sink.wait_for("/hook-team", 2)
        assert sorted(r.body.decode() for r in team_got) == [
            '{"event": "feature-created", "createdBy": "admin", "featureToggle": "new-flag", '
            '"project": "default"}',
            '{"event": "feature-environment-enabled", "createdBy": "admin", '
            '"featureToggle": "my-flag", "project": "default"}']
        for r in team_got:
            assert r.header("Authorization") == "Bearer team-secret"
            assert r.header("X-Team") == "flags"
            assert r.header("Content-Type") == "application/json"
        (archived,) = sink.wait_for("/hook-audit", 1)
        event = json.loads(archived.body)
        assert (event["type"], event["featureName"]) == ("feature-archived", "my-flag")

        # step 7's queries show them delivered
        watch = [b for b in migration if "FROM unleash_webhook.deliveries" in b[1]]
        assert len(watch) == 1

        def delivered():
            again = {}
            run(cluster, db, watch, values, again)
            rows = result_of(again, "FROM unleash_webhook.deliveries")
            return len(rows) == 3 and all(r["status"] == "delivered" for r in rows) and again
        again = wait_until(delivered, timeout=20)
        assert again, result_of(results, "FROM unleash_webhook.deliveries")
        assert len(result_of(again, "FROM unleash_webhook.delivery_attempts")) == 3
        stats = {r["subscription"]: r for r in result_of(again, "subscription_stats")}
        assert stats[f"unleash-addon-{team}"]["delivered"] == 2
        # all three delivered and nothing else queued: the addon that was off in Unleash is off
        # here too, and the skipped one was never ours to send
        assert sink.on("/hook-off") == [] and sink.on("/hook-bad") == []
        assert len(sink.on("/hook-team")) == 2

        # roll back: Unleash's webhooks on again, ours gone, Unleash's tables untouched
        run(cluster, db, rollback, values, results)
        enabled = dict(db.execute("SELECT id, enabled FROM addons WHERE provider = 'webhook'").fetchall())
        assert enabled == {team: True, audit: True, off: False, bad: True}
        dropped = result_of(results, "drop_subscription")
        assert sorted(r["name"] for r in dropped) == sorted(subs)
        assert db.execute("SELECT count(*) FROM pg_extension WHERE extname = 'unleash_webhook'"
                          ).fetchone()[0] == 0
        triggers = [r[0] for r in db.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.events'::regclass "
            "AND NOT tgisinternal").fetchall()]
        assert triggers == ["unleash_update_stat_environment_changes"]
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 4
        db.close()
    finally:
        sink.close()
        cluster.destroy()
