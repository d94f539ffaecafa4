# Sourced by tests/run.sh, tests/demo.sh and tests/bench/run.sh with their arguments: installs
# what is missing (.ci/setup, idempotent) and sets the shared environment. Run from the
# repository root.
#
# `--pg N` among the arguments picks the PostgreSQL version (default: Debian's 15); the other
# arguments are left in ARGS. `use_pg N` points PG_CONFIG (and UW_PG_CONFIG, which the Python
# harness reads) at version N's private tree (.ci/pgversions): builds install there, clusters
# run from there, never from the system's PostgreSQL.
source .ci/pgversions
ARGS=()
PG_GIVEN=
while (($#)); do
    case $1 in
        --pg) PG_GIVEN=${2:?--pg needs a version}; shift 2 ;;
        --pg=*) PG_GIVEN=${1#--pg=}; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
pg_config_of "${PG_GIVEN:-$PG_DEFAULT}" >/dev/null || exit 2

bash .ci/setup
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/unleash_webhook-target}
VENV=${UW_VENV:-/var/tmp/unleash_webhook-venv}
# the signing test verifies our signatures with the standardwebhooks package in this venv
export UW_PYTHON=${UW_PYTHON:-$VENV/bin/python}

use_pg() {
    PG_MAJOR=$1
    PG_CONFIG=$(pg_config_of "$1")
    export UW_PG_CONFIG=$PG_CONFIG
}
use_pg "${PG_GIVEN:-$PG_DEFAULT}"
