#!/usr/bin/env bash
# Runs every test, on a fresh machine too (it calls .ci/setup first). For one PostgreSQL version:
#   1. cargo pgrx test: the pure core's #[test]s and the SQL API's #[pg_test]s, in a throwaway
#      cluster with the library preloaded;
#   2. the benchmark's smoke run;
#   3. the end-to-end suite (tests/e2e, pytest): the installed extension in real clusters,
#      delivering to real HTTP and HTTPS servers on 127.0.0.1.
#
#   bash tests/run.sh           # all of it on Debian's 15; then, on each other version (14, 16,
#                               # 17, 18), 1. and the end-to-end core (pytest -m core: Unleash's
#                               # sample events byte-identical, retry, kill -9 of the worker,
#                               # upgrade from the previous release)
#   bash tests/run.sh --pg 17   # all of it on 17 only
#
# Every version runs from its private tree (.ci/pgversions), never the system's PostgreSQL.
# Extra arguments go to every pytest run (e.g. -k kill9, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh "$@"

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

# Runs the suite on one version: $1 the version, $2 "all" or "core" (the end-to-end tests
# marked core), then pytest's arguments. Appends the version's timings to $timings.
timings=$UW_TMPDIR/timings
run_on() {
    local n=$1 scope=$2 t0 t1 t2
    shift 2
    use_pg "$n"
    t0=$(date +%s)
    local pgdata=$UW_TMPDIR/pgrx-$n
    install -d -o postgres -g postgres "$pgdata"
    # figures the Rust tests count write a line here; printed after them
    export UW_REPORTS=$UW_TMPDIR/reports-$n
    mkdir -p "$UW_REPORTS"

    echo "== PostgreSQL $n ($("$PG_CONFIG" --version)): cargo pgrx test (pure core + SQL API)"
    cargo pgrx test "pg$n" --runas postgres --pgdata "$pgdata"
    # what the hostile-input tables tried (src/tests/hostile.rs writes one line per table)
    awk -F'\t' '{ t++; c += $2; ours += $3; pg += $4; ok += $5 }
        END { if (!t) exit 1
              printf "hostile input: %d calls in %d tables: %d refused by our code with a specific " \
                     "SQLSTATE and a hint, %d refused by PostgreSQL before our code, %d accepted\n",
                     c, t, ours, pg, ok }' "$pgdata/hostile-input.tsv"
    cat "$UW_REPORTS"/*.txt
    t1=$(date +%s)

    echo "== PostgreSQL $n: installing the extension into its private tree"
    cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
    local selected=$#
    if [ "$scope" = all ]; then
        echo "== PostgreSQL $n: benchmark smoke run (seconds, debug build; the full run is bash tests/bench/run.sh)"
        cargo build --release --quiet --manifest-path tests/bench/sink/Cargo.toml
        "$VENV/bin/python" tests/bench/bench.py --quick --no-targets --sink "$CARGO_TARGET_DIR/release/uw-bench-sink"
    else
        set -- -m core "$@"
    fi

    echo "== PostgreSQL $n: end-to-end ($scope; real clusters, real HTTP)"
    local rc=0
    (cd tests/e2e && "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs "$@") || rc=$?
    # 5: no test selected, which a -k of the caller's may do to the core; without one, a failure
    if ((rc != 0)) && ! ((rc == 5 && selected)); then
        return "$rc"
    fi
    t2=$(date +%s)
    printf '%-4s %-5s  cargo pgrx test %4d s   install + end-to-end %4d s   total %4d s\n' \
        "$n" "$scope" $((t1 - t0)) $((t2 - t1)) $((t2 - t0)) >> "$timings"
}

if [ -n "$PG_GIVEN" ]; then
    run_on "$PG_GIVEN" all "${ARGS[@]}"
else
    run_on "$PG_DEFAULT" all "${ARGS[@]}"
    for n in "${PG_VERSIONS[@]}"; do
        [ "$n" = "$PG_DEFAULT" ] || run_on "$n" core "${ARGS[@]}"
    done
fi
echo "== time per PostgreSQL version"
cat "$timings"
