"""The Debian package postgresql-<N>-unleash-webhook, for the PostgreSQL version under test.

- Its file list: Debian's and PGDG's layout for postgresql-<N>, nothing else.
- Its contents, unpacked from the .deb into a copy of the version's tree (as dpkg would put them
  into /usr/lib/postgresql/<N> and /usr/share/postgresql/<N>): a cluster preloads it, CREATE
  EXTENSION, one event delivered. On every version.
- On Debian's 15 only: installed the way an operator installs it, `apt-get install ./<file>.deb`
  into the system's PostgreSQL, one event delivered through it; then `apt-get purge` leaves none
  of its files behind. This machine's PostgreSQL is 15 only, so the other versions' packages
  cannot be installed with apt here.

15's package is a release build, as shipped. The others are debug builds of the same source
(`.ci/package --debug --pg N`): tests/run.sh has built exactly that for its tests already, while a
release build (fat LTO, one codegen unit) would cost minutes per version of CI's 90."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from conftest import (PG_MAJOR, ROOT, TMPDIR, PrivatePostgres, insert_events, make_unleash_cluster,
                      package_layout, report, wait_until)
from test_delivery import create, deliveries

pytestmark = pytest.mark.core

PACKAGE = f"postgresql-{PG_MAJOR}-unleash-webhook"
# Debian's own PostgreSQL, where apt puts the package.
SYSTEM_PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}).stdout


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True,
                       text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


@pytest.fixture(scope="module")
def deb():
    """This tree's package for the version under test (the .deb's path is what .ci/package
    prints)."""
    build = [] if PG_MAJOR == 15 else ["--debug"]
    return pathlib.Path(run("bash", ROOT / ".ci/package", *build, "--pg", str(PG_MAJOR)).strip())


def check_file_list(deb):
    """The package's files are exactly the library, the scripts and the docs, where the
    postgresql-<N> packages keep theirs; returns (version, the files)."""
    assert deb.name.startswith(f"{PACKAGE}_") and deb.name.endswith("_amd64.deb"), deb.name
    version = run("dpkg-deb", "-f", deb, "Version").strip()
    assert run("dpkg-deb", "-f", deb, "Package").strip() == PACKAGE
    assert f"postgresql-{PG_MAJOR}" in run("dpkg-deb", "-f", deb, "Depends")
    # "-rw-r--r-- root/root  1234 2026-12-04 21:00 ./usr/lib/..." -> /usr/lib/...
    files = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", deb).splitlines()
             if not line.startswith("d")}
    lib, ext = (f"/{d}" for d in package_layout())
    want = {f"{lib}/unleash_webhook.so", f"{ext}/unleash_webhook.control",
            f"{ext}/unleash_webhook--{version}.sql",
            # every upgrade script in sql/ ships, so any earlier release can be updated
            *(f"{ext}/{s.name}" for s in (ROOT / "sql").glob("unleash_webhook--*--*.sql"))}
    docs = {f for f in files if f.startswith(f"/usr/share/doc/{PACKAGE}/")}
    assert f"/usr/share/doc/{PACKAGE}/queries.yaml" in docs
    assert files - docs == want, (sorted(files - docs - want), sorted(want - files))
    return version, files


def deliver_one(cluster, sink, name):
    """Through a cluster with the package's library: the extension is the package's version,
    and one event arrives. Returns (extversion, the event's id)."""
    conn = cluster.connect()
    try:
        extversion = conn.execute("SELECT extversion FROM pg_extension WHERE extname = "
                                  "'unleash_webhook'").fetchone()[0]
        create(conn, name, sink.url(f"/{name}"), ["feature-created"])
        [event_id] = insert_events(conn, [("feature-created", "default", None, name)])
        assert wait_until(lambda: [d[2] for d in deliveries(conn, name)] == ["delivered"],
                          timeout=30), deliveries(conn, name)
        [got] = sink.on(f"/{name}")
        assert f'"id":{event_id},'.encode() in got.body
        return extversion, event_id
    finally:
        conn.close()


def test_package_files_in_the_versions_tree_deliver(deb, sink):
    version, files = check_file_list(deb)
    unpacked = pathlib.Path(tempfile.mkdtemp(prefix="uw-deb-", dir=TMPDIR))
    pg = PrivatePostgres()
    c = None
    try:
        run("dpkg-deb", "-x", deb, unpacked)
        pg.overlay(unpacked)
        c = make_unleash_cluster(pgbin=pg.bin)
        extversion, event_id = deliver_one(c, sink, f"from-deb-{PG_MAJOR}")
        assert extversion == version
    finally:
        if c:
            c.destroy()
        pg.destroy()
        shutil.rmtree(unpacked, ignore_errors=True)
    report(f"{deb.name}: {len(files)} files where postgresql-{PG_MAJOR} keeps them; unpacked "
           f"into a copy of PostgreSQL {PG_MAJOR}'s tree, delivered event {event_id}")


def system_extension_files():
    """Our files in Debian's PostgreSQL 15, whoever put them there."""
    return [SYSTEM_PGBIN.parent / "lib" / "unleash_webhook.so",
            *sorted(pathlib.Path("/usr/share/postgresql/15/extension").glob("unleash_webhook*"))]


@pytest.fixture()
def system_files_restored():
    """The package replaces files of ours that were in the system's PostgreSQL before (a
    `cargo pgrx install` into it by hand): they are put back afterwards, by rename (running
    clusters keep their mapped copy)."""
    # The package is this machine's owner's business when it was there before the test: the
    # test neither replaces nor purges it.
    if installed():
        pytest.skip(f"{PACKAGE} is installed on this machine already; this test installs and "
                    "purges it, so it runs only where it is not installed (as in CI)")
    backup = pathlib.Path(tempfile.mkdtemp(prefix="uw-sysfiles-", dir=TMPDIR))
    saved = [(f, backup / f.name) for f in system_extension_files() if f.exists()]
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


@pytest.mark.skipif(PG_MAJOR != 15, reason="apt installs into Debian's PostgreSQL, which is 15")
def test_deb_installs_with_apt_delivers_and_removes_cleanly(deb, sink, system_files_restored):
    version, _ = check_file_list(deb)
    # what was there goes, so that the package's files are the ones used
    for f in system_extension_files():
        f.unlink(missing_ok=True)

    run("apt-get", "install", "-y", "-q", "--no-install-recommends", f"{deb.resolve()}")
    assert installed()
    files = [pathlib.Path(p) for p in run("dpkg-query", "-L", PACKAGE).splitlines()]
    owned = {str(p) for p in files if p.is_file()}
    assert {str(f) for f in system_extension_files()} <= owned

    c = make_unleash_cluster(pgbin=SYSTEM_PGBIN)
    try:
        extversion, event_id = deliver_one(c, sink, "from-apt")
        assert extversion == version
    finally:
        c.destroy()

    run("apt-get", "purge", "-y", "-q", PACKAGE)
    assert not installed()
    left = [str(p) for p in files if p.is_file() and p.exists()]
    assert left == [], left
    report(f"{deb.name}: installed with apt, delivered event {event_id}, purged; "
           f"{len(owned)} files, none left")
