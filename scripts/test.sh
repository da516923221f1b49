#!/usr/bin/env bash
# Run the test suite: sets up everything it needs (MySQL headers, services, virtualenv), then ruff and pytest.
#
# With no arguments and no DATABASE_URL: the whole suite on MariaDB, then the contract, integration,
# acceptance and admin tests on PostgreSQL and on SQLite (MEEPO_TEST_DATABASES="mariadb postgres sqlite" picks
# which).
# With DATABASE_URL set, the whole suite on that database only.
# Extra arguments go to pytest and run on one database (DATABASE_URL, default MariaDB),
# e.g. scripts/test.sh tests/unit -x
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_mysql_headers
ensure_mariadb
ensure_postgres
ensure_redis
ensure_chromium
ensure_venv test

say "ruff"
"$VENV/bin/ruff" check django_meepo testproject tests bench
versions="$("$VENV/bin/python" -c 'import django, sys; print(f"Django {django.__version__}, Python {sys.version.split()[0]}")')"

if [ $# -gt 0 ] || [ -n "${DATABASE_URL:-}" ]; then
    say "pytest on ${DATABASE_URL:-MariaDB} ($versions)"
    exec "$VENV/bin/python" -m pytest "$@"
fi

# The suite beside MariaDB: everything that depends on the database (unit tests need none).
portable=(tests/contract tests/integration tests/acceptance tests/admin)
sqlite_dir="$(mktemp -d "${TMPDIR:-/tmp}/meepo-test-sqlite.XXXXXX")"
trap 'rm -rf "$sqlite_dir"' EXIT
for db in ${MEEPO_TEST_DATABASES:-mariadb postgres sqlite}; do
    case "$db" in
        mariadb) url="mysql://root@127.0.0.1:3306/meepo"; paths=() ;;
        postgres) url="postgres://postgres@127.0.0.1:5432/meepo"; paths=("${portable[@]}") ;;
        sqlite) url="sqlite:///$sqlite_dir/meepo.sqlite3"; paths=("${portable[@]}") ;;
        *) say "MEEPO_TEST_DATABASES: unknown database $db (mariadb, postgres, sqlite)"; exit 2 ;;
    esac
    say "pytest on $db ($versions)"
    DATABASE_URL="$url" "$VENV/bin/python" -m pytest "${paths[@]}"
done
