#!/usr/bin/env bash
# The benchmark: `bash tests/bench/run.sh` (full, about two minutes) or `--quick` (seconds, CI);
# `--pg N` runs it on PostgreSQL N (default Debian's 15). Installs the release build of the
# extension into that version's private tree (.ci/pgversions) first.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/env.sh "$@"
# the arguments but --pg N, for bench.py
set -- "${ARGS[@]}"
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
cargo build --release --quiet --manifest-path tests/bench/sink/Cargo.toml
"$VENV/bin/python" -u tests/bench/bench.py --sink "$CARGO_TARGET_DIR/release/uw-bench-sink" "$@"
