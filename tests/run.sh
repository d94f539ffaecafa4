#!/usr/bin/env bash
# Runs every test, on a fresh machine too (it calls .ci/setup first):
#   1. cargo pgrx test: the pure core's #[test]s and the SQL API's #[pg_test]s, in a throwaway
#      cluster with the library preloaded;
#   2. the benchmark's smoke run;
#   3. the end-to-end suite (tests/e2e, pytest): the installed extension in real clusters,
#      delivering to real HTTP and HTTPS servers on 127.0.0.1.
# Extra arguments go to pytest (e.g. -k kill9, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh

# Everything this run starts lives under one directory of its own: its clusters are stopped and
# the directory removed when the run ends, however it ends. Nothing else is touched. The path
# stays short: it holds the clusters' socket directories. Postgres refuses to run as root, so
# the clusters run as postgres, which must be able to enter it.
UW_TMPDIR=$(mktemp -d /tmp/uw-run.XXXXXX)
export UW_TMPDIR
chmod 755 "$UW_TMPDIR"
stop_ours() {
    # SIGQUIT is an immediate shutdown, whichever PostgreSQL version the cluster runs
    find "$UW_TMPDIR" -name postmaster.pid 2>/dev/null | while read -r pidfile; do
        kill -QUIT "$(head -1 "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$UW_TMPDIR"
}
trap stop_ours EXIT
pgdata=$UW_TMPDIR/pgrx
install -d -o postgres -g postgres "$pgdata"
# figures the Rust tests count write a line here; printed after them
export UW_REPORTS=$UW_TMPDIR/reports
mkdir -p "$UW_REPORTS"

echo "== cargo pgrx test (pure core + SQL API)"
cargo pgrx test pg15 --runas postgres --pgdata "$pgdata"
# what the hostile-input tables tried (src/tests/hostile.rs writes one line per table)
awk -F'\t' '{ t++; c += $2; ours += $3; pg += $4; ok += $5 }
    END { if (!t) exit 1
          printf "hostile input: %d calls in %d tables: %d refused by our code with a specific " \
                 "SQLSTATE and a hint, %d refused by PostgreSQL before our code, %d accepted\n",
                 c, t, ours, pg, ok }' "$pgdata/hostile-input.tsv"
cat "$UW_REPORTS"/*.txt

echo "== installing the extension into the system PostgreSQL"
cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null

echo "== benchmark smoke run (seconds, debug build; the full run is bash tests/bench/run.sh)"
cargo build --release --quiet --manifest-path tests/bench/sink/Cargo.toml
"$VENV/bin/python" tests/bench/bench.py --quick --no-targets --sink "$CARGO_TARGET_DIR/release/uw-bench-sink"

echo "== end-to-end (real clusters, real HTTP)"
cd tests/e2e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs "$@"
