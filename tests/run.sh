#!/usr/bin/env bash
# Runs every test, on a fresh machine too (it calls .ci/setup first):
#   1. cargo pgrx test: the pure core's #[test]s and the SQL API's #[pg_test]s, in a throwaway
#      cluster with the library preloaded;
#   2. the end-to-end suite (tests/e2e, pytest): the installed extension in real clusters,
#      delivering to real HTTP and HTTPS servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh

# Postgres refuses to run as root: pgrx's test cluster runs as postgres in a directory it owns.
# Keep the path short: it becomes the socket directory.
pgdata=/tmp/uw-pgrx
stop_leftovers() {
    for d in "$pgdata"/15-* /tmp/uw-*/data; do
        [ -f "$d/postmaster.pid" ] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl \
            -D "$d" -m immediate stop >/dev/null 2>&1 || true
    done
}
trap stop_leftovers EXIT
stop_leftovers
install -d -o postgres -g postgres "$pgdata"

echo "== cargo pgrx test (pure core + SQL API)"
cargo pgrx test pg15 --runas postgres --pgdata "$pgdata"

echo "== installing the extension into the system PostgreSQL"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null

echo "== benchmark smoke run (seconds, debug build; the full run is bash tests/bench/run.sh)"
cargo build --release --quiet --manifest-path tests/bench/sink/Cargo.toml
"$VENV/bin/python" tests/bench/bench.py --quick --sink "$CARGO_TARGET_DIR/release/uw-bench-sink"

echo "== end-to-end (real clusters, real HTTP)"
cd tests/e2e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
