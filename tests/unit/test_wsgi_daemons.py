"""mod_wsgi daemons restarted without an Apache reload: the programs run here on real processes, the applier on a fake connection.

Stand-ins for the daemons are children of this test process whose argv[0] is
the marker (as WSGIDaemonProcess display-name sets it); a fake ``systemctl``
names this process as Apache's main PID. The lab proves the same on Apache.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from deployer.core import commands as cmd
from deployer.run.apply import StepFailed
from deployer.core.facts import LiveFile, facts_command, parse_facts
from deployer.core.layout import Layout
from deployer.core.plan import Target, plan_host
from deployer.core.render import render_host
from deployer.core.steps import Role
from tests import factories as f
from tests.unit.test_hooks_apply import FakeRemote, applier
from tests.unit.test_plan import converged

ME = pwd.getpwuid(os.getuid()).pw_name  # the daemons run as the app's user: here, this test's
MARKER = f"(wsgi:test{os.getpid()})"
OTHER_GROUP = f"(wsgi:test{os.getpid()}2)"  # a group whose name starts the same


@pytest.fixture
def spawn():
    """Start ``sleep`` as ``argv0`` in ``cwd``; everything started is killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(argv0: str, cwd: Path, user: str | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([argv0, "60"], executable="sleep", cwd=cwd, user=user)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def serving(tmp_path: Path) -> dict[str, str]:
    layout = Layout("hello", PurePosixPath(tmp_path))
    command = facts_command(layout, user=ME, packages=(), files=(), links=(), units=(), process_markers=(MARKER,))
    return parse_facts(subprocess.run(command, capture_output=True, text=True, check=True).stdout).serving


def test_facts_report_every_daemon_release_so_a_half_restarted_group_is_not_taken_as_new(tmp_path, spawn) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    spawn(MARKER, new)
    spawn(MARKER, new)
    spawn(OTHER_GROUP, old)
    assert serving(tmp_path) == {MARKER: str(new)}
    spawn(MARKER, old)
    assert serving(tmp_path) == {MARKER: f"{new} and {old}"}


def test_a_display_name_cut_to_apaches_argv0_length_still_names_the_group(tmp_path, spawn) -> None:
    """mod_wsgi overwrites Apache's argv[0] in place: "(wsgi:factory-pkg)" shows as "(wsgi:factory-pkg"."""
    spawn(MARKER[:-3], tmp_path)
    assert serving(tmp_path) == {MARKER: str(tmp_path)}


def test_a_display_name_shorter_than_apaches_argv0_is_padded_with_spaces_and_still_names_the_group(tmp_path, spawn) -> None:
    """Measured on lab3: "(wsgi:hello)" shows as "(wsgi:hello)     " (the length of /usr/sbin/apache2)."""
    spawn(MARKER + "     ", tmp_path)
    assert serving(tmp_path) == {MARKER: str(tmp_path)}


@pytest.mark.skipif(os.getuid() != 0, reason="starting a process as another user needs root")
def test_a_daemon_of_another_user_is_not_the_apps(tmp_path, spawn) -> None:
    """Two groups whose names share the cut prefix: the app user's uid tells them apart."""
    spawn(MARKER[:-3], tmp_path, user="nobody")
    assert serving(tmp_path) == {}


def run_restart(tmp_path: Path, main_pid: int) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir(parents=True)
    fake.write_text(f'#!/bin/sh\n[ "$*" = "show -p MainPID --value apache2.service" ] && echo {main_pid}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    return subprocess.run(cmd.restart_daemons("apache2.service", MARKER), capture_output=True, text=True, env=env, timeout=30)


def test_restart_signals_only_the_groups_daemons_under_apaches_main_process(tmp_path, spawn) -> None:
    daemons = [spawn(MARKER, tmp_path), spawn(MARKER, tmp_path)]
    other_group = spawn(OTHER_GROUP, tmp_path)
    done = run_restart(tmp_path, os.getpid())
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(done.stdout.split()) == sorted(str(p.pid) for p in daemons)
    assert [p.wait(10) for p in daemons] == [-signal.SIGUSR1] * 2
    assert other_group.poll() is None


def test_restart_signals_daemons_whose_display_name_was_cut(tmp_path, spawn) -> None:
    daemon = spawn(MARKER[:-2], tmp_path)
    done = run_restart(tmp_path, os.getpid())
    assert (done.returncode, done.stdout.split()) == (0, [str(daemon.pid)])


def test_restart_fails_when_apache_runs_no_such_daemon(tmp_path, spawn) -> None:
    stranger = spawn(MARKER, tmp_path)  # right name, but not a child of Apache's main process
    done = run_restart(tmp_path, 1)
    assert done.returncode == 1
    assert done.stdout == f"no {MARKER} process under apache2.service (main pid 1)\n"
    assert stranger.poll() is None
    stopped = run_restart(tmp_path / "stopped", 0)  # systemd's MainPID of a stopped service
    assert (stopped.returncode, stopped.stdout) == (1, "apache2.service is not running\n")


SIGNAL = cmd.restart_daemons("apache2.service", "(wsgi:hello)")
RELOAD = cmd.systemctl("reload-or-restart", "apache2.service")


def wsgi_applier(*, apache_changed: bool):
    host = f.host(server="mod_wsgi", proxy="apache")
    inv = f.inventory(host)
    live = converged(inv, host)
    if apache_changed:
        live.files["/etc/apache2/sites-available/hello.conf"] = LiveFile("x", 0o644, "# older site\n")
    plan = plan_host(inv, host, Target("20261125T180000Z-bbbbbbbbbbbb", "bbbbbbbbbbbb", "req1", "3.11"),
                     render_host(inv, host, reveal_secrets=True), live)
    remote = FakeRemote(host)
    return applier("web1", plan, remote, inv), remote


def go_live(app) -> None:  # noqa: ANN001
    """Every planned step up to the health gate: what runs before a failed health check."""
    for step in app.steps[:next(i for i, s in enumerate(app.steps) if s.role is Role.GATE)]:
        app.run_step(step)


def test_code_change_signals_the_daemons_and_a_rollback_signals_them_again() -> None:
    app, remote = wsgi_applier(apache_changed=False)
    go_live(app)
    assert remote.calls.count(SIGNAL) == 1 and RELOAD not in remote.calls
    assert remote.calls.index(cmd.switch_current(app.layout, app.plan.release_id)) < remote.calls.index(SIGNAL)
    app.recover(StepFailed("health", "HTTP 500"))
    assert remote.calls.count(SIGNAL) == 2 and RELOAD not in remote.calls
    last_signal = max(i for i, call in enumerate(remote.calls) if call == SIGNAL)
    assert remote.calls.index(cmd.switch_current(app.layout, app.plan.previous)) < last_signal


def test_apache_config_change_reloads_and_so_does_its_rollback() -> None:
    app, remote = wsgi_applier(apache_changed=True)
    go_live(app)
    assert RELOAD in remote.calls and SIGNAL not in remote.calls
    app.recover(StepFailed("health", "HTTP 500"))
    assert remote.calls.count(RELOAD) == 2 and SIGNAL not in remote.calls


def test_rollback_reloads_apache_when_the_daemons_cannot_be_signalled() -> None:
    app, remote = wsgi_applier(apache_changed=False)
    remote.fails = lambda argv: (1, "no (wsgi:hello) process") if tuple(argv) == SIGNAL else None
    app.live = True
    app.recover(StepFailed("serving", "(wsgi:hello) is not running"))
    assert SIGNAL in remote.calls and RELOAD in remote.calls
