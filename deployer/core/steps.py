"""A host's plan as the ordered commands a deploy or rollback sends. Pure.

The planner (``plan.py``) decides *whether* (upload? switch? restart?); this module
turns that into *what is sent*: each ``Step`` holds the argv it runs. The runner
(``run/apply.py``) sends exactly these, in this order, and ``deployer plan`` prints
them, so a dry run shows what the deploy does. Two things only the run knows are
left as markers the runner fills in: where uploads land (``STAGING``, the private
temp dir made at run time) and the clock (``NOW``, in log records and hook logs).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path, PurePosixPath

from deployer.config.model import Host, Inventory
from deployer.core import commands as cmd
from deployer.core.facts import Facts, Release
from deployer.core import jobs
from deployer.core.layout import Layout, config_links
from deployer.core.outcomes import LogResult
from deployer.core.plan import HostPlan, PlannedHook
from deployer.core.release_env import ReleaseEnv, in_release, logged, unit_name
from deployer.core.render import RenderedFile, app_units, proxy_service, sandbox_properties
from deployer.secret import Secret, mask_text
from deployer.stacks import Check, proxy_of, server_of
from deployer.stacks.base import SYSTEMD_DIR

STAGING = PurePosixPath("/tmp/deployer.XXXXXXXX")  # the upload dir; the runner puts the real one in
NOW = "@NOW@"  # the UTC time the step runs, %Y-%m-%dT%H:%M:%SZ
HEALTH_DEADLINE = 30.0
LONG = 600  # seconds: apt and venv builds
SLOW = 120  # restarts and reloads
VENV_UPLOAD = "venv.tar.gz"


class Role(Enum):
    """How the runner treats a step; ``RUN`` is the plain case."""

    RUN = "run"  # send argv; a failure fails the host (and recovers it)
    CHECK = "check"  # a config checker: on failure the configs go back before anything reloaded
    HOOK = "hook"  # a hook: output streamed, failure names the hook
    SOFT_HOOK = "soft-hook"  # rollback's after_rollback hooks: a failure is reported, the rollout goes on
    ONCE_DONE = "once-done"  # no argv: the run_once hooks succeeded, waiting hosts may go on
    ONCE_WAIT = "once-wait"  # no argv: wait for the run_once hooks on another host
    GATE = "gate"  # the health gate: serving release, then argv (health), then verify
    QUIET = "quiet"  # best effort: its failure must not hide anything
    DAEMON = "daemon"  # recovery: restart mod_wsgi daemons, best effort
    FALLBACK = "fallback"  # recovery: only when a DAEMON step failed
    PROBE = "probe"  # recovery: health again; decides rolled-back vs rollback-unhealthy


@dataclass(frozen=True)
class Upload:
    """A controller file (or bytes) put at ``STAGING / name`` before the step runs."""

    name: str
    source: Path | bytes

    @property
    def path(self) -> PurePosixPath:
        return STAGING / self.name


@dataclass(frozen=True)
class Step:
    what: str  # for people: "restart hello.service"
    why: str  # why the plan has it
    argv: cmd.Command | None  # None only for ONCE_DONE / ONCE_WAIT
    live: bool = False  # changes something a running service reads or is
    role: Role = Role.RUN
    stage: str = ""  # names the step in errors: "configs: ..."
    timeout: float | None = None
    uploads: tuple[Upload, ...] = ()
    undo: cmd.Command | None = None  # once this ran, recovery sends this (newest first)
    hook: PlannedHook | None = None
    say: str = ""  # the progress line shown as it starts, if any
    explain: bool = False  # a failure reads the tail of the app's log (units that start or restart)
    unit: str = ""  # hooks: the transient unit it runs as


@dataclass(frozen=True)
class Payload:
    """What a deploy sends from the controller; None: already on the host (a rollback)."""

    app_tarball: Path | None = None
    venv_tarball: Path | None = None
    venv_argv: cmd.Command = ()  # builds the venv from ``VENV_UPLOAD`` (artifact.venv.venv_command)


@dataclass(frozen=True)
class Operator:
    """Who runs it, for the lock and the release log."""

    user: str
    controller: str
    command: str = "deploy"  # deploy | rollback


@dataclass(frozen=True)
class Context:
    """What the steps of one host are made from: its plan, the files render made for it, who runs it."""

    inventory: Inventory
    plan: HostPlan
    files: tuple[RenderedFile, ...]
    operator: Operator

    @property
    def layout(self) -> Layout:
        return self.plan.layout

    @property
    def host(self) -> Host:
        return self.plan.host


# -- prepare: nothing live ---------------------------------------------------


def prepare_steps(ctx: Context, payload: Payload) -> list[Step]:
    plan, app, layout = ctx.plan, ctx.inventory.app, ctx.layout
    out = []
    if plan.install_packages:
        out.append(Step(f"install packages: {' '.join(plan.install_packages)}", "the stack needs them",
                        cmd.apt_install(plan.install_packages), stage="packages", timeout=LONG,
                        say=f"installing {' '.join(plan.install_packages)}"))
    if plan.create_user:
        out.append(Step(f"create system user {app.user}", "the app runs as it", cmd.create_user(app.user, layout.app_root),
                        stage="user"))
    in_shared, in_release = config_links(app, layout)
    out.append(Step("prepare the release, venv, shared and state dirs", "always: owners and modes are kept right",
                    cmd.prepare_dirs(layout, app.user, ctx.host.ssh_user, app.shared, in_shared), stage="dirs"))
    if plan.build_venv:
        tree = Upload(VENV_UPLOAD, payload.venv_tarball)
        out.append(Step("build virtualenv offline from uploaded wheels", f"no venv {plan.req_hash} on the host",
                        payload.venv_argv, stage="venv", timeout=LONG, uploads=(tree,), say="building virtualenv"))
    if plan.upload_release:
        tarball = Upload("app.tar.gz", payload.app_tarball)
        out.append(Step(f"upload release {plan.release_id}", "new code", stage="release", uploads=(tarball,),
                        say=f"uploading release {plan.release_id}",
                        argv=cmd.unpack_release(layout, plan.release_id, tarball.path, plan.req_hash, app.shared, in_release)))
    else:
        out.append(Step(f"release {plan.release_id} already on host: link its venv", "same code as a release there",
                        cmd.relink_venv(layout, plan.release_id, plan.req_hash), stage="release"))
        out.append(Step(f"clear a failure mark on {plan.release_id}", "it is used again",
                        cmd.clear_bad(layout, plan.release_id), stage="release"))
    return out


# -- hooks -------------------------------------------------------------------


def release_env(ctx: Context, release_id: str, env_file: PurePosixPath) -> ReleaseEnv:
    return ReleaseEnv(ctx.layout.release(release_id), ctx.inventory.app.user, env_file,
                      sandbox_properties(ctx.inventory, ctx.host))


def hook_step(ctx: Context, planned: PlannedHook, env: ReleaseEnv, role: Role = Role.HOOK) -> Step:
    """A hook as a transient unit of the app user, its output kept in <release>/.deployer/hooks.log."""
    app, stage, hook = ctx.inventory.app.name, planned.stage, planned.hook
    unit = unit_name(app, stage.replace("_", "-"))
    log = env.release_dir / ".deployer" / "hooks.log"
    header = f"== {NOW} {stage} ({unit}): {planned.shown}"
    argv = logged(in_release(env, hook.argv, unit=unit, timeout=hook.timeout, description=f"{app} {stage} hook"), log, header)
    once = " once, for every host" if planned.once else ""
    return Step(f"run {stage} hook{once}: {planned.shown}", f"hooks.{stage} in the inventory", argv,
                live=stage != "before_switch", role=role, stage=stage, timeout=hook.timeout, hook=planned,
                say=f"{stage} hook{' (run_once)' if planned.once else ''}: {planned.shown}", unit=unit)


def before_switch_steps(ctx: Context) -> list[Step]:
    """run_once hooks (or the wait for them), then this host's own, in the env the new release runs with.

    The env file goes into the release's config snapshot first: the live one may be
    older or (on a first deploy) absent.
    """
    plan, layout = ctx.plan, ctx.layout
    once = plan.stage_hooks("before_switch", once=True)
    own = plan.stage_hooks("before_switch", once=False)
    out = []
    env = None
    if once or own:
        env_file = next(f for f in ctx.files if f.path == layout.env_file)
        snapshot = layout.release(plan.release_id) / ".deployer" / "config" / str(env_file.path).lstrip("/")
        staged = Upload("hook-env", env_file.content.encode("utf-8"))
        out.append(Step("stage the new env file for the hooks", "before_switch hooks see the new release's env",
                        cmd.install_files([(f"{env_file.mode:04o}", env_file.owner, env_file.group, staged.path, snapshot)]),
                        stage="hooks", uploads=(staged,)))
        env = release_env(ctx, plan.release_id, snapshot)
    out += [hook_step(ctx, h, env) for h in once]
    if once:
        out.append(Step("let the other hosts go on", "the run_once hooks succeeded", None, role=Role.ONCE_DONE, stage="run_once"))
    if plan.once_leader:
        out.append(Step(f"wait for the run_once hooks on {plan.once_leader}", "they run once for every host", None,
                        role=Role.ONCE_WAIT, stage="run_once", say=f"waiting for the run_once hooks on {plan.once_leader}"))
    out += [hook_step(ctx, h, env) for h in own]
    return out


# -- configs -----------------------------------------------------------------


def config_steps(ctx: Context) -> list[Step]:
    """Changed configs in place with a backup, links enabled, then the real checkers; always the snapshot."""
    plan, layout = ctx.plan, ctx.layout
    snapshot = layout.release(plan.release_id) / ".deployer" / "config"
    changed = {c.file.path for c in plan.changes}
    uploads, entries = [], []
    for index, file in enumerate(ctx.files):
        staged = Upload(f"file{index}", file.content.encode("utf-8"))
        uploads.append(staged)
        entries.append((f"{file.mode:04o}", file.owner, file.group, staged.path, snapshot / str(file.path).lstrip("/")))
        if file.path in changed:
            entries.append((f"{file.mode:04o}", file.owner, file.group, staged.path, file.path))
    targets = [c.file.path for c in plan.changes]
    install = cmd.install_files(entries)
    if not targets and not plan.links:
        return [Step("keep the release's config snapshot", "rollback reinstalls it", install, stage="configs",
                     uploads=tuple(uploads))]
    out = []
    if targets:
        out.append(Step(f"back up {len(targets)} config file(s)", "restored if anything fails",
                        cmd.backup_files(targets), stage="configs", undo=cmd.restore_files(targets)))
    names = ", ".join(f"{'update' if c.old is not None else 'create'} {c.file.path}" for c in plan.changes)
    out.append(Step(f"install configs{': ' + names if names else ''} (and the release's snapshot)", "they differ from the live ones",
                    install, live=True, stage="configs", uploads=tuple(uploads),
                    say=f"installing {len(targets)} config file(s)"))
    out += [Step(f"enable {link.path}", "the proxy needs it", link.enable, live=True, stage="configs",
                 undo=("rm", "-f", str(link.path))) for link in plan.links]
    return out + validate_steps(ctx)


def validate_steps(ctx: Context) -> list[Step]:
    """Units as they will run this release (``current`` may not point at it yet), then the proxy's checker."""
    plan, layout = ctx.plan, ctx.layout
    proxy = proxy_of(ctx.host)
    checks = {c.file.check for c in plan.changes} | ({proxy.check} if plan.links else set())
    out = []
    if Check.SYSTEMD in checks:
        release = str(layout.release(plan.release_id))
        units = [Upload(f"verify/{c.file.path.name}", c.file.content.replace(str(layout.current), release).encode())
                 for c in plan.changes if c.file.check == Check.SYSTEMD]
        out.append(Step("verify the units with systemd-analyze", "unit files changed",
                        ("systemd-analyze", "verify", *(str(u.path) for u in units)), role=Role.CHECK, stage="validate",
                        uploads=tuple(units)))
        if plan.calendars:  # verify only warns about an OnCalendar it cannot parse
            out.append(Step("check the timers' OnCalendar", "timer units changed",
                            ("systemd-analyze", "calendar", "--", *plan.calendars), role=Role.CHECK, stage="validate"))
    if proxy.check in checks:
        out.append(Step(f"check the {ctx.host.proxy} config", "its config changed", proxy.check_argv, role=Role.CHECK,
                        stage="validate"))
    return out


# -- going live --------------------------------------------------------------


def live_steps(ctx: Context) -> list[Step]:
    """daemon-reload, switch, then sockets before services, the rest, and the proxy last."""
    plan, layout, host = ctx.plan, ctx.layout, ctx.host
    out = []
    if plan.units_changed:
        out.append(Step("reload systemd", "unit files changed", cmd.systemctl("daemon-reload"), live=True, stage="reload"))
    if plan.switch:
        out.append(Step(f"switch current: {plan.previous or '(none)'} -> {plan.release_id}", "a new release",
                        cmd.switch_current(layout, plan.release_id), live=True, stage="switch",
                        say=f"switching to {plan.release_id}"))
    own_sockets = server_of(host).sockets(ctx.inventory.app)
    sockets = [u for u in plan.enable_units if u in own_sockets]
    others = [u for u in plan.enable_units if u not in own_sockets]
    if sockets:
        out.append(Step(f"enable and start {' '.join(sockets)}", "not enabled or not running",
                        cmd.systemctl("enable", "--now", *sockets), live=True, stage="start", explain=True))
    if plan.restart_app and plan.services:
        out.append(Step(f"restart {' '.join(plan.services)}", "new release or app config", cmd.systemctl("restart", *plan.services),
                        live=True, stage="restart", timeout=SLOW, explain=True))
    if plan.restart_app:
        out += [Step(f"gracefully restart the {host.server} daemons {marker} (SIGUSR1; {proxy_service(host)} is not reloaded)",
                     "new release or app config", cmd.restart_daemons(proxy_service(host), marker), live=True,
                     stage="restart", say=f"gracefully restarting the {marker} daemons", explain=True)
                for marker in plan.daemons]
    out += job_restart_steps(ctx)
    if others:
        out.append(Step(f"enable and start {' '.join(others)}", "not enabled or not running",
                        cmd.systemctl("enable", "--now", *others), live=True, stage="start", timeout=SLOW, explain=True))
    if plan.reload_proxy:  # also after `enable --now`: a proxy already running must load the new site
        out.append(Step(f"reload {proxy_service(host)}", "its config, links or daemons changed", proxy_of(host).reload(),
                        live=True, stage="reload", timeout=SLOW, explain=True))
    return out


def stop_timeout(ctx: Context) -> float:
    """How long a restart of the processes may take: the longest stop_timeout, then a start."""
    return max((p.stop_timeout for p in ctx.inventory.app.processes), default=30) + 90


def job_restart_steps(ctx: Context) -> list[Step]:
    plan, out = ctx.plan, []
    if plan.restart_workers:
        out.append(Step(f"restart {' '.join(plan.restart_workers)} (SIGTERM, then its TimeoutStopSec)", "new release, env or unit",
                        cmd.systemctl("restart", *plan.restart_workers), live=True, stage="restart",
                        timeout=stop_timeout(ctx), say=f"restarting {' '.join(plan.restart_workers)}", explain=True))
    if plan.restart_timers:
        out.append(Step(f"restart {' '.join(plan.restart_timers)}", "their units changed",
                        cmd.systemctl("restart", *plan.restart_timers), live=True, stage="restart", timeout=SLOW, explain=True))
    return out


def retire_steps(ctx: Context) -> list[Step]:
    """Process and timer units the inventory (or the release) no longer has: stopped, disabled, removed once healthy."""
    units = ctx.plan.retire_units
    if not units:
        return []
    return [
        Step(f"stop and disable {' '.join(units)}", "no longer in the inventory", cmd.systemctl("disable", "--now", *units),
             live=True, stage="retire", timeout=stop_timeout(ctx), say=f"removing {' '.join(units)}"),
        Step(f"remove {' '.join(units)}", "no longer in the inventory", cmd.remove_paths(SYSTEMD_DIR / u for u in units),
             live=True, stage="retire"),
        Step("reload systemd", "unit files went away", cmd.systemctl("daemon-reload"), live=True, stage="retire"),
        Step(f"forget {' '.join(units)}' failures", "they are gone", cmd.systemctl("reset-failed", *units), role=Role.QUIET,
             stage="retire"),
    ]


def health_command(ctx: Context) -> cmd.Command:
    """Health through the proxy on the host itself: HTTPS when tls, the primary name as Host."""
    host = ctx.host
    scheme, port = ("https", host.https_port) if host.tls else ("http", host.http_port)
    return cmd.health_check(scheme, port, host.server_name, ctx.inventory.app.health, HEALTH_DEADLINE)


def health_url(ctx: Context) -> str:
    host = ctx.host
    scheme, port = ("https", host.https_port) if host.tls else ("http", host.http_port)
    return f"{scheme}://{host.server_name}:{port}{ctx.inventory.app.health}"


def gate_steps(ctx: Context) -> list[Step]:
    out = [Step(f"health check {health_url(ctx)}", "the new release must serve and answer 2xx (then verify)",
                health_command(ctx), role=Role.GATE, stage="health", timeout=HEALTH_DEADLINE + 15,
                say=f"health check {health_url(ctx)}")]
    targets = [c.file.path for c in ctx.plan.changes]
    if targets:
        out.append(Step("drop the config backups", "the gate passed", cmd.drop_backups(targets), role=Role.QUIET, stage="configs"))
    return out


# -- after -------------------------------------------------------------------


def record_step(ctx: Context, result: LogResult) -> Step:
    plan, who = ctx.plan, ctx.operator
    record = {"release": plan.release_id, "previous": plan.previous, "result": result, "time": NOW,
              "user": who.user, "controller": who.controller, "command": who.command}
    return Step(f"record {result} in releases.log", "status and releases read it", cmd.append_log(ctx.layout, record),
                role=Role.QUIET, stage="record")


def after_facts(facts: Facts, plan: HostPlan) -> Facts:
    """The host's releases and venvs as they are once this plan ran: the release is there, good and current."""
    releases = [r for r in facts.releases if r.id != plan.release_id] + [Release(plan.release_id, False, plan.req_hash)]
    venvs = tuple(facts.venvs) + (() if plan.req_hash in facts.venvs else (plan.req_hash,))
    return replace(facts, releases=tuple(releases), venvs=venvs, current=plan.release_id)


def prune_steps(ctx: Context, facts: Facts) -> list[Step]:
    """Old releases, then venvs no release left links to, decided from the facts the plan was made from."""
    after = after_facts(facts, ctx.plan)
    doomed = prune_releases(after, ctx.inventory.app.keep_releases)
    out = []
    if doomed:
        out.append(Step(f"prune {len(doomed)} old release(s): {' '.join(doomed)}", f"keep_releases: {ctx.inventory.app.keep_releases}",
                        cmd.remove_paths(ctx.layout.release(r) for r in doomed), stage="prune",
                        say=f"pruning {len(doomed)} old release(s)"))
    used = {r.venv for r in after.releases if r.id not in doomed}
    unused = [v for v in after.venvs if v not in used]
    if unused:
        out.append(Step(f"prune {len(unused)} unused venv(s): {' '.join(unused)}", "no release links to them",
                        cmd.remove_paths(ctx.layout.venvs / v for v in unused), stage="prune"))
    return out


def prune_releases(facts: Facts, keep: int) -> list[str]:
    """Releases to delete: never current, never the newest good one before it, keep ``keep`` good ones.

    Bad releases do not count towards ``keep`` (Capistrano #1907 deleted the last good one that way).
    """
    ordered = sorted(facts.releases, key=lambda r: r.id, reverse=True)
    current = facts.current
    protected = {current}
    older_good = [r.id for r in ordered if not r.bad and current is not None and r.id < current]
    if older_good:
        protected.add(older_good[0])
    kept_good = 0
    doomed = []
    for release in ordered:
        if release.id in protected:
            kept_good += 0 if release.bad else 1
            continue
        if release.bad or kept_good >= keep:
            doomed.append(release.id)
        else:
            kept_good += 1
    return doomed


# -- whole rollouts ------------------------------------------------------------


def deploy_steps(ctx: Context, facts: Facts, payload: Payload) -> tuple[Step, ...]:
    """Every step of a deploy, in the order the runner sends them (the lock around them is the runner's).

    None for a host that is unchanged, or has problems (it fails its preflight under the lock).
    """
    if ctx.plan.unchanged or ctx.plan.problems:
        return ()
    live_env = release_env(ctx, ctx.plan.release_id, ctx.layout.env_file)
    return tuple(
        prepare_steps(ctx, payload) + before_switch_steps(ctx) + config_steps(ctx) + live_steps(ctx) + gate_steps(ctx)
        + [hook_step(ctx, h, live_env) for h in ctx.plan.stage_hooks("after_switch")]
        + retire_steps(ctx) + [record_step(ctx, LogResult.DEPLOYED)] + prune_steps(ctx, facts))


def rollback_steps(ctx: Context, facts: Facts) -> tuple[Step, ...]:
    """``deployer rollback``: the same machinery, nothing uploaded; after_rollback hooks in the release returned to."""
    live_env = release_env(ctx, ctx.plan.release_id, ctx.layout.env_file)
    return tuple(
        prepare_steps(ctx, Payload()) + config_steps(ctx) + live_steps(ctx) + gate_steps(ctx)
        + [hook_step(ctx, h, live_env, Role.SOFT_HOOK) for h in ctx.plan.stage_hooks("after_rollback")]
        + retire_steps(ctx) + [record_step(ctx, LogResult.DEPLOYED)] + prune_steps(ctx, facts))


def recovery_steps(ctx: Context, *, reason: str, live: bool, undo: tuple[cmd.Command, ...]) -> tuple[Step, ...]:
    """After a failure: mark the release bad; if anything live changed, undo it and go back to the previous release.

    ``undo``: the undo commands of the steps that ran, newest first. The after_rollback
    hooks and the record (which depends on the PROBE) are the runner's last steps.
    """
    plan, layout, host = ctx.plan, ctx.layout, ctx.host
    out = []
    if plan.release_id != plan.previous:
        out.append(Step(f"mark {plan.release_id} bad", "it failed", cmd.mark_bad(layout, plan.release_id, reason[:500]),
                        role=Role.QUIET))
    if not live:
        return tuple(out)
    ours = jobs.units_of(ctx.inventory.app.name, ctx.files).all
    new_units = [c.file.path.name for c in plan.changes if c.old is None and c.file.path.name in ours]
    if new_units:  # processes and timers this deploy added: stopped before their files go
        out.append(Step(f"stop and disable {' '.join(new_units)}", "this deploy added them",
                        cmd.systemctl("disable", "--now", *new_units), live=True, role=Role.QUIET))
    out += [Step("undo a config change", "it was part of the failed deploy", u, live=True, role=Role.QUIET) for u in undo]
    if plan.units_changed:
        out.append(Step("reload systemd", "unit files went back", cmd.systemctl("daemon-reload"), live=True, role=Role.QUIET))
    if plan.previous is None:
        return tuple(out + first_deploy_undo(ctx))
    out.append(Step(f"switch current back to {plan.previous}", "the previous release", cmd.switch_current(layout, plan.previous),
                    live=True, role=Role.QUIET))
    if plan.services:
        out.append(Step(f"restart {' '.join(plan.services)}", "back on the previous release",
                        cmd.systemctl("restart", *plan.services), live=True, role=Role.QUIET))
    workers = [u for u in plan.workers if u not in new_units]
    if workers:
        out.append(Step(f"restart {' '.join(workers)}", "back on the previous release and unit files",
                        cmd.systemctl("restart", *workers), live=True, role=Role.QUIET))
    # mod_wsgi with Apache's config as it was: new daemons suffice (no reload, no 503s); else reload
    daemons = bool(plan.daemons) and not undo
    if daemons:
        out += [Step(f"restart the {marker} daemons", "back on the previous release",
                     cmd.restart_daemons(proxy_service(host), marker), live=True, role=Role.DAEMON) for marker in plan.daemons]
    out.append(Step(f"reload {proxy_service(host)}", "its config went back", proxy_of(host).reload(), live=True,
                    role=Role.FALLBACK if daemons else Role.QUIET))
    out.append(Step(f"health check {health_url(ctx)}", "is the previous release healthy?", health_command(ctx), role=Role.PROBE))
    return tuple(out)


def first_deploy_undo(ctx: Context) -> list[Step]:
    """No release to go back to: stop the app's units, drop ``current``, reload the proxy without the site."""
    units = app_units(ctx.inventory.app, ctx.host) + ctx.plan.workers + jobs.units_of(ctx.inventory.app.name, ctx.files).timers
    out = []
    if units:
        out.append(Step(f"stop and disable {' '.join(units)}", "nothing to go back to", cmd.systemctl("disable", "--now", *units),
                        live=True, role=Role.QUIET))
    out.append(Step("remove current", "nothing to go back to", ("rm", "-f", str(ctx.layout.current)), live=True, role=Role.QUIET))
    out.append(Step(f"reload {proxy_service(ctx.host)}", "without the site", proxy_of(ctx.host).reload(), live=True, role=Role.QUIET))
    return out


def rollback_hook_steps(ctx: Context, release_id: str) -> tuple[Step, ...]:
    """after_rollback hooks in ``release_id`` (live: the env file the service reads now)."""
    env = release_env(ctx, release_id, ctx.layout.env_file)
    return tuple(hook_step(ctx, h, env, Role.SOFT_HOOK) for h in ctx.plan.stage_hooks("after_rollback"))


def resolve(argv: cmd.Command, staged: dict[str, str], now: str) -> cmd.Command:
    """The argv as sent: planned upload paths replaced by where they landed, ``NOW`` by the time."""
    return tuple(staged.get(a, a).replace(NOW, now) for a in argv)


def shown(step: Step) -> str:
    """One line of ``deployer plan``: what, ``[live]``, and the argv (long scripts shortened)."""
    line = f"{step.what}{' [live]' if step.live else ''}"
    if step.argv is None:
        return line
    argv = tuple(a if len(a) <= 80 or "\n" not in a else f"<script {a.count(chr(10))} lines>" for a in step.argv)
    return f"{line}\n      $ {shlex.join(argv)}"


def plan_lines(steps: tuple[Step, ...], secrets: tuple[Secret, ...]) -> list[str]:
    """What ``deployer plan`` prints for a host's steps, secret values masked (hook argv holds them)."""
    return [mask_text(shown(step), secrets) for step in steps]
