#!/usr/bin/env bash
# Run the demo: pushes jobs and consumes them with a progress bar and a summary.
# Sets up what it needs first (MySQL headers, services, virtualenv, database, migrations).
# Extra arguments go to `manage.py meepo_demo`, e.g. scripts/demo.sh --jobs 20000
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_mysql_headers
ensure_mariadb
ensure_redis
ensure_venv test
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS meepo CHARACTER SET utf8mb4" 2>/dev/null || true
"$VENV/bin/python" manage.py migrate -v0
"$VENV/bin/python" manage.py meepo_demo "$@"
