#!/usr/bin/env bash
# Run the demo: pushes jobs and consumes them with a progress bar and a summary.
#
# With no DATABASE_URL and no REDIS_URL it needs no services at all: SQLite (a file under .demo/) and the
# database dispatcher. With DATABASE_URL (mysql://, postgres://, sqlite:///) and/or REDIS_URL set it uses
# those, starting the local MariaDB, PostgreSQL or Redis when they are down. It prints which it uses.
# Sets up what it needs first (virtualenv, database, migrations).
# Extra arguments go to `manage.py meepo_demo`, e.g. scripts/demo.sh --jobs 20000
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if [ -z "${DATABASE_URL:-}" ]; then
    mkdir -p "$ROOT/.demo"
    export DATABASE_URL="sqlite:///$ROOT/.demo/meepo-demo.sqlite3"
fi
if [ -z "${REDIS_URL:-}" ]; then
    export MEEPO_DISPATCH="${MEEPO_DISPATCH:-database}"
fi
# MEEPO_DEMO_SKIP_SETUP=1 (the tests): use $MEEPO_VENV as it is, start nothing, install nothing.
if [ -n "${MEEPO_DEMO_SKIP_SETUP:-}" ]; then
    "$VENV/bin/python" manage.py migrate -v0
    exec "$VENV/bin/python" manage.py meepo_demo "$@"
fi
case "${REDIS_URL:-}" in
    redis://127.0.0.1:6379*|redis://localhost:6379*) ensure_redis ;;
esac
case "$DATABASE_URL" in
    mysql://*|mariadb://*)
        ensure_mariadb
        db_name="$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).path.lstrip("/") or "meepo")' "$DATABASE_URL")"
        mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS \`$db_name\` CHARACTER SET utf8mb4" 2>/dev/null || true ;;
    postgres://*|postgresql://*)
        ensure_postgres
        db_name="$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).path.lstrip("/") or "meepo")' "$DATABASE_URL")"
        psql "${DATABASE_URL%/*}/postgres" -qtc "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1 \
            || psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE \"$db_name\"" ;;
esac
# The demo shares the tests' virtualenv (every driver: the test extra). mysqlclient compiles against the MySQL
# client headers; where they cannot be installed, a demo that needs no MySQL uses a virtualenv without it.
if [[ "$DATABASE_URL" == mysql* || "$DATABASE_URL" == mariadb* ]] || ensure_mysql_headers; then
    ensure_mysql_headers
    ensure_venv test
else
    say "no MySQL client headers: the demo installs without the MySQL driver"
    VENV="$ROOT/.venv-demo"
    ensure_venv_without_mysql postgres
fi
"$VENV/bin/python" manage.py migrate -v0
"$VENV/bin/python" manage.py meepo_demo "$@"
