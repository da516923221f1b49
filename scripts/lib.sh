# Shared set-up for scripts/test.sh, scripts/demo.sh and .ci/run: sourced, not run.
# Everything here is idempotent: on a machine that has it all, it only checks.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEEPO_VENV:-$ROOT/.venv}"
PYTHON="${MEEPO_PYTHON:-python3}"
# The second test run: the newest Django 6.x (native django.tasks) on Python >= 3.12.
DJ6_VENV="${MEEPO_DJ6_VENV:-$ROOT/.venv-dj6}"
DJ6_SPEC="${MEEPO_DJ6_SPEC:-Django>=6.0,<7}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() {
    command -v apt-get >/dev/null || { say "apt-get not found: install $* yourself"; return 1; }
    if [ -z "${MEEPO_APT_UPDATED:-}" ]; then as_root apt-get update -qq >/dev/null; export MEEPO_APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_mysql_headers() {
    # mysqlclient compiles against the MySQL client headers.
    if ! pkg-config --exists mysqlclient 2>/dev/null; then
        say "installing the MySQL client headers (default-libmysqlclient-dev, pkg-config)"
        apt_install default-libmysqlclient-dev pkg-config build-essential
    fi
}

ensure_chromium() {
    # The admin's end-to-end test drives Debian's headless Chromium; the browser is never downloaded.
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return 0; fi
    say "installing Chromium and its driver (chromium, chromium-driver)"
    apt_install chromium chromium-driver
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.2; done
    say "Redis did not start"; return 1
}

ensure_mariadb() {
    if mariadb-admin ping >/dev/null 2>&1 || mysqladmin ping >/dev/null 2>&1; then return 0; fi
    say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do mariadb-admin ping >/dev/null 2>&1 && return 0; sleep 0.5; done
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
    for _ in $(seq 1 60); do mariadb-admin ping >/dev/null 2>&1 && return 0; sleep 0.5; done
    say "MariaDB did not start"; return 1
}

ensure_postgres() {
    if pg_isready -q 2>/dev/null; then return 0; fi
    command -v pg_ctlcluster >/dev/null || return 0
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q && return 0; sleep 0.5; done
}

python_is_312_or_newer() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python_for_django6() {
    # Prints a Python >= 3.12 (Django 6 needs it): MEEPO_DJ6_PYTHON, python3.12 on PATH, a pyenv 3.12,
    # any newer python3, else Debian's python3 after installing it.
    if [ -n "${MEEPO_DJ6_PYTHON:-}" ]; then echo "$MEEPO_DJ6_PYTHON"; return 0; fi
    local candidate
    for candidate in python3.12 "$(command -v pyenv >/dev/null && pyenv root)"/versions/3.12*/bin/python3.12 \
                     python3.13 python3.14 python3 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_is_312_or_newer "$candidate"; then
            command -v "$candidate"; return 0
        fi
    done
    say "no Python >= 3.12 found: installing Debian's python3 and python3-venv"
    apt_install python3 python3-venv python3-dev >&2 || return 1
    python_is_312_or_newer /usr/bin/python3 && { echo /usr/bin/python3; return 0; }
    say "no Python >= 3.12 available for the Django 6 run"; return 1
}

make_venv() {
    # $PYTHON -m venv $VENV; Debian and Ubuntu ship venv (ensurepip) apart from the interpreter.
    "$PYTHON" -m venv "$VENV" 2>/dev/null && return
    rm -rf "$VENV"
    local version
    version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    say "installing python3-venv (python$version-venv)"
    apt_install "python$version-venv" || apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
}

ensure_venv() {
    # ensure_venv EXTRAS [DJANGO_SPEC]
    local extras="$1" django_spec="${2:-}"
    local stamp="$VENV/.meepo-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)-$extras-$django_spec"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtualenv $VENV ($("$PYTHON" --version))"
        make_venv
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing django-meepo[$extras] ${django_spec}"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        if [ -n "$django_spec" ]; then
            "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]" "$django_spec"
        else
            "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
        fi
        echo "$want" > "$stamp"
    fi
}

ensure_venv_without_mysql() {
    # ensure_venv_without_mysql EXTRAS: django-meepo and its dependencies but mysqlclient, for a demo on a
    # machine where the MySQL client headers cannot be installed (SQLite or PostgreSQL need no mysqlclient).
    local extras="$1" stamp="$VENV/.meepo-installed"
    local want
    want="$(sha1sum < "$ROOT/pyproject.toml" | cut -c1-12)-nomysql-$extras"
    [ -x "$VENV/bin/python" ] || make_venv
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing django-meepo[$extras] without mysqlclient"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        mapfile -t deps < <("$PYTHON" - "$ROOT/pyproject.toml" "$extras" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
wanted = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    wanted += project["optional-dependencies"][extra]
print("\n".join(d for d in wanted if not d.lower().startswith("mysqlclient")))
PY
)
        "$VENV/bin/python" -m pip install -q "${deps[@]}"
        "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"
        echo "$want" > "$stamp"
    fi
}
