"""README.md's "Use it", followed literally by a new user: a fresh virtualenv, ``pip install`` of this checkout
(where the README names PyPI), ``django-admin startproject``, the README's settings and files, ``migrate``, a
pushed job that ``meepo_consume`` runs to done, ``meepo_sweep`` starting, ``meepo_stats``.

The steps are read from the README (tests/support/readme.py), not copied: when the README changes, this test
follows it, and a step that no longer works fails here. The only departures, each named where it is made: the
system packages are not installed (the machine has them), the package comes from this checkout instead of PyPI,
the Redis key prefix the README advises on a shared Redis is set, and long-running commands are stopped by
SIGTERM (as the README says) once they did their part.

It is slow (a pip install into an empty virtualenv; pip's own cache keeps the built wheels, so later runs reuse
them), so it runs once per suite: on MariaDB with Django 5.2 (scripts/test.sh's first pass), skipped on the
other databases and on Django 6 — the new project it makes uses startproject's own SQLite database either way.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import django
import pytest
import redis
from django.db import connection

from tests.support import readme
from tests.support.checkout import clean_checkout
from tests.support.services import free_port, wait_until
from tests.support.workers import ROOT

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 900  # seconds: a cold pip cache compiles mysqlclient
COMMAND_TIMEOUT = 120
SYSTEM_PACKAGES = ("sudo ", "brew ", "export ")  # the README's prerequisites: this machine has them
LONG_RUNNING = ("meepo_consume", "meepo_sweep")


class NewUser:
    """A shell of a new user: a fresh virtualenv first on PATH, in an empty project directory."""

    def __init__(self, home: Path, checkout: Path) -> None:
        self.project = home / "project"
        self.project.mkdir()
        self.venv = home / "venv"
        self.checkout = checkout
        self.prefix = f"readme-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH")
                    and not k.startswith("MEEPO_")}
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.log: list[str] = []
        self.redis_urls: list[str] = []  # the Redis LOCATIONs the README's settings name
        self.tasks: list[str] = []  # the tasks the README's files declare

    def argv(self, command: str) -> list[str]:
        """The README's command as this user runs it: ``pip install django-meepo`` installs this checkout."""
        words = command.split()
        if words[:3] == ["pip", "install", "django-meepo"]:
            return [str(self.venv / "bin" / "python"), "-m", "pip", "install", str(self.checkout)]
        if words[0] == "python":
            words[0] = str(self.venv / "bin" / "python")
        return words

    def run(self, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
        result = subprocess.run(argv, cwd=self.project, env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        self.log.append(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, "\n".join(self.log)
        return result.stdout

    def start(self, argv: list[str], out: Path) -> subprocess.Popen[bytes]:
        handle = out.open("wb")
        # Ctrl-C as at a terminal: a test run started in the background by a shell (scripts/test.sh runs the
        # databases side by side) inherits SIGINT ignored, and runserver would then never hear it.
        return subprocess.Popen(argv, cwd=self.project, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def write_files(self, files: dict[str, str]) -> None:
        """The README's ``# path`` files: settings lines are appended to startproject's, other files written."""
        for path, body in files.items():
            target = self.project / path
            assert target.parent.is_dir(), f"the README writes {path}, but the new project has no {target.parent}"
            if target.name == "settings.py":
                assert target.is_file(), f"the README edits {path}, which the new project does not have"
                # The README's own advice for a shared Redis (this machine's is shared by other test runs).
                extra = f'MEEPO["KEY_PREFIX"] = "{self.prefix}"\n' if '"KEY_PREFIX"' in body else ""
                self.redis_urls += re.findall(r'"LOCATION": "(redis://[^"]+)"', body)
                target.write_text(target.read_text() + "\n" + readme.settings_lines(body) + extra)
            else:
                target.write_text(body)
                self.tasks += re.findall(r'^@task\("([^"]+)"', body, re.M)

    def job_status(self, job_id: str) -> str:
        out = self.run([str(self.venv / "bin" / "python"), "manage.py", "meepo_stats", "--job", job_id, "--json"])
        return str(json.loads(out.splitlines()[-1])["status"])


def _runs_here() -> None:
    if connection.vendor != "mysql" or django.VERSION[:2] != (5, 2):
        pytest.skip("slow (a fresh pip install): runs once, on MariaDB with Django 5.2")


def _stop(process: subprocess.Popen[bytes], out: Path, how: signal.Signals = signal.SIGTERM) -> str:
    """Stop a long-running command the way the README says (SIGTERM for workers, Ctrl-C for runserver)."""
    process.send_signal(how)
    code = process.wait(timeout=60)
    text = out.read_text(errors="replace")
    assert code == 0, f"exit code {code}:\n{text}"
    return text


def test_the_readme_use_it_works_in_a_new_project(tmp_path: Path) -> None:
    _runs_here()
    user = NewUser(tmp_path, clean_checkout(tmp_path / "checkout"))
    user.run([sys.executable, "-m", "venv", str(user.venv)])
    text = readme.section(ROOT / "README.md")
    job_ids: list[str] = []
    ran: list[str] = []
    try:
        for block in readme.blocks(text):
            if block.language == "python":
                files = readme.files(block)
                if files:
                    user.write_files(files)
                    ran.append("files " + ", ".join(files))
                else:  # the push snippet names the user's own model; the README gives its shell form
                    for argv in readme.inline_commands(text, "python manage.py meepo_push"):
                        job_ids.append(user.run(user.argv(" ".join(argv[:3])) + argv[3:]).strip().splitlines()[-1])
                        ran.append(" ".join(argv))
                continue
            for command in block.commands():
                if command.startswith(SYSTEM_PACKAGES):
                    continue
                _step(user, command, job_ids, tmp_path)
                ran.append(command)
        ran += _admin(user, text, tmp_path)
    finally:
        _forget_keys(user)
    assert any(c.startswith("pip install") for c in ran), ran
    assert any(c.startswith("django-admin startproject") for c in ran), ran
    assert any("migrate" in c for c in ran), ran
    assert any("meepo_consume" in c for c in ran) and any("meepo_sweep" in c for c in ran), ran
    assert job_ids, f"the README's Use it pushed no job: {ran}"
    assert user.tasks, "the README's files declare no task"


def _step(user: NewUser, command: str, job_ids: list[str], tmp: Path) -> None:
    argv = user.argv(command)
    name = next((n for n in LONG_RUNNING if n in argv), None)
    if "--watch" in argv:  # a refreshing view: one refresh is enough to read it
        argv += ["--iterations", "1"]
        out = user.run(argv)
        for task in user.tasks:
            assert re.search(rf"^{re.escape(task)}\s", out, re.M), out
        return
    if name is None or "--once" in argv:
        user.run(argv, timeout=INSTALL_TIMEOUT if argv[1:4] == ["-m", "pip", "install"] else COMMAND_TIMEOUT)
        return
    out = tmp / f"{name}.log"
    process = user.start(argv, out)
    try:
        if name == "meepo_consume":
            assert job_ids, "meepo_consume runs before any job was pushed"
            for job_id in job_ids:
                wait_until(lambda job_id=job_id: user.job_status(job_id) == "done", timeout=90, interval=0.5,
                           message=f"job {job_id} done")
        else:
            wait_until(lambda: _sweeping(out, user.tasks), timeout=60, message="the sweeper started")
            time.sleep(1)  # a sweep or two: it must still be running, not have died after its first line
            assert process.poll() is None, out.read_text(errors="replace")
    finally:
        if process.poll() is None:
            text = _stop(process, out)
            user.log.append(f"$ {' '.join(argv)}\n{text}")


def _sweeping(out: Path, tasks: list[str]) -> bool:
    """The sweeper's start line (``meepo: sweeper <id> sweeping a, b``) names every task."""
    for line in out.read_text(errors="replace").splitlines():
        if " sweeping " in line:
            return set(tasks) <= set(line.split(" sweeping ", 1)[1].split(", "))
    return False


def _admin(user: NewUser, text: str, tmp: Path) -> list[str]:
    """The README's admin paragraph: createsuperuser, runserver, then its admin page, logged in, lists the job
    and loads django-meepo's stylesheet (templates and static files are in the installed package)."""
    commands = {argv[2]: argv for argv in readme.inline_commands(text, "python manage.py ")}
    pages = [span for span in readme.INLINE.findall(text) if span.startswith("/admin/")]
    assert {"createsuperuser", "runserver"} <= set(commands) and pages, (commands, pages)
    user.env.update(DJANGO_SUPERUSER_USERNAME="newuser", DJANGO_SUPERUSER_PASSWORD="a-new-users-password",
                    DJANGO_SUPERUSER_EMAIL="newuser@example.com")
    user.run([*user.argv(" ".join(commands["createsuperuser"])), "--noinput"])  # its prompts, from the env
    port = free_port()
    out = tmp / "runserver.log"
    server = user.start([*user.argv(" ".join(commands["runserver"])), f"127.0.0.1:{port}", "--noreload"], out)
    try:
        browser = Browser(f"http://127.0.0.1:{port}", lambda: out.read_text(errors="replace"))
        browser.log_in("newuser", "a-new-users-password")
        for page in pages:
            html = browser.get(page)
            assert all(task in html for task in user.tasks), html
            sheet = re.search(r'href="(/static/django_meepo/[^"]+\.css)"', html)
            assert sheet, f"{page} links no django-meepo stylesheet:\n{html}"
            assert ".meepo-status" in browser.get(sheet.group(1)), f"{sheet.group(1)} is not django-meepo's sheet"
    finally:
        _stop(server, out, signal.SIGINT)  # "Quit the server with CONTROL-C"
    return [" ".join(commands["createsuperuser"]), " ".join(commands["runserver"]), *pages]


class Browser:
    """Just enough of a browser for Django's admin: cookies, the login form's CSRF token, status checks."""

    def __init__(self, base: str, server_log: Callable[[], str]) -> None:
        self.base = base
        self.server_log = server_log
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.last_status = 0
        wait_until(self._up, timeout=60, interval=0.2, message=f"runserver answering at {base}")

    def _up(self) -> bool:
        try:
            self.opener.open(f"{self.base}/admin/login/", timeout=5).close()
            return True
        except OSError:
            return False

    def get(self, path: str, data: dict[str, str] | None = None) -> str:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(f"{self.base}{path}", data=body, timeout=30) as response:
                self.last_status = response.status
                return str(response.read().decode())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path}: HTTP {exc.code}\n{exc.read().decode(errors='replace')}\n"
                                 f"{self.server_log()}") from exc

    def log_in(self, username: str, password: str) -> None:
        form = self.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token, form
        page = self.get("/admin/login/?next=/admin/", {"csrfmiddlewaretoken": token.group(1),
                                                      "username": username, "password": password,
                                                      "next": "/admin/"})
        assert "Log out" in page or "logout" in page, page


def _forget_keys(user: NewUser) -> None:
    """Delete the new project's keys (under its own prefix) from the Redis databases the README names."""
    for url in user.redis_urls:
        try:
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"*{user.prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
