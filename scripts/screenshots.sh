#!/usr/bin/env bash
# Take the admin screenshots of docs/screenshots/ with the headless Chromium the tests use.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_mysql_headers
ensure_mariadb
ensure_redis
ensure_chromium
ensure_venv test
MEEPO_SCREENSHOTS_DIR="$ROOT/docs/screenshots" "$VENV/bin/python" -m pytest tests/admin/test_screenshots.py -q "$@"
