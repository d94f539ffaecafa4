"""The Debian package, installed the way an operator installs it: `apt-get install ./<file>.deb`,
a cluster with the library preloaded, CREATE EXTENSION, one event delivered; then
`apt-get purge` leaves none of its files behind.

The package replaces the files `cargo pgrx install` put into the system PostgreSQL; they are
put back afterwards (by rename: running clusters keep their mapped copy), so this test can run
in any order with the others."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from conftest import (ROOT, TMPDIR, insert_events, installed_extension_files,
                      make_unleash_cluster, report, wait_until)
from test_delivery import create, deliveries

PACKAGE = "postgresql-15-unleash-webhook"


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}).stdout


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True,
                       text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


@pytest.fixture(scope="module")
def deb():
    """A release build of this tree (the .deb's path is what .ci/package prints)."""
    return pathlib.Path(run("bash", ROOT / ".ci/package").strip())


@pytest.fixture()
def system_files_restored():
    # The package is this machine's owner's business when it was there before the test: the
    # test neither replaces nor purges it.
    if installed():
        pytest.skip(f"{PACKAGE} is installed on this machine already; this test installs and "
                    "purges it, so it runs only where it is not installed (as in CI)")
    backup = pathlib.Path(tempfile.mkdtemp(prefix="uw-sysfiles-", dir=TMPDIR))
    saved = [(f, backup / f.name) for f in installed_extension_files() if f.exists()]
    for f, b in saved:
        shutil.copy2(f, b)
    yield
    # only what this test installed
    if installed():
        run("apt-get", "purge", "-y", "-q", PACKAGE)
    for f, b in saved:
        tmp = f.with_name(f.name + ".restore")
        shutil.copy2(b, tmp)
        os.replace(tmp, f)
    shutil.rmtree(backup, ignore_errors=True)


def test_deb_installs_delivers_and_removes_cleanly(deb, sink, system_files_restored):
    assert deb.name.startswith(f"{PACKAGE}_") and deb.name.endswith("_amd64.deb"), deb.name
    version = run("dpkg-deb", "-f", deb, "Version").strip()
    # what `cargo pgrx install` put there goes, so that the package's files are the ones used
    for f in installed_extension_files():
        f.unlink(missing_ok=True)

    run("apt-get", "install", "-y", "-q", "--no-install-recommends", f"{deb.resolve()}")
    assert installed()
    files = [pathlib.Path(p) for p in run("dpkg-query", "-L", PACKAGE).splitlines()]
    owned = {str(p) for p in files if p.is_file()}
    assert "/usr/lib/postgresql/15/lib/unleash_webhook.so" in owned
    assert "/usr/share/postgresql/15/extension/unleash_webhook.control" in owned
    assert f"/usr/share/postgresql/15/extension/unleash_webhook--{version}.sql" in owned
    # every upgrade script in sql/ ships, so any earlier release can be updated
    for script in (ROOT / "sql").glob("unleash_webhook--*--*.sql"):
        assert f"/usr/share/postgresql/15/extension/{script.name}" in owned, script.name
    assert f"/usr/share/doc/{PACKAGE}/queries.yaml" in owned

    c = make_unleash_cluster()
    try:
        conn = c.connect()
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = "
                            "'unleash_webhook'").fetchone()[0] == version
        create(conn, "from-deb", sink.url("/from-deb"), ["feature-created"])
        [event_id] = insert_events(conn, [("feature-created", "default", None, "from-deb")])
        assert wait_until(lambda: [d[2] for d in deliveries(conn, "from-deb")] == ["delivered"],
                          timeout=30), deliveries(conn, "from-deb")
        [got] = sink.on("/from-deb")
        assert f'"id":{event_id},'.encode() in got.body
        conn.close()
    finally:
        c.destroy()

    run("apt-get", "purge", "-y", "-q", PACKAGE)
    assert not installed()
    left = [str(p) for p in files if p.is_file() and p.exists()]
    assert left == [], left
    report(f"{deb.name}: installed, delivered event {event_id}, purged; "
           f"{len(owned)} files, none left")
