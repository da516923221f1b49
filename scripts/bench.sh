#!/usr/bin/env bash
# Run the benchmark of issue 6 (docs/benchmarks.md): django-meepo beside Celery, RQ, Dramatiq, Huey and
# django-tasks-db, on the same machine, in the same run. Sets up what it needs first: MySQL client headers,
# MariaDB and Redis (started when down, never stopped or flushed), a virtualenv of its own (.venv-bench, with
# the bench extra) and redis-server for the flush workload. The harness creates and migrates its databases
# (bench_meepo, bench_dtdb) itself.
# Extra arguments go to `python -m bench`, e.g. scripts/bench.sh --quick, or scripts/bench.sh --json out.json
set -euo pipefail
export MEEPO_VENV="${MEEPO_BENCH_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv-bench}"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_mysql_headers
ensure_mariadb
ensure_redis
command -v redis-server >/dev/null || apt_install redis-server
ensure_venv bench
exec "$VENV/bin/python" -m bench "$@"
