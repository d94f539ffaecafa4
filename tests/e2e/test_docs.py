"""The README and every page of docs/, run or checked as written.

What the docs show, and what happens to it here:

- Every ```sql block, and every SQL statement written inline (a code span that starts with a
  statement keyword and ends with `;`), is taken from the markdown and run in document order,
  statement by statement in one autocommit session (as psql runs a pasted script), against a
  cluster from make_unleash_cluster(): Unleash's real `events` and `addons` tables, real HTTP
  endpoints. Each page's test then checks that what the page says happens did happen (the
  README's first subscription delivers, the reference's import reports what its comment shows,
  the security page's managing role can create but not pause...).
- Every ```conf block is checked against the running server: the harness's clusters are
  started with those lines.
- Every shell command (a line of a ```sh block, or an inline code span that starts with a
  command such as `bash`, `cargo` or `apt-get` and has arguments) is run here when it is cheap
  and harmless (`tests/run.sh -k ...` is collected with pytest; the benchmark's options are
  checked against its --help), or listed in SHELL below: covered by another file (which must
  contain the quoted text) or not runnable, with the reason. A command in no list fails.
- ```text blocks are pictures, formulas and log lines; they must not look like commands.
- The facts the reference lists are compared with the server and the code: every setting with
  its default and whether it needs a restart, every function with its arguments, every view
  with its columns, every SQLSTATE our code raises; and architecture.md's table list with the
  private tables' columns. Every path and test named in the docs exists, every link between
  pages finds its file and its heading, and the .deb named is this version's.

The migration guide's own test keeps its detailed walk through an Unleash installation.

Placeholders, `<name>`, are filled in by each page's test as an admin would; an unknown one
fails. URLs in SQL are replaced by the test's own endpoint (URLS below); any other http(s) URL
in a statement fails the test, so that no example ever sends to the internet. After
`SELECT pg_reload_conf()` the test waits until the worker has logged that it applied the reload
before it runs the next statement.

docs/migrating-from-unleash-webhooks.md, in detail: its ```sql blocks run against Unleash's
`addons` filled with webhook addons shaped as Unleash stores them; then an Unleash-like INSERT
into events must reach the sink, and the roll-back blocks must switch the addons back on. Its
placeholders:
  <schema>         public (Unleash's default DATABASE_SCHEMA; attach() of it is a no-op)
  <private hosts>  127.0.0.1, localhost (the sink is on loopback, as the harness allows)
  <addon id>       the first webhook addon; <event id>: an event from before the migration
  <addon ids>      the addon_ids that the import's report says it disabled
"""

import json
import re
import subprocess
import sys
import tomllib
from typing import NamedTuple

import psycopg
import pytest

from conftest import (ROOT, UNLEASH_FIXTURES, insert_events, make_unleash_cluster, wait_until,
                      worker_pid)
from sink import Sink

GUIDE = ROOT / "docs" / "migrating-from-unleash-webhooks.md"
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"<([a-z][a-z ]*[a-z])>")
TEMPLATE = ('{"event": "{{event.type}}", "createdBy": "{{event.createdBy}}", '
            '"featureToggle": "{{event.featureName}}", "project": "{{event.project}}"}')

# The docs' example URLs, and the path on the test's endpoint that stands in for each.
URLS = {
    "https://hooks.example.com/unleash": "/first-hook",
    "https://hooks.slack.com/services/T000/B000/XXXX": "/services/T000/B000/XXXX",
    "https://audit.internal/unleash": "/audit",
}


class Covered(NamedTuple):
    """Run by another file, which contains `text` (so that the claim is checked)."""
    path: str
    text: str


class NotRun(NamedTuple):
    why: str


# Shell commands the docs show and this file does not run. Commands starting with
# `bash tests/bench/run.sh` and `bash tests/run.sh -k` are checked by rules instead (below).
SHELL = {
    "bash tests/demo.sh": Covered(".ci/run", "bash tests/demo.sh"),
    # ... and it is what runs this file
    "bash tests/run.sh": Covered(".ci/run", "bash tests/run.sh"),
    "bash .ci/run": NotRun("it is CI itself: setup, lint, the demo and every test, in a fresh "
                           "clone; it runs this file"),
    "cargo fmt --check": Covered(".ci/run", "cargo fmt --check"),
    "cargo clippy -D warnings": Covered(".ci/run", "-- -D warnings"),
    "deb=$(bash .ci/package)": Covered("tests/e2e/test_package.py", '"bash", ROOT / ".ci/package"'),
    "bash .ci/package": Covered("tests/e2e/test_package.py", '"bash", ROOT / ".ci/package"'),
    "bash .ci/package --debug <tag or commit>": Covered("tests/e2e/test_upgrade.py",
                                                        '".ci/package", "--debug", "--pg"'),
    'apt-get install "$deb"': Covered("tests/e2e/test_package.py", '"apt-get", "install"'),
    "apt-get install ./postgresql-15-unleash-webhook_<version>_amd64.deb":
        Covered("tests/e2e/test_package.py", '"apt-get", "install"'),
    "apt-get purge postgresql-15-unleash-webhook": Covered("tests/e2e/test_package.py",
                                                           '"apt-get", "purge"'),
    # a release build into the system PostgreSQL takes minutes and replaces what the other
    # tests run; demo.sh does exactly this (env.sh sets PG_CONFIG to the path shown)
    "cargo pgrx install --release --pg-config /usr/lib/postgresql/15/bin/pg_config":
        Covered("tests/demo.sh", 'cargo pgrx install --release --pg-config "$PG_CONFIG"'),
    "cargo pgrx install --release": Covered("tests/demo.sh", "cargo pgrx install --release"),
    "cargo pgrx init": Covered(".ci/setup", 'cargo pgrx init "${init_args[@]}"'),
    "cargo pgrx package": Covered(".ci/package", "cargo pgrx package --pg-config"),
    # the harness's Cluster.stop("immediate") is `pg_ctl -m immediate stop`
    "pg_ctl stop -m immediate": Covered("tests/e2e/test_faults.py",
                                        'lambda: c.stop("immediate")'),
    "apt-get install prometheus-postgres-exporter": Covered(".ci/setup",
                                                            "prometheus-postgres-exporter"),
    # the package puts the file there (test_package.py checks it); test_metrics.py starts the
    # exporter with --extend.query-path pointing at the same file
    "install -m 644 /usr/share/doc/postgresql-15-unleash-webhook/queries.yaml "
    "/etc/prometheus/unleash_webhook-queries.yaml":
        Covered("tests/e2e/test_metrics.py", "--extend.query-path"),
    "systemctl restart prometheus-postgres-exporter":
        NotRun("no systemd on the test machine; tests/e2e/test_metrics.py starts the exporter "
               "itself with the same arguments"),
    "systemctl restart postgresql@15-main":
        NotRun("no systemd on the test machine; the harness restarts its own clusters with "
               "pg_ctl (conftest.py)"),
    "sudo -u postgres psql -d unleash":
        NotRun("an interactive session; the tests run the guide's SQL through their own "
               "connection to the same kind of database"),
}


class Item(NamedTuple):
    """Something a doc shows: a fenced block, or a command written inline."""
    lang: str      # the fence's language; "sql" or "sh" for an inline command
    body: str      # the block's text (dedented), or the inline command
    section: str   # the last heading before it
    doc: str       # the doc's path, relative to the repository
    line: int      # where it starts
    inline: bool

    def where(self):
        return f"{self.doc}:{self.line}"


FENCE = re.compile(r"^(\s*)```(.*)$")
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
SQL_STATEMENT = re.compile(r"^(SELECT|CREATE|ALTER|DROP|GRANT|REVOKE|UPDATE|INSERT|DELETE|"
                           r"TRUNCATE|VACUUM|COPY)\s.*;$", re.S)
SHELL_COMMAND = re.compile(r"^(bash|sh|cargo|apt-get|apt|dpkg|systemctl|pg_ctl|pg_ctlcluster|"
                           r"psql|pg_dump|pg_restore|sudo|install|git|python3?|pytest|curl|"
                           r"deb=\$\(bash)\s+\S")


def doc_items(path):
    """[Item] of a markdown file, in document order: every fenced block, and every inline code
    span that is a SQL statement or a shell command. Fences may be indented (in a list item)."""
    rel = str(path.relative_to(ROOT))
    items, section, fence, body, start = [], "", None, [], 0
    prose, prose_start, headings = [], 1, []

    def spans():
        text = "\n".join(prose)
        for m in CODE_SPAN.finditer(text):
            code = " ".join(m.group(2).split())
            line = prose_start + text.count("\n", 0, m.start())
            sec = [h for n, h in headings if n <= line]
            sec = sec[-1] if sec else ""
            if SQL_STATEMENT.match(code):
                items.append(Item("sql", code, sec, rel, line, True))
            elif SHELL_COMMAND.match(code):
                items.append(Item("sh", code, sec, rel, line, True))

    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                spans()
                fence, body, start = m.group(1), [], n
                lang = m.group(2).strip()
                continue
            h = HEADING.match(line)
            if h:
                section = h.group(1).strip()
                headings.append((n, section))
            if not prose:
                prose_start = n
            prose.append(line)
        elif line.strip() == "```":
            items.append(Item(lang, "\n".join(body) + "\n", section, rel, start, False))
            fence, prose, prose_start = None, [], n + 1
        else:
            assert line.startswith(fence) or not line.strip(), \
                f"{rel}:{n}: a line of a fenced block is indented less than its fence"
            body.append(line[len(fence):])
    assert fence is None, f"{rel}:{start}: unclosed code fence"
    spans()
    return items


def fenced_blocks(markdown_path):
    """[(language, body, section)] of every fenced block of a doc."""
    return [(i.lang, i.body, i.section) for i in doc_items(markdown_path) if not i.inline]


def shell_commands(item):
    """The commands of a shell item: comments dropped, continuation lines joined."""
    if item.inline:
        return [item.body]
    out, cur = [], ""
    for line in item.body.splitlines():
        line = line.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            cur += line[:-1].strip() + " "
            continue
        cur += line
        out.append(re.sub(r"\s+#\s.*$", "", cur).strip())
        cur = ""
    assert not cur, f"{item.where()}: a command ends with a continuation"
    return out


def sql_items(path):
    return [i for i in doc_items(path) if i.lang == "sql"]


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
    """Fills the placeholders; a value may be a function, called when first needed."""
    def sub(m):
        v = values.get(m.group(1))
        if callable(v):
            v = values[m.group(1)] = str(v())
        assert v is not None, f"placeholder <{m.group(1)}> not filled: {stmt}"
        return v
    return PLACEHOLDER.sub(sub, stmt)


def local_urls(stmt, sink):
    """The statement with the docs' example URLs pointing at the test's endpoint; any other
    URL fails the test (no example may send to the internet)."""
    for url, path in URLS.items():
        stmt = stmt.replace(url, sink.url(path))
    local = sink.url("/")[:-1]
    for url in re.findall(r"https?://[^\s'\"]+", stmt):
        assert url.startswith(local), f"a URL the test does not know: {url} in {stmt}"
    return stmt


def run(cluster, db, blocks, values, results, sink=None):
    """Runs the statements of `blocks` (fenced blocks or Items, in order); results[statement as
    written] = (columns, rows). With `sink`, URLs are pointed at it (local_urls)."""
    for block in blocks:
        for stmt in split_sql(block[1]):
            if "pg_reload_conf()" in stmt:
                # as a person would, the next statement comes once the reload is applied
                cluster.reload_and_wait(db)
                results[stmt] = ([], [])
                continue
            sql = fill(stmt, values)
            if sink is not None:
                sql = local_urls(sql, sink)
            cur = db.execute(sql)
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


def events_table_in(cluster, schema):
    """Unleash's events table in another schema (its DATABASE_SCHEMA), without the capture
    trigger."""
    cluster.psql_file_sql(f"CREATE SCHEMA {schema}; SET search_path = {schema}; "
                          + (UNLEASH_FIXTURES / "events-table.sql").read_text())


def conf_lines(items):
    conf = {}
    for item in items:
        for line in item.body.splitlines():
            m = re.match(r"\s*([\w.]+)\s*=\s*'([^']*)'", line)
            if m:
                conf[m.group(1)] = m.group(2)
    return conf


def check_conf(db, items):
    """A ```conf block is what the harness's clusters run with: the server has its values."""
    conf = conf_lines(items)
    assert conf, "no setting in the conf blocks"
    for name, value in conf.items():
        assert db.execute(f"SHOW {name}").fetchone()[0] == value, name
    return conf


def drop_extension_for_the_doc(cluster, db):
    """The harness created the extension; a doc that creates it starts from before that."""
    db.execute("DROP EXTENSION unleash_webhook CASCADE")
    assert wait_until(lambda: "waiting for CREATE EXTENSION" in cluster.log(), timeout=20)


def test_migration_guide_runs_as_written():
    blocks = fenced_blocks(GUIDE)
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


# ---- Every doc: what it shows is run here, or accounted for --------------------------------

def rel(path):
    return str(path.relative_to(ROOT))


# The docs whose SQL (fenced and inline) a test below runs, and those whose ```conf blocks are
# checked against a running server.
SQL_RUN_BY = {
    "README.md": "test_readme_runs_as_written",
    "docs/reference.md": "test_reference_runs_as_written",
    "docs/operations.md": "test_operations_guide_runs_as_written",
    "docs/security.md": "test_security_privileges_run_as_written",
    "docs/migrating-from-unleash-webhooks.md": "test_migration_guide_runs_as_written",
}
CONF_CHECKED_BY = {
    "README.md": "test_readme_runs_as_written",
    "docs/migrating-from-unleash-webhooks.md": "test_migration_guide_runs_as_written",
}
# The docs whose ```yaml blocks (Patroni's configuration) a test below compares with what
# tests/e2e/test_patroni.py runs.
YAML_CHECKED_BY = {
    "docs/operations.md": "test_patroni_settings_in_the_docs_are_what_the_ha_test_runs",
}
LOOKS_LIKE_A_COMMAND = re.compile(r"^\s*(\$ |(SELECT|CREATE|ALTER|DROP|GRANT|REVOKE|UPDATE|"
                                  r"INSERT|DELETE)\s|(bash|cargo|apt-get|systemctl|psql|sudo)\s)")


def test_every_command_in_the_docs_is_run_or_accounted_for():
    assert {rel(d) for d in DOCS} >= set(SQL_RUN_BY) | set(CONF_CHECKED_BY)
    this = pathlib_text(__file__)
    for name in {*SQL_RUN_BY.values(), *CONF_CHECKED_BY.values(), *YAML_CHECKED_BY.values()}:
        assert f"def {name}(" in this, name
    unknown, used = [], set()
    for doc in DOCS:
        for item in doc_items(doc):
            if item.lang == "sql":
                assert item.doc in SQL_RUN_BY, f"{item.where()}: SQL in a doc no test runs"
                if item.doc == rel(GUIDE):
                    assert not item.inline, f"{item.where()}: the guide's test runs only blocks"
            elif item.lang == "conf":
                assert item.doc in CONF_CHECKED_BY, f"{item.where()}: a conf block nobody checks"
            elif item.lang == "text":
                for line in item.body.splitlines():
                    assert not LOOKS_LIKE_A_COMMAND.match(line), \
                        f"{item.where()}: a ```text block holding a command: {line}"
            elif item.lang == "sh":
                for cmd in shell_commands(item):
                    if cmd.startswith("bash tests/bench/run.sh") or \
                            cmd.startswith("bash tests/run.sh -k"):
                        continue  # checked by the tests below
                    # (the release in a .deb's name is checked by
                    # test_the_package_named_in_the_docs_is_this_version)
                    cmd = re.sub(r"_\d[\w.~+-]*_amd64\.deb", "_<version>_amd64.deb", cmd)
                    if cmd not in SHELL:
                        unknown.append(f"{item.where()}: {cmd}")
                    used.add(cmd)
            elif item.lang == "yaml":
                assert item.doc in YAML_CHECKED_BY, f"{item.where()}: a yaml block nobody checks"
            else:
                raise AssertionError(f"{item.where()}: a ```{item.lang} block: what is it?")
    assert not unknown, ("shell commands in the docs that are neither run nor listed in SHELL "
                         "with the reason:\n  " + "\n  ".join(unknown))
    assert set(SHELL) == used, f"SHELL lists commands no doc shows: {set(SHELL) - used}"
    for cmd, how in SHELL.items():
        if isinstance(how, Covered):
            assert how.text in (ROOT / how.path).read_text(), \
                f"{cmd!r} is said to be run by {how.path}, which does not contain {how.text!r}"
        else:
            assert how.why


def pathlib_text(path):
    with open(path) as f:
        return f.read()


def doc_shell_commands(prefix):
    return [(item, cmd) for doc in DOCS for item in doc_items(doc) if item.lang == "sh"
            for cmd in shell_commands(item) if cmd.startswith(prefix)]


def test_benchmark_commands_use_options_it_has():
    """The benchmark runs take minutes and install a release build into the system PostgreSQL
    (tests/run.sh runs its smoke run): here, each option the docs give it must exist."""
    shown = doc_shell_commands("bash tests/bench/run.sh")
    assert shown
    run_sh = (ROOT / "tests/bench/run.sh").read_text()
    assert 'bench.py --sink "$CARGO_TARGET_DIR/release/uw-bench-sink" "$@"' in run_sh
    options = set(re.findall(r"--[a-z][a-z-]*", subprocess.run(
        [sys.executable, ROOT / "tests/bench/bench.py", "--help"], check=True,
        capture_output=True, text=True).stdout))
    for item, cmd in shown:
        for opt in re.findall(r"(?<!\S)--[a-z][a-z-]*", cmd):
            assert opt in options, f"{item.where()}: bench.py has no {opt}: {cmd}"


def test_run_sh_selections_select_tests():
    """`bash tests/run.sh -k ...` passes -k to pytest: each selection the docs show must pick
    at least one end-to-end test (collected, not run)."""
    shown = doc_shell_commands("bash tests/run.sh -k")
    assert shown
    assert '-m pytest -q -p no:cacheprovider -rs "$@"' in (ROOT / "tests/run.sh").read_text()
    for item, cmd in shown:
        args = cmd.split()[2:]
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                              "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                             cwd=ROOT / "tests" / "e2e", capture_output=True, text=True)
        picked = [line for line in out.stdout.splitlines() if "::" in line]
        assert out.returncode == 0 and picked, \
            f"{item.where()}: {cmd} selects nothing\n{out.stdout}"


# ---- Facts the docs state, against the repository -------------------------------------------

def slug(heading):
    """GitHub's anchor for a heading."""
    s = re.sub(r"[`*_]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_links_paths_and_tests_named_in_the_docs_exist():
    anchors = {}
    for doc in DOCS:
        anchors[doc.resolve()] = {slug(h.group(1)) for line in doc.read_text().splitlines()
                                  if (h := HEADING.match(line))}
    test_defs = "".join(p.read_text() for p in [*(ROOT / "tests").rglob("*.py"),
                                                *(ROOT / "src").rglob("*.rs")])
    problems = []
    for doc in DOCS:
        text = doc.read_text()
        # links between pages, and to files of the repository
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?://", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc.resolve()
            if not dest.exists():
                problems.append(f"{rel(doc)}: link to a missing file: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors.get(dest, set()):
                problems.append(f"{rel(doc)}: link to a missing heading: {target}")
        # paths and tests in code spans and blocks
        for m in re.finditer(r"(?<![\w/.-])((?:src|tests|sql|docs|\.ci)/[\w./-]*)(::\w+)?", text):
            path, test = m.group(1).rstrip("."), m.group(2)
            if text[m.end():m.end() + 1] in ("<", "*", "…", "$"):
                continue  # a pattern, not a path
            if not (ROOT / path).exists():
                problems.append(f"{rel(doc)}: no such path: {path}")
            elif test and f"def {test[2:]}(" not in (ROOT / path).read_text():
                problems.append(f"{rel(doc)}: {path} has no {test[2:]}")
        for name in re.findall(r"`(test_\w+)`", text):
            if f"def {name}(" not in test_defs:
                problems.append(f"{rel(doc)}: no test named {name}")
    assert not problems, "\n".join(problems)


def test_the_package_named_in_the_docs_is_this_version():
    version = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    named = [(rel(d), v) for d in DOCS
             for v in re.findall(r"unleash-webhook_(\d[\w.~+-]*)_amd64\.deb", d.read_text())]
    assert named
    assert all(v == version for _, v in named), (version, named)


# ---- Facts the reference states, against a fresh install ------------------------------------

REFERENCE = ROOT / "docs" / "reference.md"
OPERATIONS = ROOT / "docs" / "operations.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def table_rows(path, header):
    """The rows (lists of cells) of the markdown table whose header row starts with `header`."""
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        if line.startswith("| " + header):
            rows = []
            for row in lines[n + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]])
            return rows
    raise AssertionError(f"{rel(path)}: no table starting with | {header}")


def unticked(cell):
    return cell.strip().strip("`")


@pytest.fixture(scope="module")
def fresh():
    c = make_unleash_cluster()
    db = c.connect()
    yield db
    db.close()
    c.destroy()


UNITS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000,
         "kB": 1, "MB": 1024, "GB": 1024 * 1024}


def setting_value(text):
    """`300ms` -> (300, 'ms' family) in the setting's base unit; other text as it is."""
    m = re.fullmatch(r"(\d+)\s*(ms|s|min|h|d|kB|MB|GB)", text)
    if not m:
        return text
    return int(m.group(1)) * UNITS[m.group(2)]


def server_default(row):
    """(default in ms or kB, or text) of a pg_settings row."""
    name, boot, unit = row
    if boot in (None, ""):
        return "(none)"
    if unit is None:
        return boot
    base = {"ms": 1, "s": 1000, "kB": 1}[unit]
    return int(boot) * base


def test_settings_in_the_docs_are_the_servers(fresh):
    """The reference's and the operations guide's settings tables: every setting, its default
    and whether it needs a restart, as the server has them."""
    server = {r[0]: r[1:] for r in fresh.execute(
        "SELECT name, boot_val, unit, context FROM pg_settings "
        "WHERE name LIKE 'unleash_webhook.%'").fetchall()}
    assert server
    for path, header, prefix in ((REFERENCE, "setting | default | applied", ""),
                                 (OPERATIONS, "setting | default | allowed", "unleash_webhook.")):
        rows = table_rows(path, header)
        col = 3 if path == OPERATIONS else 2
        documented = {prefix + unticked(r[0]): r for r in rows}
        assert set(documented) == set(server), (rel(path), set(documented) ^ set(server))
        for name, r in documented.items():
            boot, unit, context = server[name]
            assert setting_value(unticked(r[1])) == server_default((name, boot, unit)), \
                (rel(path), name, r[1], boot, unit)
            applied = {"postmaster": "restart", "sighup": "reload"}[context]
            assert r[col] == applied, (rel(path), name, r[col], context)


def test_functions_and_views_in_the_reference_are_the_servers(fresh):
    funcs = {}
    for name, args, result in fresh.execute(
            "SELECT p.proname, coalesce(p.proargnames[1:p.pronargs], '{}'), "
            "pg_get_function_result(p.oid) FROM pg_proc p "
            "WHERE p.pronamespace = 'unleash_webhook'::regnamespace "
            "AND p.proname NOT LIKE '\\_%'").fetchall():
        assert name not in funcs, f"{name} is overloaded: say which one the docs mean"
        funcs[name] = (list(args), result)
    documented = {}
    for cell, returns, _ in table_rows(REFERENCE, "function | returns"):
        m = re.fullmatch(r"`(\w+)\((.*)\)`", cell)
        assert m, cell
        args = [a.strip().strip('"') for a in m.group(2).split(",") if a.strip()]
        documented[m.group(1)] = (args, unticked(returns))
    assert set(documented) == set(funcs), set(documented) ^ set(funcs)
    for name, (args, returns) in documented.items():
        real_args, real_result = funcs[name]
        assert args == real_args, (name, args, real_args)
        if returns.startswith("TABLE("):
            cols = [c.split()[0] for c in real_result[len("TABLE("):-1].split(", ")]
            assert returns == f"TABLE({', '.join(cols)})", (name, returns, real_result)
        else:
            assert returns == real_result, (name, returns, real_result)

    views = {v: cols for v, cols in columns_of(fresh, "v").items() if not v.startswith("_")}
    documented = {unticked(v): [c.strip() for c in cols.split(",")]
                  for v, cols in table_rows(REFERENCE, "view | columns")}
    assert documented == views


def raised_sqlstates():
    """The SQLSTATEs our code raises: the SQL scripts of this version, and the Rust outside the
    tests."""
    codes = set()
    for script in ("bootstrap.sql", "finalize.sql"):
        for line in (ROOT / "sql" / script).read_text().splitlines():
            if "ERRCODE" in line:
                codes |= set(re.findall(r"'([0-9A-Z]{5})'", line))
    rust_names = {"OBJECT_NOT_IN_PREREQUISITE_STATE": "55000", "UNDEFINED_OBJECT": "42704",
                  "INVALID_PARAMETER_VALUE": "22023", "SYSTEM_ERROR": "58000",
                  "NULL_VALUE_NOT_ALLOWED": "22004", "DUPLICATE_OBJECT": "42710",
                  "FEATURE_NOT_SUPPORTED": "0A000", "INTERNAL_ERROR": "XX000"}
    for path in (ROOT / "src").rglob("*.rs"):
        if "tests" in path.parts or path.name == "tests.rs":
            continue
        for name in re.findall(r"PgSqlErrorCode::ERRCODE_(\w+)", path.read_text()):
            assert name in rust_names, f"{rel(path)} raises ERRCODE_{name}: add its SQLSTATE here"
            codes.add(rust_names[name])
    return codes


def test_sqlstates_in_the_docs_are_the_codes():
    raised = raised_sqlstates()
    documented = {unticked(r[0]) for r in table_rows(REFERENCE, "SQLSTATE | raised when")}
    assert documented == raised, ("reference.md's SQLSTATE table vs the code", documented ^ raised)
    text = REFERENCE.read_text()
    postgres_own = set(re.findall(r"`([0-9A-Z]{5})`",
                                  text[text.index("PostgreSQL's own, on the way in"):]))
    for r in table_rows(OPERATIONS, "SQLSTATE | message | fix"):
        for code in re.findall(r"`([0-9A-Z]{5})`", r[0]):
            assert code in raised | postgres_own, f"operations.md names {code}"


def columns_of(conn, relkind):
    """{relation: [column, ...]} of our schema's relations of one kind ('r' tables, 'v' views)."""
    out = {}
    for rel, col in conn.execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relnamespace = 'unleash_webhook'::regnamespace AND c.relkind = %s "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum", (relkind,)):
        out.setdefault(rel, []).append(col)
    return out


def test_the_tables_in_architecture_md_are_the_servers(fresh):
    (block,) = [i.body for i in doc_items(ARCHITECTURE)
                if i.lang == "text" and i.section == "The tables"]
    listed = {}
    text = "\n".join(line.split("--")[0] for line in block.splitlines())
    for name, cols in re.findall(r"(_\w+)\s*\(([^)]*)\)", text):
        listed[name] = [c.strip().strip('"') for c in cols.split(",")]
    assert listed == columns_of(fresh, "r")


# ---- Each page's SQL, run as written ---------------------------------------------------------

def run_doc(cluster, db, path, sink, values=None, only=None):
    """Runs every SQL item of `path` (or those `only` accepts), in order; returns the results."""
    results = {}
    run(cluster, db, [i for i in sql_items(path) if only is None or only(i)], values or {},
        results, sink)
    return results


def test_readme_runs_as_written():
    """Install (the conf block), a first subscription, Unleash in another schema; then events
    from Unleash reach the endpoint and the README's query shows them delivered."""
    cluster = make_unleash_cluster()
    sink = Sink()
    try:
        db = cluster.connect()
        items = doc_items(README)
        check_conf(db, [i for i in items if i.lang == "conf"])
        events_table_in(cluster, "myschema")
        drop_extension_for_the_doc(cluster, db)
        results = run_doc(cluster, db, README, sink)
        assert wait_until(lambda: worker_pid(db))
        (first,) = insert_events(db, [("feature-created", "default", None, "my-flag")])
        (other,) = db.execute("INSERT INTO myschema.events (type, created_by, feature_name) "
                              "VALUES ('feature-environment-enabled', 'admin', 'my-flag') "
                              "RETURNING id").fetchone()
        got = sink.wait_for(URLS["https://hooks.example.com/unleash"], 2)
        assert sorted(json.loads(r.body)["id"] for r in got) == sorted([first, other])
        (watch,) = [i for i in sql_items(README) if "FROM unleash_webhook.deliveries" in i.body]

        def delivered():
            again = {}
            run(cluster, db, [watch], {}, again, sink)
            rows = result_of(again, "FROM unleash_webhook.deliveries")
            return len(rows) == 2 and all(r["status"] == "delivered" for r in rows) and rows
        assert wait_until(delivered), result_of(results, "FROM unleash_webhook.deliveries")
        db.close()
    finally:
        sink.close()
        cluster.destroy()


def test_reference_runs_as_written():
    """The SQL API example: every call works in its order, the import reports what its comment
    shows, and the slack-like subscription receives its rendered template, as preview() said."""
    cluster = make_unleash_cluster()
    sink = Sink()
    try:
        db = cluster.connect()
        # the addons its import comment shows: a webhook, and one whose customHeaders is broken
        add_addon(db, "webhook", True, {"url": sink.url("/addon-1")}, ["feature-created"])
        add_addon(db, "webhook", True, {"url": sink.url("/addon-2"),
                                        "customHeaders": "{X-Team: flags"}, ["feature-created"])

        def an_event():
            (eid,) = insert_events(db, [("feature-created", "default", "production", "my-flag")])
            return eid

        def a_delivery():
            eid = an_event()
            return wait_until(lambda: db.execute(
                "SELECT id FROM unleash_webhook.deliveries WHERE event_id = %s "
                "AND status = 'delivered'", (eid,)).fetchone(), timeout=20)[0]
        values = {"event id": an_event, "delivery id": a_delivery}
        results = run_doc(cluster, db, REFERENCE, sink, values)

        text = REFERENCE.read_text()
        shown = re.findall(r"^--\s+(\d+) \| (\S+)\s*\| (\w+)\s*\| (.*?)\s*$", text, re.M)
        assert len(shown) == 2
        report = result_of(results, "import_unleash_addons")
        assert [(str(r["addon_id"]), r["subscription"], r["action"], r["detail"])
                for r in report] == [tuple(s) for s in shown]
        (preview,) = result_of(results, "unleash_webhook.preview(")
        assert preview["url"] == sink.url("/***/***/***/***")
        body = json.loads(preview["body"])
        assert body["text"] == "admin changed *my-flag*"
        got = sink.wait_for(URLS["https://hooks.slack.com/services/T000/B000/XXXX"], 1)
        assert json.loads(got[0].body) == body
        assert result_of(results, "replay(")[0]["replay"] >= 1
        assert result_of(results, "drop_subscription(")[0]["drop_subscription"] == 0
        (status,) = result_of(results, "worker_status()")
        assert status["running"] and status["serves_this_database"]
        subs = {r[0]: r[1] for r in db.execute(
            "SELECT name, signing_secrets FROM unleash_webhook.subscriptions")}
        assert subs == {"slack-prod": 0, "unleash-addon-1": 0}
        types = [r["event_types"] for r in result_of(results, "event_types()")]
        assert len(types) == 33 and "feature-created" in types
        # detach, then attach: the trigger is back where CREATE EXTENSION put it
        assert db.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.events'"
                          "::regclass AND tgname = 'unleash_webhook_capture'").fetchone()[0] == 1
        db.close()
    finally:
        sink.close()
        cluster.destroy()


def test_operations_guide_runs_as_written():
    """Every query of the guide, on a database with deliveries in it: the settings change is
    applied by the worker, the monitoring role's GRANTs work (test_metrics.py checks them in
    depth), and the attach of another schema's events table captures from it."""
    cluster = make_unleash_cluster()
    sink = Sink()
    try:
        db = cluster.connect()
        events_table_in(cluster, "myschema")
        db.execute("SELECT unleash_webhook.create_subscription('slack-prod', %s, "
                   "ARRAY['feature-created'])", (sink.url("/ops"),))
        insert_events(db, [("feature-created", "default", None, "f")] * 3)
        sink.wait_for("/ops", 3)
        results = run_doc(cluster, db, OPERATIONS, sink)
        assert db.execute("SHOW unleash_webhook.max_concurrency_per_subscription"
                          ).fetchone()[0] == "32"
        assert "max_concurrency_per_subscription=32" in cluster.log()
        assert len(result_of(results, "SELECT * FROM unleash_webhook.subscription_stats")) == 1
        (new,) = db.execute("INSERT INTO myschema.events (type, created_by) "
                            "VALUES ('feature-created', 'admin') RETURNING id").fetchone()
        got = sink.wait_for("/ops", 4)
        assert json.loads(got[-1].body)["id"] == new
        with psycopg.connect(host=str(cluster.dir), port=cluster.port, user="unleash_monitor",
                             dbname="unleash", autocommit=True) as monitor:
            assert monitor.execute("SELECT count(*) FROM unleash_webhook.subscription_stats"
                                   ).fetchone()[0] == 1
        db.close()
    finally:
        sink.close()
        cluster.destroy()


def test_security_privileges_run_as_written():
    """The managing role: it creates and changes subscriptions through the functions it was
    granted, sees the view without secrets, and can neither read the private table nor use the
    functions that run with the caller's rights."""
    cluster = make_unleash_cluster()
    sink = Sink()
    try:
        db = cluster.connect()
        run_doc(cluster, db, ROOT / "docs" / "security.md", sink)
        db.execute("SET ROLE webhook_manager")
        db.execute("SELECT unleash_webhook.create_subscription('managed', %s, "
                   "ARRAY['feature-created'], \"authorization\" => 'Bearer sec-ret')",
                   (sink.url("/managed"),))
        db.execute("SELECT unleash_webhook.alter_subscription('managed', projects => "
                   "ARRAY['default'])")
        (row,) = db.execute("SELECT row_to_json(s)::text FROM unleash_webhook.subscriptions s"
                            ).fetchone()
        assert "sec-ret" not in row and '"has_authorization":true' in row
        for sql in ("SELECT unleash_webhook.pause_subscription('managed')",
                    "SELECT \"authorization\" FROM unleash_webhook._subscriptions"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql)
        db.execute("RESET ROLE")
        (eid,) = insert_events(db, [("feature-created", "default", None, "f")])
        (got,) = sink.wait_for("/managed", 1)
        assert json.loads(got.body)["id"] == eid and got.header("Authorization") == "Bearer sec-ret"
        db.close()
    finally:
        sink.close()
        cluster.destroy()


def test_patroni_settings_in_the_docs_are_what_the_ha_test_runs():
    """Every setting the Patroni section shows (bootstrap.dcs) is what test_patroni.py runs
    with, value for value. Parsed by Debian's python3-yaml, which Patroni itself uses."""
    import json
    import subprocess
    from test_patroni import DCS

    def leaves(d, path=()):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from leaves(v, path + (k,))
            else:
                yield path + (k,), v

    blocks = [item for doc in DOCS for item in doc_items(doc) if item.lang == "yaml"]
    assert blocks
    for item in blocks:
        parsed = json.loads(subprocess.run(
            ["/usr/bin/python3", "-c", "import json, sys, yaml; "
             "print(json.dumps(yaml.safe_load(sys.stdin)))"],
            input=item.body, capture_output=True, text=True, check=True).stdout)
        shown = dict(leaves(parsed["bootstrap"]["dcs"]))
        ran = dict(leaves(DCS))
        assert shown, item.where()
        for key, value in shown.items():
            assert key in ran, f"{item.where()}: {'.'.join(key)} is not set by the HA test"
            assert str(value).lower() == str(ran[key]).lower(), \
                f"{item.where()}: {'.'.join(key)} = {value!r}, the HA test runs {ran[key]!r}"
