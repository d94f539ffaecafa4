#!/usr/bin/env bash
# Runs the extension for real, on a fresh machine too: builds and installs it, starts a
# throwaway cluster with the library preloaded, loads Unleash's events table and six real
# Unleash events, and shows what was queued and what a local HTTP endpoint received.
#   bash tests/demo.sh           # on Debian's PostgreSQL 15
#   bash tests/demo.sh --pg 17   # on another version (14-18)
# It runs from the version's private tree (.ci/pgversions), never the system's PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/env.sh "$@"
echo "== building and installing unleash_webhook into a private PostgreSQL $PG_MAJOR ($PG_CONFIG)"
cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null
cd tests/e2e
exec "$VENV/bin/python" demo.py
