# Sourced by tests/run.sh, tests/demo.sh and tests/bench/run.sh: installs what is missing
# (.ci/setup, idempotent) and sets the shared environment. Run from the repository root.
bash .ci/setup
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/unleash_webhook-target}
VENV=${UW_VENV:-/var/tmp/unleash_webhook-venv}
# the signing test verifies our signatures with the standardwebhooks package in this venv
export UW_PYTHON=${UW_PYTHON:-$VENV/bin/python}
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
