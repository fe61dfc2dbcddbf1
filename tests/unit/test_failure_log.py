"""Why a deploy failed, in one line: the cause picked from real log tails, and the applier carrying it."""

from __future__ import annotations

import json

import pytest

from deployer.core.failure_log import cause_line, explain, log_command, tail, with_response
from deployer.run.apply import StepRunner
from tests import factories as f
from tests.unit.test_hooks_apply import FakeRemote
from tests.unit.test_plan import converged
from tests.unit.test_hooks_pure import plans_for
from deployer.config.model import Hook, Hooks

GUNICORN_23 = """\
Started shop.service - shop (gunicorn).
usage: gunicorn [OPTIONS] [APP_MODULE]
gunicorn: error: unrecognized arguments: --no-control-socket
shop.service: Main process exited, code=exited, status=2/INVALIDARGUMENT
shop.service: Failed with result 'exit-code'.
"""
HOOK_REDIS = """\
Traceback (most recent call last):
  File "/srv/shop/releases/r1/.venv/lib/python3.11/site-packages/flask/cli.py", line 245, in locate_app
    __import__(module_name)
  File "/srv/shop/releases/r1/app.py", line 3, in <module>
    import redis
  File "/srv/shop/releases/r1/.venv/lib/python3.11/site-packages/redis/__init__.py", line 1, in <module>
    from redis import asyncio
  File "/srv/shop/releases/r1/.venv/lib/python3.11/site-packages/redis/asyncio/client.py", line 3, in <module>
    import async_timeout
ModuleNotFoundError: No module named 'async_timeout'
Usage: flask [OPTIONS] COMMAND [ARGS]...
Try 'flask --help' for help.

Error: No such command 'db'.
"""
APACHE = """\
[Wed Dec 02 14:00:01.000001 2026] [mpm_event:notice] [pid 10:tid 10] AH00489: Apache/2.4.62 (Debian) configured
[Wed Dec 02 14:00:02.000002 2026] [wsgi:error] [pid 12:tid 20] [remote 127.0.0.1:5000] Traceback (most recent call last):
[Wed Dec 02 14:00:02.000003 2026] [wsgi:error] [pid 12:tid 20] [remote 127.0.0.1:5000]   File "/etc/shop/wsgi/deployer_wsgi.py", line 180, in <module>
[Wed Dec 02 14:00:02.000004 2026] [wsgi:error] [pid 12:tid 20] [remote 127.0.0.1:5000]     os.environ[name] = value
[Wed Dec 02 14:00:02.000005 2026] [wsgi:error] [pid 12:tid 20] [remote 127.0.0.1:5000] UnicodeEncodeError: 'ascii' codec can't encode character '\\xfc' in position 3
"""
READ_ONLY = "PermissionError: [Errno 30] Read-only file system: '/srv/shop/current/cache'\n"
PLAIN_TRACEBACK = "Traceback (most recent call last):\n  File \"app.py\", line 1\n    boom()\nmyapp.errors.ConfigError: DATABASE_URL is not set\n"


@pytest.mark.parametrize(("text", "cause"), [
    (GUNICORN_23, "gunicorn: error: unrecognized arguments: --no-control-socket"),
    (HOOK_REDIS, "ModuleNotFoundError: No module named 'async_timeout'"),
    (APACHE, "UnicodeEncodeError: 'ascii' codec can't encode character '\\xfc' in position 3"),
    (READ_ONLY, READ_ONLY.strip()),
    (PLAIN_TRACEBACK, "myapp.errors.ConfigError: DATABASE_URL is not set"),
    ("Error: No such command 'db'.\n", "Error: No such command 'db'."),
    (HOOK_REDIS + "[2026-12-02 14:35:01 +0000] [7] [ERROR] No module named 'async_timeout'\n",
     "ModuleNotFoundError: No module named 'async_timeout'"),
    ("all is well\nstill fine\n", None),
    ("", None),
])
def test_cause_line(text, cause):
    assert cause_line(tail(text, 200)) == cause


def test_the_cause_is_searched_above_the_tail_and_the_lines_kept_end_with_it():
    """gunicorn's arbiter prints its own traceback after the worker's: the tail alone would miss the cause."""
    text = HOOK_REDIS + "".join(f"noise {i}\n" for i in range(30))
    log = explain("output of hook", text)
    assert log.cause == "ModuleNotFoundError: No module named 'async_timeout'"
    assert len(log.lines) <= 20 and log.lines[-1].endswith(log.cause) and "noise 0" not in log.lines


def test_a_cause_inside_the_tail_keeps_the_last_lines():
    text = "".join(f"noise {i}\n" for i in range(30)) + HOOK_REDIS
    log = explain("output of hook", text)
    assert len(log.lines) == 20 and log.lines[-1] == tail(HOOK_REDIS)[-1]


def test_which_log():
    gunicorn = f.host()
    journal = log_command(f.app(), gunicorn)
    assert journal[:2] == ("sh", "-c") and "journalctl --sync" in journal[2] and journal[4:6] == ("--no-pager", "--quiet")
    assert "--unit=hello.service" in journal and "--unit=hello.socket" not in journal
    mod_wsgi = log_command(f.app(), f.host(server="mod_wsgi", proxy="apache"))
    assert mod_wsgi[-1] == "/var/log/apache2/error.log"


def test_a_5xx_body_line_is_the_cause_when_the_log_names_none():
    log = with_response(explain("journal of hello.service", "GET /healthz 500\n"), "HTTP 500: <p>database is locked</p>\n")
    assert log.cause == "HTTP 500: <p>database is locked</p>" and log.lines[-1] == "health: HTTP 500: <p>database is locked</p>"


def _applier(fails, hooks=Hooks()):
    inv, plans = plans_for("web1", hooks=hooks)
    remote = FakeRemote(inv.host("web1"), fails)
    remote.secrets = ()
    ctx, steps = f.deploy_steps_of(inv, plans["web1"], converged(inv, inv.host("web1")))
    return StepRunner(remote, ctx, steps), remote


def test_a_unit_that_does_not_start_says_why_in_the_error_and_in_json():
    def fails(argv):
        if argv[:2] == ("systemctl", "restart") or argv[:3] == ("systemctl", "enable", "--now") and "hello.service" in argv:
            return 1, "Job for hello.service failed because the control process exited with error code."
        if "journalctl --sync" in " ".join(argv):
            return 0, GUNICORN_23
        return None

    applier, remote = _applier(fails)
    result = applier.apply()
    assert result.status in ("failed", "rolled-back")
    assert "[cause: gunicorn: error: unrecognized arguments: --no-control-socket]" in result.error
    doc = json.loads(json.dumps(result.as_dict()))
    assert doc["cause"] == "gunicorn: error: unrecognized arguments: --no-control-socket"
    assert doc["log"]["source"] == "journal of hello.service" and doc["log"]["lines"][-1].endswith("'exit-code'.")
    assert any("journalctl --sync" in " ".join(c) for c in remote.calls)


def test_a_failed_hook_names_the_import_error_not_its_last_line():
    applier, _ = _applier(lambda argv: (2, HOOK_REDIS) if "systemd-run" in argv else None,
                          Hooks(before_switch=(Hook(("flask", "db", "upgrade")),)))
    result = applier.apply()
    assert result.error == ("before_switch: hook flask db upgrade exited 2: "
                            "ModuleNotFoundError: No module named 'async_timeout'")
    assert result.as_dict()["log"]["lines"][-1] == "Error: No such command 'db'."


def test_the_health_check_reports_a_5xx_body_last_text_line():
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from deployer.core.commands import health_check

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<!doctype html>\n<title>500</title>\n<p>sqlite3.OperationalError: database is locked</p>\n</html>\n"
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        argv = health_check("http", server.server_address[1], "app.example", "/healthz", 0.3)
        out = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert out.returncode == 1 and out.stdout.strip() == "HTTP 500: sqlite3.OperationalError: database is locked"
