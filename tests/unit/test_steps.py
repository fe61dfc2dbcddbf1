"""The planned steps (core/steps.py) and the runner that sends them: no SSH, no lab.

For every stack combination, the steps of a first deploy, a code change, a
config-only change, an unchanged host and a rollback; that the runner sends
exactly the planned argv in order (a recording fake answers the facts); and
that ``deployer plan`` prints the argv the deploy then sends.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest

from deployer.core import commands as cmd
from deployer import hostside
from deployer.core.facts import LiveFile, Release
from deployer.core.plan import Target, plan_host
from deployer.core.render import render_host
from deployer.core.steps import NOW, STAGING, Role, Step, prune_releases, recovery_steps, shown
from deployer.remote.ssh import CommandFailed, CommandResult
from deployer.run.apply import StepRunner
from deployer.stacks import proxy_of
from tests import factories as f
from tests.unit.test_inventory import BASE, project, write  # noqa: F401 - project is a fixture
from tests.unit.test_plan import NEW, TARGET, converged, facts

OLD = "20261120T000000Z-aaaaaaaaaaaa"  # what `converged` runs
OLDER = "20261110T000000Z-cccccccccccc"
SCENARIOS = ("first", "code", "config", "unchanged", "rollback")


def scenario(kind: str, server: str, proxy: str):  # noqa: ANN201
    """(inventory, plan, facts, steps) of one kind of rollout on one stack combination."""
    host = f.host(server=server, proxy=proxy)
    inv = f.inventory(host)
    files = render_host(inv, host, reveal_secrets=True)
    live, target, rollback = converged(inv, host), TARGET, False
    if kind == "first":
        live = facts()
    elif kind == "code":
        target = NEW
    elif kind == "config":
        live.files["/etc/hello/env"] = LiveFile("x", 0o640, "APP_GREETING=old\n")
    elif kind == "rollback":
        live = dataclasses.replace(live, current=NEW.release_id,
                                   releases=(Release(OLD, venv="req1"), Release(NEW.release_id, venv="req1")))
        target, rollback = Target(OLD, "aaaaaaaaaaaa", "req1", "3.11"), True
    plan = plan_host(inv, host, target, files, live, rollback=rollback)
    _, steps = f.deploy_steps_of(inv, plan, live, files, rollback=rollback)
    return inv, plan, live, steps


def argvs(steps: tuple[Step, ...]) -> list[tuple[str, ...]]:
    return [s.argv for s in steps if s.argv is not None]


def index(steps: tuple[Step, ...], argv: tuple[str, ...]) -> int:
    return argvs(steps).index(argv)


def install_step(steps: tuple[Step, ...]) -> Step:
    return next(s for s in steps if s.stage == "configs" and s.uploads)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
@pytest.mark.parametrize("kind", SCENARIOS)
def test_steps_are_commands_and_only_the_going_live_part_is_live(kind: str, server: str, proxy: str) -> None:
    _, plan, _, steps = scenario(kind, server, proxy)
    assert (steps == ()) == (kind == "unchanged")
    for step in steps:
        assert step.argv is None or (step.argv and all(isinstance(a, str) for a in step.argv)), step
        assert step.what and step.why
    first_live = next((i for i, s in enumerate(steps) if s.live), len(steps))
    assert all(s.stage in ("packages", "user", "dirs", "venv", "release", "hooks", "configs", "validate")
               for s in steps[:first_live])


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_first_deploy_builds_everything_then_goes_live_in_order(server: str, proxy: str) -> None:
    inv, plan, _, steps = scenario("first", server, proxy)
    layout = plan.layout
    assert plan.previous is None
    assert steps[0].argv == cmd.create_user("hello", layout.app_root)
    venv = next(s for s in steps if s.stage == "venv")
    assert venv.argv == f.PAYLOAD.venv_argv and [u.path for u in venv.uploads] == [STAGING / "venv.tar.gz"]
    unpack = cmd.unpack_release(layout, plan.release_id, STAGING / "app.tar.gz", "req1", inv.app.shared)
    install = install_step(steps)
    assert install.live and all(str(c.file.path) in install.argv for c in plan.changes)
    assert {c.file.path for c in plan.changes} == {x.path for x in render_host(inv, plan.host, reveal_secrets=True)}
    switch = cmd.switch_current(layout, plan.release_id)
    gate = next(s for s in steps if s.role is Role.GATE)
    assert index(steps, unpack) < argvs(steps).index(install.argv) < index(steps, switch) < argvs(steps).index(gate.argv)
    assert proxy_of(plan.host).check_argv in argvs(steps)  # the real checker, before anything reloads
    checks = [s for s in steps if s.role is Role.CHECK]
    assert checks and all(steps.index(c) < index(steps, switch) for c in checks)
    assert any(a[:3] == ("systemctl", "enable", "--now") for a in argvs(steps))
    assert argvs(steps)[-1][0] == "sh" and '"result": "deployed"' in argvs(steps)[-1][-1]  # the record; nothing to prune
    assert not any(s.stage == "prune" for s in steps)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_code_change_uploads_switches_and_restarts_the_app_only(server: str, proxy: str) -> None:
    inv, plan, _, steps = scenario("code", server, proxy)
    assert [s.stage for s in steps[:2]] == ["dirs", "release"] and steps[1].uploads  # no venv: req1 is there
    assert not any(s.live for s in steps if s.stage == "configs")  # only the release's snapshot
    assert cmd.switch_current(plan.layout, NEW.release_id) in argvs(steps)
    restarts = [s for s in steps if s.stage == "restart"]
    assert restarts and all(s.live for s in restarts)
    assert proxy_of(plan.host).reload() not in argvs(steps)
    assert not any(s.role is Role.CHECK for s in steps)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_config_only_change_backs_up_installs_and_restarts_without_a_switch(server: str, proxy: str) -> None:
    _, plan, _, steps = scenario("config", server, proxy)
    layout = plan.layout
    assert not any(s.uploads for s in steps if s.stage == "release")
    assert cmd.relink_venv(layout, OLD, "req1") in argvs(steps) and cmd.clear_bad(layout, OLD) in argvs(steps)
    backup = next(s for s in steps if s.undo is not None)
    assert backup.argv == cmd.backup_files([PurePosixPath("/etc/hello/env")])
    assert backup.undo == cmd.restore_files([PurePosixPath("/etc/hello/env")])
    assert not any(s.stage == "switch" for s in steps)
    assert any(s.stage == "restart" for s in steps)
    assert cmd.drop_backups([PurePosixPath("/etc/hello/env")]) in argvs(steps)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_rollback_uploads_nothing_and_switches_back(server: str, proxy: str) -> None:
    _, plan, _, steps = scenario("rollback", server, proxy)
    assert not any(s.uploads for s in steps if s.stage in ("release", "venv"))
    assert cmd.switch_current(plan.layout, OLD) in argvs(steps)
    assert '"command": "rollback"' not in argvs(steps)[-1][-1]  # the operator says which; the tests' is a deploy
    assert any(s.role is Role.GATE for s in steps)


def test_rollback_runs_after_rollback_hooks_after_the_gate_and_tolerates_them() -> None:
    from deployer.config.model import Hook, Hooks

    host = f.host()
    inv = f.inventory(host, app_=f.app(hooks=Hooks(before_switch=(Hook(("flask", "migrate")),),
                                                   after_rollback=(Hook(("flask", "cache", "clear")),))))
    live = converged(inv, host)
    live = dataclasses.replace(live, current=NEW.release_id, releases=(Release(OLD, venv="req1"), Release(NEW.release_id, venv="req1")))
    plan = plan_host(inv, host, Target(OLD, "aaaaaaaaaaaa", "req1", "3.11"), render_host(inv, host, reveal_secrets=True),
                     live, rollback=True)
    _, steps = f.deploy_steps_of(inv, plan, live, rollback=True)
    hooks = [s for s in steps if s.hook is not None]
    assert [(s.stage, s.role) for s in hooks] == [("after_rollback", Role.SOFT_HOOK)]
    assert steps.index(hooks[0]) > next(i for i, s in enumerate(steps) if s.role is Role.GATE)
    assert "WorkingDirectory=/srv/hello/releases/" + OLD in hooks[0].argv


def test_pruning_is_planned_from_the_facts_keeping_current_previous_and_good_ones() -> None:
    host = f.host()
    inv = f.inventory(host, app_=f.app(keep_releases=2))
    live = converged(inv, host)
    old = tuple(Release(f"2026110{i}T000000Z-x{i}", bad=i == 3, venv="req0" if i < 5 else "req1") for i in range(1, 7))
    live = dataclasses.replace(live, releases=old + live.releases, venvs=("req0", "req1"))
    plan = plan_host(inv, host, NEW, render_host(inv, host, reveal_secrets=True), live)
    _, steps = f.deploy_steps_of(inv, plan, live)
    prune = [s.argv for s in steps if s.stage == "prune"]
    # after the deploy: NEW (current), OLD (the previous good one) kept; keep 2 good -> every older one goes
    doomed = [plan.layout.release(f"2026110{i}T000000Z-x{i}") for i in range(6, 0, -1)]
    assert prune == [cmd.remove_paths(doomed), cmd.remove_paths([plan.layout.venvs / "req0"])]
    assert prune_releases(dataclasses.replace(live, current=OLD), 2)  # the same rule as before


# -- the runner sends exactly the planned argv ------------------------------------

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
UPLOADED = PurePosixPath("/tmp/deployer.run-1234")
FACTS = hostside.command("facts")  # the facts program, its query follows


class RecordingHost:
    """A host that says yes to everything and answers the facts with ``state``; records what was sent."""

    def __init__(self, host, state, fails=lambda argv: None) -> None:  # noqa: ANN001
        self.host, self.state, self.fails, self.calls, self.uploads = host, state, fails, [], []

    def run(self, argv, *, check=True, timeout=None, mask=True, on_line=None) -> CommandResult:  # noqa: ANN001
        argv = tuple(argv)
        self.calls.append(argv)
        if argv[:3] == FACTS:
            return CommandResult(0, json.dumps(dataclasses.asdict(self.state)), "")
        code = self.fails(argv) or 0
        result = CommandResult(code, "" if code == 0 else "boom", "")
        if check and not result.ok:
            raise CommandFailed(self.host.name, argv, result)
        return result

    def upload(self, local, name: str) -> PurePosixPath:  # noqa: ANN001
        self.uploads.append(name)
        return UPLOADED / name

    def cleanup(self) -> None:
        pass

    def planned_form(self) -> list[tuple[str, ...]]:
        """What was sent, with the run's upload dir and clock put back as the plan writes them."""
        return [tuple(STAMP.sub(NOW, a.replace(str(UPLOADED), str(STAGING))) for a in argv) for argv in self.calls]

    def framing(self, argv: tuple[str, ...]) -> bool:
        """The runner's own: the lock around the steps, the facts it reads to recheck and to gate, and
        the app's log it reads when a unit or the health check fails (the cause in the error)."""
        from deployer.core.failure_log import log_command

        if argv == log_command(f.app(), self.host):
            return True
        state = "/srv/hello/.deployer"
        lock = (cmd.sh('mkdir -p "$1"', state), cmd.release_lock(_layout()))
        return (argv[:3] == FACTS or argv in lock
                or argv[:4] == cmd.take_lock(_layout(), {})[:4])


def _layout():  # noqa: ANN202
    from deployer.core.layout import Layout

    return Layout.of(f.app(), f.host())


def serving_state(plan, live):  # noqa: ANN001, ANN201
    release = str(plan.layout.release(plan.release_id))
    return dataclasses.replace(live, serving={u: release for u in plan.services + plan.daemons})


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
@pytest.mark.parametrize("kind", ["first", "code", "config", "rollback"])
def test_runner_sends_exactly_the_planned_argv_in_order(kind: str, server: str, proxy: str) -> None:
    inv, plan, live, steps = scenario(kind, server, proxy)
    ctx, _ = f.deploy_steps_of(inv, plan, live)
    remote = RecordingHost(plan.host, serving_state(plan, live))
    result = StepRunner(remote, ctx, steps).apply()
    assert result.status == "deployed", result
    sent = [a for a in remote.planned_form() if not remote.framing(a)]
    assert sent == argvs(steps)
    assert remote.uploads == [u.name for s in steps for u in s.uploads]
    assert remote.calls[0] == cmd.sh('mkdir -p "$1"', plan.layout.state_dir)  # lock first, unlock last
    assert remote.calls[-1] == cmd.release_lock(plan.layout)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_failed_health_sends_the_planned_recovery(server: str, proxy: str) -> None:
    inv, plan, live, steps = scenario("config", server, proxy)
    ctx, _ = f.deploy_steps_of(inv, plan, live)
    gate = next(s for s in steps if s.role is Role.GATE)
    remote = RecordingHost(plan.host, serving_state(plan, live), fails=lambda argv: 1 if argv == gate.argv else None)
    result = StepRunner(remote, ctx, steps).apply()
    assert result.status == "failed" and result.error.startswith("health:")  # the previous release's health fails too
    sent = [a for a in remote.planned_form() if not remote.framing(a)]
    before = argvs(steps)[:argvs(steps).index(gate.argv) + 1]
    assert sent[:len(before)] == before
    undo = tuple(reversed([s.undo for s in steps if s.undo is not None]))
    recovery = argvs(recovery_steps(ctx, reason=result.error, live=True, undo=undo))
    assert sent[len(before):-1] == recovery
    assert '"result": "rollback-unhealthy"' in sent[-1][-1]


# -- plan prints what deploy sends -------------------------------------------------


def test_plan_lines_show_each_argv_the_runner_sends() -> None:
    inv, plan, live, steps = scenario("first", "gunicorn", "nginx")
    ctx, _ = f.deploy_steps_of(inv, plan, live)
    remote = RecordingHost(plan.host, serving_state(plan, live))
    StepRunner(remote, ctx, steps).apply()
    sent = [a for a in remote.planned_form() if not remote.framing(a)]
    printed = [line.split("\n      $ ", 1)[1] for line in map(shown, steps) if "\n      $ " in line]
    assert printed == [shown(Step("", "", argv)).split("$ ", 1)[1] for argv in sent]
    assert all(shlex.split(p) for p in printed)


class FakeSSH(RecordingHost):
    """The connection a Session gets (``connect`` below): every host cold, the new release serving once live."""

    opened: dict[str, "FakeSSH"] = {}

    def __init__(self, host, secrets=()) -> None:  # noqa: ANN001
        layout = _layout()
        release = str(layout.release(ARTIFACT_ID))
        super().__init__(host, dataclasses.replace(facts(), serving={"hello.service": release}))
        FakeSSH.opened[host.name] = self

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


ARTIFACT_ID = "20261202T120000Z-dddddddddddd"


def connect(host, secrets):  # noqa: ANN001, ANN201 - a ConnectorFactory
    return FakeSSH(host, secrets)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The release and venv tree as if built (no wheels, no pip); the requirements deployer added, per build."""
    from types import SimpleNamespace

    import deployer.artifact.release as release
    import deployer.artifact.venv as venv
    from deployer.stacks import gunicorn

    wheels = ("flask-3.0.0-py3-none-any.whl", f"gunicorn-{gunicorn.TESTED_VERSION}-py3-none-any.whl")
    artifact = SimpleNamespace(release_id=ARTIFACT_ID, content_hash="d" * 64, req_hash="req9", python="3.11",
                               app_tarball=Path("/controller/app.tar.gz"), wheel_names=wheels,
                               target=None, declared="requirements.txt")
    extras: list[tuple[str, ...]] = []

    def build(app, *, python, extra_requirements=()):  # noqa: ANN001, ANN202
        extras.append(tuple(extra_requirements))
        return artifact

    monkeypatch.setattr(release, "build_artifact", build)
    monkeypatch.setattr(venv, "venv_tree", lambda art, path: venv.VenvTree(Path("/controller/venv.tar.gz"), "e" * 64, True))
    FakeSSH.opened = {}
    return extras


def test_deployer_plan_prints_the_argv_deploy_then_sends(project, offline) -> None:  # noqa: ANN001, F811
    from click.testing import CliRunner

    from deployer.cli import main
    from deployer.cli.common import Wiring
    from deployer.config.inventory import load_inventory
    from deployer.run import rollout
    from deployer.stacks import gunicorn

    path = write(project, BASE)
    result = CliRunner().invoke(main, ["plan", "-i", str(path)], obj=Wiring(connect=connect))
    assert result.exit_code == 0, result.output
    printed = [line.split("      $ ", 1)[1] for line in result.output.splitlines() if line.startswith("      $ ")]
    assert "[live]" in result.output and any(p.startswith("useradd ") for p in printed)
    note = f"gunicorn {gunicorn.TESTED_VERSION} added: the app does not depend on it"  # the app names only flask
    assert f"* {note}" in result.output.splitlines()

    inventory = load_inventory(path)
    said: list[tuple[str, str]] = []
    (outcome,) = rollout.deploy(inventory, inventory.hosts, connect=connect, progress=lambda *m: said.append(m))
    assert outcome.status == "deployed", outcome
    assert ("*", note) in said and offline == [(f"gunicorn=={gunicorn.TESTED_VERSION}",)] * 2
    remote = FakeSSH.opened["web1"]
    sent = [a for a in remote.planned_form() if not remote.framing(a)]
    assert printed == [shown(Step("", "", argv)).split("$ ", 1)[1] for argv in sent]
