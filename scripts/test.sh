#!/usr/bin/env bash
# Run the test suite: sets up everything it needs (MySQL headers, services, virtualenvs), then ruff, mypy and pytest,
# for two Django versions: in .venv (Python 3.11, Django 5.2 with the django-tasks backport), then in .venv-dj6
# (Python >= 3.12, the newest Django 6.x with django.tasks). MEEPO_DJANGO=5.2 or MEEPO_DJANGO=6 runs only one.
#
# With no arguments and no DATABASE_URL: the whole suite on MariaDB, and beside it the contract, integration,
# acceptance and admin tests on PostgreSQL and on SQLite, the three side by side (MEEPO_TEST_DATABASES="mariadb
# postgres sqlite" picks which; MEEPO_TEST_PARALLEL=0 runs them one after the other).
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

sqlite_dir="$(mktemp -d "${TMPDIR:-/tmp}/meepo-test-sqlite.XXXXXX")"
trap 'rm -rf "$sqlite_dir"' EXIT

run_suite() {
    # The suite in $VENV: on one database when given arguments or DATABASE_URL, else on every database.
    local versions status=0
    versions="$("$VENV/bin/python" -c 'import django, sys; print(f"Django {django.__version__}, Python {sys.version.split()[0]}")')"
    if [ $# -gt 0 ] || [ -n "${DATABASE_URL:-}" ]; then
        say "pytest on ${DATABASE_URL:-MariaDB} ($versions)"
        "$VENV/bin/python" -m pytest "$@"
        return
    fi
    # The suite beside MariaDB: everything that depends on the database (unit tests need none). The databases
    # run side by side (each test run has its own database names, Redis prefix and ports), which halves the wall
    # time on a 2-core machine, since the tests mostly wait on workers and servers; MEEPO_TEST_PARALLEL=0 runs
    # them one after the other. Each run's output is printed whole when it ends.
    local portable=(tests/contract tests/integration tests/acceptance tests/admin)
    local db url logs pid finished
    local -A pids=() started=()
    logs="$(mktemp -d "${TMPDIR:-/tmp}/meepo-test-logs.XXXXXX")"
    for db in ${MEEPO_TEST_DATABASES:-mariadb postgres sqlite}; do
        local paths=()
        case "$db" in
            mariadb) url="mysql://root@127.0.0.1:3306/meepo" ;;
            postgres) url="postgres://postgres@127.0.0.1:5432/meepo"; paths=("${portable[@]}") ;;
            sqlite) url="sqlite:///$sqlite_dir/meepo.sqlite3"; paths=("${portable[@]}") ;;
            *) say "MEEPO_TEST_DATABASES: unknown database $db (mariadb, postgres, sqlite)"; exit 2 ;;
        esac
        say "pytest on $db ($versions)"
        started[$db]=$SECONDS
        if [ "${MEEPO_TEST_PARALLEL:-1}" = 0 ]; then
            DATABASE_URL="$url" "$VENV/bin/python" -m pytest "${paths[@]}" || status=1
            say "pytest on $db ($versions) took $((SECONDS - started[$db])) s; $SECONDS s since the start"
            continue
        fi
        DATABASE_URL="$url" "$VENV/bin/python" -m pytest "${paths[@]}" > "$logs/$db.log" 2>&1 &
        pids[$db]=$!
    done
    while [ ${#pids[@]} -gt 0 ]; do
        finished=""
        wait -n -p pid "${pids[@]}" || status=1
        for db in "${!pids[@]}"; do
            if [ "${pids[$db]}" = "$pid" ]; then finished="$db"; fi
        done
        unset "pids[$finished]"
        say "pytest on $finished ($versions) took $((SECONDS - started[$finished])) s; $SECONDS s since the start"
        cat "$logs/$finished.log"
    done
    rm -rf "$logs"
    return $status
}

ruff() { say "ruff"; "$VENV/bin/ruff" check django_meepo testproject tests bench; }
typecheck() { say "mypy"; "$VENV/bin/mypy"; }  # the files and strictness are in pyproject.toml

which="${MEEPO_DJANGO:-both}"
failed=()
if [ "$which" != 6 ]; then
    ensure_venv test
    ruff
    typecheck
    run_suite "$@" || failed+=("Django 5.2")
fi
if [ "$which" != 5.2 ]; then
    VENV="$DJ6_VENV"
    PYTHON="$(find_python_for_django6)"
    ensure_venv test "$DJ6_SPEC"
    if [ "$which" = 6 ]; then ruff; fi
    run_suite "$@" || failed+=("Django 6")
fi
if [ ${#failed[@]} -gt 0 ]; then
    say "the test suite failed on: ${failed[*]} ($SECONDS s)"
    exit 1
fi
say "the test suite passed in $SECONDS s"
