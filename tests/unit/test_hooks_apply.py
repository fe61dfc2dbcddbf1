"""The hook stages of one host's rollout and `deployer exec`, against a recorded fake connection (no SSH).

The lab tests prove the same on real hosts; these pin down the order of
commands: a failing before_switch hook must stop the host before any config,
switch or restart command is even sent.
"""

from __future__ import annotations

import threading
from pathlib import PurePosixPath

from deployer.core import commands as cmd
from deployer.run.apply import OnceGate, StepRunner
from deployer.remote.ssh import CommandFailed, CommandResult
from deployer.run.exec_command import exec_on
from deployer.core.layout import Layout
from deployer.config.model import Hook, Hooks
from deployer.core.plan import assign_run_once
from tests import factories as f
from tests.unit.test_hooks_pure import plans_for
from tests.unit.test_plan import converged

MIGRATE = Hook(("flask", "--app", "app", "migrate"))
ONCE = Hook(("flask", "seed"), run_once=True)


class FakeRemote:
    """Answers every command with success, except those ``fails`` picks; records what was sent."""

    def __init__(self, host, fails=lambda argv: None) -> None:  # noqa: ANN001
        self.host, self.fails, self.calls = host, fails, []

    def run(self, argv, *, check=True, timeout=None, mask=True, on_line=None) -> CommandResult:  # noqa: ANN001
        self.calls.append(tuple(argv))
        code, output = self.fails(argv) or (0, "")
        for line in output.splitlines():
            if on_line:
                on_line(line)
        result = CommandResult(code, output, "")
        if check and not result.ok:
            raise CommandFailed(self.host.name, argv, result)
        return result

    def upload(self, local, name: str) -> PurePosixPath:  # noqa: ANN001
        return PurePosixPath("/tmp/deployer.test") / name

    def cleanup(self) -> None:
        pass

    def sent(self, command: tuple[str, ...]) -> bool:
        return command in self.calls

    def hooks_run(self) -> list[tuple[str, ...]]:
        return [c[c.index("/usr/bin/env") + 2:] for c in self.calls if "systemd-run" in c]


def hook_fails(argv) -> tuple[int, str] | None:  # noqa: ANN001
    return (3, "migrating\nno such table: counter") if "systemd-run" in argv else None


def applier(name: str, plan, remote: FakeRemote, inv, **kwargs) -> StepRunner:  # noqa: ANN001
    ctx, steps = f.deploy_steps_of(inv, plan, converged(inv, inv.host(name)))
    return StepRunner(remote, ctx, steps, **kwargs)


def test_failing_before_switch_hook_stops_before_anything_live() -> None:
    inv, plans = plans_for("web1", hooks=Hooks(before_switch=(MIGRATE,)))
    plan = plans["web1"]
    remote = FakeRemote(inv.host("web1"), hook_fails)
    said: list[str] = []
    result = applier("web1", plan, remote, inv, progress=lambda host, message: said.append(f"{host}: {message}")).apply()

    assert result.status == "failed"
    assert result.error == "before_switch: hook flask --app app migrate exited 3: no such table: counter"
    assert "web1: before_switch> no such table: counter" in said
    assert remote.hooks_run() == [("flask", "--app", "app", "migrate")]
    layout = Layout.of(inv.app, inv.host("web1"))
    assert not remote.sent(cmd.switch_current(layout, plan.release_id))
    assert not any(c[0] == "systemctl" for c in remote.calls)
    assert remote.sent(cmd.mark_bad(layout, plan.release_id, result.error))
    assert remote.calls[-1] == cmd.release_lock(layout)


def test_before_switch_hook_runs_with_the_new_release_env_snapshot() -> None:
    inv, plans = plans_for("web1", hooks=Hooks(before_switch=(MIGRATE,)))
    plan = plans["web1"]
    remote = FakeRemote(inv.host("web1"))
    applier("web1", plan, remote, inv).apply()  # the fake has no facts for the health gate: only the order matters here
    (hook,) = [c for c in remote.calls if "systemd-run" in c]
    release = f"/srv/hello/releases/{plan.release_id}"
    assert f"EnvironmentFile={release}/.deployer/config/etc/hello/env" in hook
    assert f"WorkingDirectory={release}" in hook
    assert hook[4] == f"{release}/.deployer/hooks.log"
    hook_at = remote.calls.index(hook)
    assert hook_at < remote.calls.index(cmd.switch_current(Layout.of(inv.app, inv.host("web1")), plan.release_id))


def test_failed_run_once_leader_stops_the_hosts_waiting_for_it() -> None:
    inv, plans = plans_for("web1", "web2", hooks=Hooks(before_switch=(ONCE, MIGRATE)))
    plans = assign_run_once(inv.app, plans, ["web1", "web2"])
    gate = OnceGate()
    leader = FakeRemote(inv.host("web1"), hook_fails)
    follower = FakeRemote(inv.host("web2"))
    results = {}
    threads = [
        threading.Thread(target=lambda: results.setdefault("web2", applier("web2", plans["web2"], follower, inv, once=gate).apply())),
        threading.Thread(target=lambda: results.setdefault("web1", applier("web1", plans["web1"], leader, inv, once=gate).apply())),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert leader.hooks_run() == [("flask", "seed")]  # the leader stopped at its run_once hook
    assert follower.hooks_run() == []  # the follower ran none, not even its own
    assert results["web1"].status == results["web2"].status == "failed"
    assert results["web2"].error == ("run_once: the run_once hooks on web1 did not succeed: "
                                     "before_switch: hook flask seed exited 3: no such table: counter")
    assert not any(c[0] == "systemctl" for c in leader.calls + follower.calls)


def test_exec_refuses_a_host_without_a_current_release() -> None:
    inv = f.inventory()
    remote = FakeRemote(inv.hosts[0], lambda argv: (1, "/srv/hello/current does not exist") if argv[0] == "sh" else None)
    result = exec_on(remote, inv, ("flask", "routes"), None, lambda host, line: None)
    assert (result.code, str(result)) == (None, "web1: error: /srv/hello/current does not exist (deploy first)")
    assert remote.hooks_run() == []


def test_exec_runs_in_current_with_the_live_env_file_and_reports_the_exit_code() -> None:
    inv = f.inventory()
    remote = FakeRemote(inv.hosts[0], lambda argv: (4, "out\nerr") if "systemd-run" in argv else None)
    lines: list[str] = []
    result = exec_on(remote, inv, ("flask", "routes"), 30, lambda host, line: lines.append(f"{host}: {line}"))
    assert str(result) == "web1: exit 4" and not result.ok
    assert lines == ["web1: out", "web1: err"]
    (command,) = [c for c in remote.calls if "systemd-run" in c]
    assert "WorkingDirectory=/srv/hello/current" in command and "EnvironmentFile=/etc/hello/env" in command
    assert "RuntimeMaxSec=30" in command and command[-2:] == ("flask", "routes")
