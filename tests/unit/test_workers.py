"""app.processes and app.timers: schema, units, plan, logs and verify. No SSH."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from deployer.config.inventory import load_inventory
from deployer.config.model import Process, Timer
from deployer.core import commands as cmd
from deployer.core import jobs
from deployer.core.facts import LiveFile, Unit, parse_facts
from deployer.core.journal import host_sources
from deployer.core.plan import plan_host
from deployer.core.render import render_host
from deployer.errors import InventoryError
from deployer.verify.checks import applicable, judge, settings
from tests import factories as f
from tests.unit.test_plan import TARGET, converged, facts
from tests.unit.test_verify_checks import good_probe

PROCS = (Process("worker", ("rq", "worker", "tasks")),)
TIMERS = (Timer("cleanup", ("flask", "cleanup"), "daily"),)
UNITS = ("hello-worker.service", "hello-cleanup.service", "hello-cleanup.timer")

BASE = """\
app:
  name: hello
  source: app
  wsgi: app:app
{extra}
hosts:
  web1: {{address: 203.0.113.10}}
"""


def inv_with(server: str = "gunicorn", proxy: str = "nginx", processes=PROCS, timers=TIMERS):
    host = f.host(server=server, proxy=proxy)
    return f.inventory(host, app_=f.app(processes=processes, timers=timers)), host


def by_name(files):
    return {x.path.name: x for x in files}


# --- schema -------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(project: Path, extra: str):
    path = project / "inv.yml"
    path.write_text(BASE.format(extra=textwrap.indent(textwrap.dedent(extra), "  ")))
    return load_inventory(path)


def problems(project: Path, extra: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load(project, extra)
    return [str(p) for p in info.value.problems]


def test_processes_and_timers_load_as_the_file_has_them(project: Path) -> None:
    inv = load(project, """\
        processes:
          worker: [rq, worker, "0x10", 1.0]
          beat: {run: [celery, beat], stop_timeout: 90}
        timers:
          cleanup: {run: [flask, cleanup], on_calendar: "*-*-* 03:00:00", timeout: 600}
        """)
    assert inv.app.processes == (Process("worker", ("rq", "worker", "0x10", "1.0")), Process("beat", ("celery", "beat"), 90))
    assert inv.app.timers == (Timer("cleanup", ("flask", "cleanup"), "*-*-* 03:00:00", 600),)


@pytest.mark.parametrize(("extra", "expected"), [
    ("processes:\n  Worker: [rq]\n", "inv.yml:6: app/processes/Worker: expected a name matching ^[a-z][a-z0-9-]{0,20}$"),
    ("processes:\n  a-very-long-process-name: [rq]\n", "inv.yml:6: app/processes/a-very-long-process-name: expected a name"),
    ("processes:\n  exec-1a2b3c4d5e6f: [rq]\n", "inv.yml:6: app/processes/exec-1a2b3c4d5e6f: expected a name of the process's own"),
    ("processes:\n  worker: rq worker\n", "inv.yml:6: app/processes/worker: expected a non-empty argument list"),
    ("processes:\n  worker: []\n", "inv.yml:6: app/processes/worker: expected a non-empty argument list"),
    ("processes:\n  worker: [rq, ';', x]\n", "inv.yml:6: app/processes/worker/1: expected an argument other than ';'"),
    ("processes:\n  worker: [rq, \"a\\rb\"]\n", "inv.yml:6: app/processes/worker/1: expected a string argument"),
    ("processes:\n  worker: {run: [rq], stop_timout: 3}\n", "inv.yml:6: app/processes/worker/stop_timout: unknown key (did you mean 'stop_timeout'?)"),
    ("processes:\n  worker: {stop_timeout: 3}\n", "inv.yml:6: app/processes/worker: missing required key 'run'"),
    ("processes:\n  worker: {run: [rq], stop_timeout: 0}\n", "inv.yml:6: app/processes/worker/stop_timeout: expected"),
    ("processes: [rq, worker]\n", "inv.yml:5: app/processes: expected a mapping of processes by name, got a list"),
    ("timers:\n  cleanup: [flask, cleanup]\n", "inv.yml:6: app/timers/cleanup: expected {run: [argv...], on_calendar: ...}"),
    ("timers:\n  cleanup: {run: [flask]}\n", "inv.yml:6: app/timers/cleanup: missing required key 'on_calendar'"),
    ("timers:\n  cleanup: {run: [flask], on_calendar: \"daily; rm -rf\"}\n",
     "inv.yml:6: app/timers/cleanup/on_calendar: expected a calendar event"),
    ("timers:\n  cleanup: {run: [flask], on_calendar: \"daily\\nExecStart=/bin/sh\"}\n",
     "inv.yml:6: app/timers/cleanup/on_calendar: expected a calendar event"),
    ("processes:\n  job: [rq]\ntimers:\n  job: {run: [flask], on_calendar: daily}\n",
     "inv.yml:8: app/timers/job: 'job' is also a process"),
])
def test_bad_processes_and_timers_name_file_and_line(project: Path, extra: str, expected: str) -> None:
    found = problems(project, extra)
    assert any(p.startswith(expected) for p in found), found


# --- render -----------------------------------------------------------------------------


def directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if "=" in line and not line.startswith("#")]


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_every_stack_gets_the_same_units_with_the_apps_sandbox(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    files = by_name(render_host(inv, host))
    assert set(UNITS) <= set(files)
    assert all(files[u].check == "systemd" for u in UNITS)
    worker = files["hello-worker.service"].content
    for line in ("User=hello", "Group=hello", "WorkingDirectory=/srv/hello/current", "EnvironmentFile=/etc/hello/env",
                 "Type=exec", "KillSignal=SIGTERM", "KillMode=mixed", "TimeoutStopSec=30", "Restart=on-failure",
                 'ExecStart=/usr/bin/env -- "rq" "worker" "tasks"', "WantedBy=multi-user.target"):
        assert line in worker.splitlines(), line
    # the hardening of the app's own service (gunicorn's unit; under mod_wsgi there is none to compare to)
    reference = by_name(render_host(*inv_with("gunicorn", "nginx")))["hello.service"].content
    sandbox = set(directives(reference)) - set(directives(worker))
    assert {d.split("=", 1)[0] for d in sandbox} <= {"Type", "ExecStart", "ExecReload", "RuntimeDirectory",
                                                    "RuntimeDirectoryMode", "TimeoutStopSec", "RestartSec",
                                                    "Requires", "After", "Description", "RemoveIPC", "Environment",
                                                    "UnsetEnvironment"}  # GUNICORN_CMD_ARGS: gunicorn's own
    job, timer = files["hello-cleanup.service"].content, files["hello-cleanup.timer"].content
    assert "Type=oneshot" in job and "TimeoutStartSec=3600" in job and "[Install]" not in job
    assert "OnCalendar=daily" in timer and "Unit=hello-cleanup.service" in timer and "WantedBy=timers.target" in timer
    assert "RemoveIPC" not in worker + job  # a job ending must not remove the running app's IPC objects


def test_arguments_reach_the_process_unchanged() -> None:
    argv = ("python", "-c", "print('$HOME %n')", 'a "quoted" \\ word', "tab\there")
    words = jobs.exec_words(argv)
    assert words == ('/usr/bin/env -- "python" "-c" "print(\'$$HOME %%n\')" "a \\"quoted\\" \\\\ word" "tab\\there"')


def test_units_are_found_by_their_marker_and_not_another_apps() -> None:
    inv, host = inv_with()
    files = render_host(inv, host)
    found = jobs.units_of("hello", files)
    assert found.processes == ("hello-worker.service",)
    assert found.jobs == ("hello-cleanup.service",) and found.timers == ("hello-cleanup.timer",)
    assert found.calendars == ("daily",)
    other = f.inventory(host, app_=f.app(name="hello-api", processes=PROCS))
    assert jobs.units_of("hello", render_host(other, host)).all == ()  # hello-api-worker.service is not hello's


def test_an_unsafe_calendar_never_renders() -> None:
    inv, host = inv_with(timers=(Timer("cleanup", ("x",), "daily\nExecStart=/bin/sh"),))
    with pytest.raises(Exception, match="on_calendar"):
        render_host(inv, host)


# --- plan -------------------------------------------------------------------------------


def converged_with_jobs(inv, host):
    base = converged(inv, host)
    path = f"/srv/hello/releases/{base.current}"
    units = dict(base.units, **{u: Unit("active", "enabled" if not u.endswith("cleanup.service") else "static", 5)
                                 for u in UNITS})
    return replace(base, units=units, serving=dict(base.serving, **{"hello-worker.service": path}),
                   managed_units=tuple(sorted(UNITS)))


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_first_deploy_enables_processes_and_timers_not_the_jobs_service(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), facts())
    assert plan.enable_units[-2:] == ("hello-worker.service", "hello-cleanup.timer")
    assert plan.workers == ("hello-worker.service",) and plan.restart_workers == ()
    assert "enable and start" in " ".join(f.whats(inv, plan, facts()))


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_converged_host_with_processes_is_unchanged(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), converged_with_jobs(inv, host))
    assert plan.unchanged, plan


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_a_release_switch_restarts_every_process_with_the_app(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    live = converged_with_jobs(inv, host)
    plan = plan_host(inv, host, replace(TARGET, short_hash="bbbbbbbbbbbb", release_id="20261126T000000Z-bbbbbbbbbbbb"),
                     render_host(inv, host, reveal_secrets=True), live)
    assert plan.switch and plan.restart_workers == ("hello-worker.service",)
    assert plan.restart_timers == ()  # a timer's job resolves `current` each time it runs
    assert any(s.startswith("restart hello-worker.service (SIGTERM") for s in f.whats(inv, plan, live))


def test_a_changed_process_unit_restarts_it_but_not_the_app() -> None:
    inv, host = inv_with()
    live = converged_with_jobs(inv, host)
    changed = f.inventory(host, app_=replace(inv.app, processes=(Process("worker", ("rq", "worker", "other")),),
                                             timers=(Timer("cleanup", ("flask", "cleanup"), "hourly"),)))
    plan = plan_host(changed, host, TARGET, render_host(changed, host, reveal_secrets=True), live)
    assert not plan.switch and not plan.restart_app
    assert plan.restart_workers == ("hello-worker.service",) and plan.restart_timers == ("hello-cleanup.timer",)
    assert plan.calendars == ("hourly",)


def test_an_env_change_restarts_the_processes() -> None:
    inv, host = inv_with()
    live = converged_with_jobs(inv, host)
    changed = f.inventory(host, app_=replace(inv.app, env={"APP_GREETING": "changed"}))
    plan = plan_host(changed, host, TARGET, render_host(changed, host, reveal_secrets=True), live)
    assert plan.restart_workers == ("hello-worker.service",)


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_processes_dropped_from_the_inventory_are_retired(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    live = converged_with_jobs(inv, host)
    dropped = f.inventory(host, app_=replace(inv.app, processes=(), timers=()))
    plan = plan_host(dropped, host, TARGET, render_host(dropped, host, reveal_secrets=True), live)
    assert plan.retire_units == tuple(sorted(UNITS)) and plan.workers == ()
    assert not plan.unchanged and not plan.restart_app
    steps = f.whats(dropped, plan, live)
    retire = next(i for i, s in enumerate(steps) if s.startswith("stop and disable hello-cleanup.service"))
    assert next(i for i, s in enumerate(steps) if s.startswith("health check")) < retire < steps.index("record deployed in releases.log")


def test_facts_carry_the_managed_units() -> None:
    doc = ('{"python": "3.11.2", "disk_free_mb": 1, "packages": {}, "user": null, "current": null, "releases": [],'
           ' "venvs": [], "lock": null, "files": {}, "links": {}, "units": {}, "serving": {},'
           ' "managed_units": ["hello-worker.service"]}')
    assert parse_facts(doc).managed_units == ("hello-worker.service",)


# --- logs and verify --------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_logs_read_each_process_and_job_journal(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    sources, _ = host_sources(inv.app, host, proxy=False)
    assert [(s.label, s.units) for s in sources][-2:] == [("hello-worker", ("hello-worker.service",)),
                                                          ("hello-cleanup", ("hello-cleanup.service",))]


def verify_probe(s: dict) -> dict:
    probe = good_probe(s)
    probe["current"]["target"] = "/srv/hello/releases/r1"
    probe["units"]["hello-worker.service"] = {"active": "active", "sub": "running", "enabled": "enabled",
                                              "users": ["hello"], "processes": 1, "cwd": "/srv/hello/releases/r1"}
    probe["units"]["hello-cleanup.timer"] = {"active": "active", "sub": "waiting", "enabled": "enabled",
                                             "users": [], "processes": 0, "cwd": None}
    return probe


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_verify_checks_each_process_and_timer(server: str, proxy: str) -> None:
    inv, host = inv_with(server, proxy)
    s = settings(inv, host)
    assert "app-processes" in applicable(s)
    assert judge("app-processes", s, verify_probe(s)) is None
    cases = [
        (lambda p: p["units"]["hello-worker.service"].update(active="failed", sub="failed"), "hello-worker.service is failed"),
        (lambda p: p["units"]["hello-worker.service"].update(users=["root", "hello"]), "runs processes as root"),
        (lambda p: p["units"]["hello-worker.service"].update(cwd="/srv/hello/releases/r0"),
         "runs from /srv/hello/releases/r0, not the current release /srv/hello/releases/r1"),
        (lambda p: p["units"]["hello-cleanup.timer"].update(enabled="disabled"), "hello-cleanup.timer is not enabled"),
    ]
    for breaks, reason in cases:
        probe = verify_probe(s)
        breaks(probe)
        assert reason in (judge("app-processes", s, probe) or ""), reason
    plain = f.inventory(host)
    assert "app-processes" not in applicable(settings(plain, host))


def test_live_unit_content_is_compared_like_every_config() -> None:
    inv, host = inv_with()
    live = converged_with_jobs(inv, host)
    files = dict(live.files)
    files["/etc/systemd/system/hello-worker.service"] = LiveFile("x", 0o644, "edited by hand")
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), replace(live, files=files))
    assert [c.file.path.name for c in plan.changes] == ["hello-worker.service"]
    assert plan.restart_workers == ("hello-worker.service",) and not plan.restart_app


def test_a_unit_of_another_app_or_by_hand_is_never_overwritten() -> None:
    inv, host = inv_with()
    live = converged_with_jobs(inv, host)
    files = dict(live.files)
    files["/etc/systemd/system/hello-worker.service"] = LiveFile("x", 0o644, "[Service]\nExecStart=/usr/local/bin/mine\n")
    # app hello-x's process "cleanup" would be hello-x-cleanup.service; its marker names it all the same
    files["/etc/systemd/system/hello-cleanup.timer"] = LiveFile("x", 0o644, "# deployer-unit: app=hello-x kind=timer\n[Timer]\n")
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), replace(live, files=files))
    assert plan.problems == ("/etc/systemd/system/hello-worker.service exists and is not deployer's: rename the process or timer",
                             "/etc/systemd/system/hello-cleanup.timer exists and is app hello-x's: rename the process or timer")


# --- apply: the commands sent, against a recorded fake connection ----------------------------


def applier_for(inv, host, plan, live):
    from tests.unit.test_hooks_apply import FakeRemote
    from deployer.run.apply import StepRunner

    remote = FakeRemote(host)
    ctx, steps = f.deploy_steps_of(inv, plan, live)
    return StepRunner(remote, ctx, steps), remote


def run_stages(app, *stages: str) -> None:
    """The planned steps of these stages, in order: what the runner sends for them."""
    for step in app.steps:
        if step.stage in stages:
            app.run_step(step)


def test_apply_restarts_the_processes_after_the_app_and_retires_dropped_units() -> None:
    inv, host = inv_with()
    live = converged_with_jobs(inv, host)
    switched = plan_host(inv, host, replace(TARGET, short_hash="bbbbbbbbbbbb", release_id="20261126T000000Z-bbbbbbbbbbbb"),
                         render_host(inv, host, reveal_secrets=True), live)
    app, remote = applier_for(inv, host, switched, live)
    run_stages(app, "start", "restart", "reload")
    restarts = [c for c in remote.calls if c[:2] == ("systemctl", "restart")]
    assert restarts == [("systemctl", "restart", "hello.service"), ("systemctl", "restart", "hello-worker.service")]

    dropped = f.inventory(host, app_=replace(inv.app, processes=(), timers=()))
    plan = plan_host(dropped, host, TARGET, render_host(dropped, host, reveal_secrets=True), live)
    app, remote = applier_for(dropped, host, plan, live)
    run_stages(app, "retire")
    units = tuple(sorted(UNITS))
    assert remote.calls[:3] == [("systemctl", "disable", "--now", *units),
                                ("rm", "-rf", "--", *(f"/etc/systemd/system/{u}" for u in units)),
                                ("systemctl", "daemon-reload")]


def test_a_failed_deploy_stops_the_processes_it_added_and_restarts_the_others_on_the_old_release() -> None:
    from deployer.run.apply import StepFailed

    inv, host = inv_with(timers=())
    old = f.inventory(host, app_=replace(inv.app, processes=()))
    live = replace(converged(old, host), managed_units=())
    plan = plan_host(inv, host, replace(TARGET, short_hash="bbbbbbbbbbbb", release_id="20261126T000000Z-bbbbbbbbbbbb"),
                     render_host(inv, host, reveal_secrets=True), live)
    assert plan.enable_units == ("hello-worker.service",)
    app, remote = applier_for(inv, host, plan, live)
    app.live, app.undo = True, [cmd.restore_files([c.file.path for c in plan.changes])]
    assert app.recover(StepFailed("health", "503")) == "rolled-back"
    stop = remote.calls.index(("systemctl", "disable", "--now", "hello-worker.service"))
    restore = next(i for i, c in enumerate(remote.calls) if c[:2] == ("sh", "-c") and ".deployer-old" in c[2] and "mv -f" in c[2])
    assert stop < restore  # stopped while its unit file is still there
    assert ("systemctl", "restart", "hello-worker.service") not in remote.calls


def test_the_gate_fails_a_process_that_did_not_stay_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from deployer.run import apply

    inv, host = inv_with()
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), facts())
    app, remote = applier_for(inv, host, plan, facts())
    release = f"/srv/hello/releases/{plan.release_id}"
    monkeypatch.setattr(apply, "WORKER_SETTLE", 0)

    def now(pid: int):  # what the host answers on the second look
        doc = {"python": "3.11.2", "disk_free_mb": 1, "packages": {}, "user": None, "current": None, "releases": [],
               "venvs": [], "lock": None, "files": {}, "links": {},
               "units": {"hello-worker.service": {"active": "active", "enabled": "enabled", "pid": pid}},
               "serving": {"hello-worker.service": release} if pid else {}}
        remote.fails = lambda argv: (0, json.dumps(doc))

    seen = replace(facts(), units={"hello-worker.service": Unit("active", "enabled", 10)})
    now(10)
    apply.settle_workers(remote, app.ctx, seen)  # same pid, same release: up
    for pid in (11, 0):  # restarted by Restart=, or gone
        now(pid)
        with pytest.raises(apply.StepFailed, match="hello-worker.service did not stay up"):
            apply.settle_workers(remote, app.ctx, seen)
