"""Release hooks without SSH: the inventory schema, the command builders, the plan, the run_once gate."""

from __future__ import annotations

import os
import subprocess
import textwrap
import threading
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from deployer.run.apply import Cancelled, OnceGate
from deployer.cli import main
from deployer.remote.ssh import LineStream
from deployer.config.inventory import load_inventory
from deployer.config.model import Hook, Hooks
from deployer.core.plan import Target, assign_run_once, plan_host
from deployer.core.release_env import ReleaseEnv, in_release, logged, paths_exist, stop_on_hangup
from deployer.core.render import render_host
from deployer.core.steps import plan_lines
from deployer.secret import Secret
from tests import factories as f
from tests.unit.test_inventory import problems, project, write  # noqa: F401 - project is a fixture
from tests.unit.test_plan import converged

NEW = Target("20261125T180000Z-bbbbbbbbbbbb", "bbbbbbbbbbbb", "req1", "3.11")  # a release not on the host yet

BASE = """\
app:
  name: hello
  source: app
  wsgi: app:app
  hooks:
{hooks}
groups:
  web:
    hosts:
      web1: {{address: 203.0.113.10}}
"""


def with_hooks(hooks: str) -> str:
    """The base inventory with ``hooks`` (YAML under app/hooks, any indentation)."""
    return BASE.format(hooks=textwrap.indent(textwrap.dedent(hooks), "    "))


# -- schema ---------------------------------------------------------------------


def test_every_hook_form_parses(project: Path) -> None:
    inventory = load_inventory(write(project, with_hooks("""\
        before_switch:
          - [flask, --app, app, migrate]
          - {run: [python, -m, seed, 3], run_once: true, timeout: 60}
          - shell: |
              flask assets build && echo "built $APP_GREETING"
        after_switch: [[curl, -fsS, http://localhost/warm]]
        """)))
    hooks = inventory.app.hooks
    assert hooks.before_switch == (
        Hook(("flask", "--app", "app", "migrate")),
        Hook(("python", "-m", "seed", "3"), run_once=True, timeout=60),
        Hook(("/bin/sh", "-c", 'flask assets build && echo "built $APP_GREETING"\n'), shell=True),
    )
    assert hooks.after_switch == (Hook(("curl", "-fsS", "http://localhost/warm")),)
    assert hooks.after_rollback == ()
    assert str(hooks.before_switch[0]) == "flask --app app migrate"
    assert str(hooks.before_switch[2]).startswith("sh -c 'flask assets build && echo")


def test_no_hooks_section_means_no_hooks(project: Path) -> None:
    assert load_inventory(write(project, BASE.replace("  hooks:\n{hooks}\n", "").format())).app.hooks == Hooks()


@pytest.mark.parametrize(
    ("hooks", "expected"),
    [
        ("before_switch:\n  - flask db upgrade\n",
         "inv.yml:7: app/hooks/before_switch/0: expected an argument list like [flask, db, upgrade], or "
         "{shell: 'script'} to run it with sh -c, got 'flask db upgrade' "
         "(a string runs through a shell only when written as shell: ...)"),
        ("before_switch:\n  - []\n",
         "inv.yml:7: app/hooks/before_switch/0: expected a non-empty argument list like [flask, db, upgrade], got a list"),
        ("before_switch:\n  - [flask, null]\n",
         "inv.yml:7: app/hooks/before_switch/0/1: expected a string argument, got null"),
        ("before_switch:\n  - {run: [a], shell: b}\n",
         "inv.yml:7: app/hooks/before_switch/0: expected exactly one of 'run' (an argument list) or 'shell' (a script for sh -c)"),
        ("before_switch:\n  - {run_once: true}\n",
         "inv.yml:7: app/hooks/before_switch/0: expected exactly one of 'run' (an argument list) or 'shell' (a script for sh -c)"),
        ("before_switch:\n  - {shell: ''}\n",
         "inv.yml:7: app/hooks/before_switch/0/shell: expected a non-empty script for sh -c, got ''"),
        ("before_switch:\n  - {run: [a], runonce: true}\n",
         "inv.yml:7: app/hooks/before_switch/0/runonce: unknown key (did you mean 'run_once'?)"),
        ("before_switch:\n  - {run: [a], run_once: yes please}\n",
         "inv.yml:7: app/hooks/before_switch/0/run_once: expected true or false, got 'yes please'"),
        ("before_switch:\n  - {run: [a], timeout: 0}\n",
         "inv.yml:7: app/hooks/before_switch/0/timeout: expected an integer 1-86400, got 0"),
        ("after_switch:\n  - {run: [a], run_once: true}\n",
         "inv.yml:7: app/hooks/after_switch/0/run_once: run_once is only for before_switch hooks "
         "(they run on one host before any host switches)"),
        ("before_swich: []\n",
         "inv.yml:6: app/hooks/before_swich: unknown key (did you mean 'before_switch'?)"),
        ("after_rollback: {run: [a]}\n",
         "inv.yml:6: app/hooks/after_rollback: expected a list of hooks, got a mapping"),
    ],
)
def test_bad_hook_gives_exact_message(project: Path, hooks: str, expected: str) -> None:
    assert expected in problems(project, with_hooks(hooks))


def test_every_bad_hook_is_reported_at_once(project: Path) -> None:
    found = problems(project, with_hooks("before_switch:\n  - flask\n  - []\nafter_switch:\n  - {run: [a], run_once: true}\n"))
    assert len(found) == 3


# -- command builders -----------------------------------------------------------

ENV = ReleaseEnv(PurePosixPath("/srv/hello/releases/r1"), "hello", PurePosixPath("/etc/hello/env"))


UNIT = "hello-exec-0123456789ab.service"


def test_in_release_is_a_transient_service_of_the_app_user_with_the_env_file() -> None:
    command = in_release(ENV, ("flask", "--app", "app", "migrate"), unit=UNIT, timeout=60, description="hello hook")
    assert command[:2] == ("sh", "-c") and command[3:5] == ("sh", UNIT)  # stop_on_hangup around it
    assert command[5:] == (
        "systemd-run", "--pipe", "--wait", "--collect", "--quiet", f"--unit={UNIT}", "--description=hello hook",
        "-p", "User=hello", "-p", "Group=hello",
        "-p", "WorkingDirectory=/srv/hello/releases/r1",
        "-p", "EnvironmentFile=/etc/hello/env",
        "-p", "RuntimeMaxSec=60",
        "--setenv=PATH=/srv/hello/releases/r1/.venv/bin:/usr/local/bin:/usr/bin:/bin",
        "--setenv=VIRTUAL_ENV=/srv/hello/releases/r1/.venv",
        "--setenv=PYTHONUNBUFFERED=1",
        "--setenv=PYTHONDONTWRITEBYTECODE=1",
        "--setenv=LANG=C.UTF-8",
        "--", "/usr/bin/env", "--", "flask", "--app", "app", "migrate",
    )


def test_in_release_passes_hostile_arguments_as_single_items() -> None:
    argv = ("echo", "`reboot`", "a b; rm -rf /", "--")
    command = in_release(ENV, argv, unit=UNIT)
    assert command[-len(argv):] == argv  # ($ is escaped for systemd: tests/unit/test_hardening_rules.py)
    assert not any(p.startswith("RuntimeMaxSec") for p in command)


def test_stop_on_hangup_stops_the_unit_on_eof_only(tmp_path: Path) -> None:
    """Locally, with a stand-in systemctl: a finished command keeps its exit code; EOF on stdin stops the unit."""
    (tmp_path / "systemctl").write_text('#!/bin/sh\necho "systemctl $*"\n')
    (tmp_path / "systemctl").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    read, write = os.pipe()  # stdin held open, as the SSH channel is while deployer listens
    try:
        done = subprocess.run(stop_on_hangup(UNIT, ("sh", "-c", "echo done; exit 5")), stdin=read,
                              capture_output=True, text=True, env=env, timeout=10)
    finally:
        os.close(read)
        os.close(write)
    assert (done.returncode, done.stdout) == (5, "done\n")
    gone = subprocess.run(stop_on_hangup(UNIT, ("sh", "-c", "sleep 1; echo finished")), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env, timeout=10)
    assert gone.stdout.startswith(f"systemctl stop {UNIT}\n")


def test_logged_keeps_the_command_as_arguments_after_a_constant_script() -> None:
    inner = ("flask", "db", "upgrade")
    command = logged(inner, PurePosixPath("/srv/hello/releases/r1/.deployer/hooks.log"), "== before_switch: x")
    assert command[:2] == ("sh", "-c") and "umask 077" in command[2]
    assert command[3:] == ("sh", "/srv/hello/releases/r1/.deployer/hooks.log", "== before_switch: x", *inner)


def test_paths_exist_names_paths_as_arguments() -> None:
    assert paths_exist(PurePosixPath("/srv/hello/current"), PurePosixPath("/etc/hello/env"))[3:] == (
        "sh", "/srv/hello/current", "/etc/hello/env")


def test_streamed_lines_are_masked_even_when_split_across_reads() -> None:
    lines: list[str] = []
    stream = LineStream(lines.append, (Secret("s3cr3t-Key_value"),))
    stream.write("key=s3cr3t-")
    stream.write("Key_value ok\r\nsecond")
    stream.close()
    assert lines == ["key=*** ok", "second"]


# -- plan -------------------------------------------------------------------------

MIGRATE = Hook(("flask", "--app", "app", "migrate"))
ONCE = Hook(("/bin/sh", "-c", "flask seed --token s3cr3t-Key_value"), shell=True, run_once=True)
WARM = Hook(("curl", "http://localhost/"))
UNDO = Hook(("flask", "cache", "clear"))


def plans_for(*names: str, hooks: Hooks, switching: tuple[str, ...] | None = None):
    hosts = [f.host(name, address=f"198.18.0.{i + 10}") for i, name in enumerate(names)]
    inv = f.inventory(*hosts, app_=f.app(hooks=hooks))
    plans = {}
    for host in hosts:
        live = converged(inv, host)
        target = NEW if switching is None or host.name in switching else Target(live.current, "aaaaaaaaaaaa", "req1", "3.11")
        plans[host.name] = plan_host(inv, host, target, render_host(inv, host, reveal_secrets=True), live)
    return inv, plans


def test_switching_host_plans_its_hooks_in_order() -> None:
    inv, plans = plans_for("web1", hooks=Hooks(before_switch=(MIGRATE,), after_switch=(WARM,), after_rollback=(UNDO,)))
    steps = f.whats(inv, plans["web1"], converged(inv, inv.host("web1")))
    hook_steps = [s for s in steps if s.startswith("run ") and "hook" in s]
    assert hook_steps == [
        "run before_switch hook: flask --app app migrate",
        "run after_switch hook: curl http://localhost/",
    ]
    assert steps.index(hook_steps[0]) < steps.index("switch current: 20261120T000000Z-aaaaaaaaaaaa -> " + NEW.release_id)
    health = next(s for s in steps if s.startswith("health check"))
    assert steps.index(health) < steps.index(hook_steps[1]) < steps.index("record deployed in releases.log")
    assert [h.shown for h in plans["web1"].stage_hooks("after_rollback")] == ["flask cache clear"]  # recovery runs them


def test_no_switch_no_hooks() -> None:
    _, plans = plans_for("web1", hooks=Hooks(before_switch=(MIGRATE,), after_switch=(WARM,)), switching=())
    assert plans["web1"].hooks == () and plans["web1"].unchanged


def test_run_once_goes_to_the_first_switching_host_and_the_others_wait() -> None:
    inv, plans = plans_for("web1", "web2", "web3", hooks=Hooks(before_switch=(ONCE, MIGRATE)), switching=("web2", "web3"))
    plans = assign_run_once(inv.app, plans, ["web1", "web2", "web3"])
    assert [h.hook for h in plans["web2"].stage_hooks("before_switch", once=True)] == [ONCE]
    assert [h.hook for h in plans["web2"].stage_hooks("before_switch", once=False)] == [MIGRATE]
    assert plans["web3"].stage_hooks("before_switch", once=True) == ()
    assert (plans["web1"].once_leader, plans["web2"].once_leader, plans["web3"].once_leader) == (None, None, "web2")
    assert "wait for the run_once hooks on web2" in f.whats(inv, plans["web3"], converged(inv, inv.host("web3")))


def test_plan_never_shows_a_secret_in_a_hook() -> None:
    inv, plans = plans_for("web1", hooks=Hooks(before_switch=(ONCE,)))
    plans = assign_run_once(inv.app, plans, ["web1"])
    _, steps = f.deploy_steps_of(inv, plans["web1"], converged(inv, inv.host("web1")))
    text = "\n".join(plan_lines(steps, tuple(inv.app.secrets.values())))
    assert "run before_switch hook once, for every host: sh -c 'flask seed --token ***'" in text
    assert "s3cr3t-Key_value" not in text


def test_rollback_plans_only_after_rollback_hooks() -> None:
    host = f.host()
    inv = f.inventory(host, app_=f.app(hooks=Hooks(before_switch=(MIGRATE,), after_rollback=(UNDO,))))
    plan = plan_host(inv, host, NEW, render_host(inv, host, reveal_secrets=True), converged(inv, host), rollback=True)
    assert [(h.stage, h.hook) for h in plan.hooks] == [("after_rollback", UNDO)]


# -- the run_once gate ----------------------------------------------------------


def test_once_gate_passes_the_first_outcome_to_waiters() -> None:
    gate = OnceGate()
    seen: list[str | None] = []
    waiter = threading.Thread(target=lambda: seen.append(gate.wait(threading.Event())))
    waiter.start()
    gate.open("before_switch: hook false exited 1")
    gate.open(None)  # later outcomes of the same host change nothing
    waiter.join(5)
    assert seen == ["before_switch: hook false exited 1"]


def test_once_gate_wait_stops_on_cancel() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        OnceGate().wait(cancel)


def test_check_lists_hooks_with_secret_values_masked(project: Path) -> None:
    (project / "secrets.env").write_text("APP_SECRET_KEY=s3cr3t-Key_value\n")
    path = write(project, with_hooks("before_switch:\n  - {run: [flask, seed, --token, s3cr3t-Key_value], run_once: true}\n"))
    path.write_text(path.read_text().replace("  hooks:\n", "  secrets: secrets.env\n  hooks:\n"))
    result = CliRunner().invoke(main, ["check", "-i", str(path)])
    assert result.exit_code == 0, result.output
    assert "- flask seed --token *** (run_once)" in result.output
    assert "s3cr3t-Key_value" not in result.output
