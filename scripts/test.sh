#!/usr/bin/env bash
# Run the test suite: sets up everything it needs (MySQL headers, services, virtualenv), then ruff and pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_mysql_headers
ensure_mariadb
ensure_redis
ensure_chromium
ensure_venv test

say "ruff"
"$VENV/bin/ruff" check django_meepo testproject tests bench
say "pytest ($("$VENV/bin/python" -c 'import django, sys; print(f"Django {django.__version__}, Python {sys.version.split()[0]}")'))"
"$VENV/bin/python" -m pytest "$@"
