#!/usr/bin/env bash
# The benchmark: `bash tests/bench/run.sh` (full, about a minute) or `--quick` (seconds, CI).
# Installs the release build of the extension into the system PostgreSQL first.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/setup
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/unleash_webhook-target}
export UNLEASH_SHARED=${UNLEASH_SHARED:-$(cd .. && pwd)/shared}
VENV=${UW_VENV:-/var/tmp/unleash_webhook-venv}
cargo pgrx install --release --pg-config /usr/lib/postgresql/15/bin/pg_config >/dev/null
cargo build --release --quiet --manifest-path tests/bench/sink/Cargo.toml
"$VENV/bin/python" tests/bench/bench.py --sink "$CARGO_TARGET_DIR/release/uw-bench-sink" "$@"
