"""Desired state vs. facts -> what a deploy must do on one host. Pure.

The planner decides; ``core/steps.py`` turns a plan into the commands sent and the
runner (``run/apply.py``) only executes them. ``deployer plan`` prints those same
steps, so a dry run cannot take a branch the real deploy would not.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

from deployer.core import jobs
from deployer.core.facts import Facts
from deployer.core.layout import Layout
from deployer.config.model import App, Hook, Host, Inventory
from deployer.core.render import RenderedFile, app_units, proxy_service
from deployer.secret import Secret, mask_text
from deployer.stacks import Check, Link, proxy_of, server_of

MIN_PYTHON = (3, 9)
MIN_FREE_MB = 200
BASE_PACKAGES = ("python3", "python3-venv", "tar")


def required_packages(host: Host) -> tuple[str, ...]:
    """Debian packages this host's server and proxy need."""
    return BASE_PACKAGES + proxy_of(host).packages + server_of(host).packages


def required_links(app: App, host: Host) -> tuple[Link, ...]:
    """The links the proxy needs for this app and server (site enabled, modules loaded)."""
    return proxy_of(host).links(app, host, server_of(host))


def service_units(app: App, host: Host) -> tuple[str, ...]:
    """Every unit whose state the deploy checks: the app's units, the proxy, then the processes and timers."""
    return app_units(app, host) + (proxy_service(host),) + tuple(j.path.name for j in jobs.job_files(app))


def process_marker(app: App, host: Host) -> tuple[str, ...]:
    """How to find the server's processes no unit of its own holds (mod_wsgi's daemons, by display-name)."""
    return server_of(host).process_markers(app)


@dataclass(frozen=True)
class Change:
    file: RenderedFile
    old: str | None  # live content; None when absent

    def diff(self, secrets: tuple = ()) -> str:
        """A unified diff against the live file, current secret values masked.

        A secret file (env file, TLS key, anything rendered with a secret) shows only
        its size: masking cannot catch a key's lines nor the old values read back
        from the host, so no line of it, old or new, is ever shown.
        """
        if self.file.secret:
            state = "new" if self.old is None else "changed"
            return f"{self.file.path}: {state} (secret, {len(self.file.content.encode('utf-8'))} bytes)\n"
        old = mask_text(self.old, secrets) if self.old is not None else ""
        new = mask_text(self.file.content, secrets)
        lines = difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"{self.file.path} (live)" if self.old is not None else "/dev/null",
            tofile=f"{self.file.path} (new)",
        )
        return "".join(lines)


@dataclass(frozen=True)
class PlannedHook:
    """A hook this host will run, and how ``plan`` shows it (secret values masked)."""

    stage: str  # before_switch | after_switch | after_rollback
    hook: Hook
    shown: str
    once: bool = False  # run_once: this host runs it on behalf of every host


def planned_hooks(stage: str, hooks: tuple[Hook, ...], secrets: tuple[Secret, ...], *, once: bool = False) -> tuple[PlannedHook, ...]:
    return tuple(PlannedHook(stage, h, mask_text(str(h), secrets), once) for h in hooks)


def deploy_hooks(app: App, switch: bool) -> tuple[PlannedHook, ...]:
    """Hooks run around a release switch (none for a config-only change); after_rollback only if it rolls back.

    run_once hooks are not here: ``assign_run_once`` gives them to one host.
    """
    if not switch:
        return ()
    secrets = tuple(app.secrets.values())
    each_host = tuple(h for h in app.hooks.before_switch if not h.run_once)
    return (planned_hooks("before_switch", each_host, secrets)
            + planned_hooks("after_switch", app.hooks.after_switch, secrets)
            + planned_hooks("after_rollback", app.hooks.after_rollback, secrets))


def rollback_hooks(app: App) -> tuple[PlannedHook, ...]:
    """``deployer rollback``: after_rollback hooks run in the release returned to."""
    return planned_hooks("after_rollback", app.hooks.after_rollback, tuple(app.secrets.values()))


@dataclass(frozen=True)
class HostPlan:
    host: Host
    layout: Layout
    release_id: str
    previous: str | None
    req_hash: str  # the venv the release links to
    upload_release: bool
    build_venv: bool
    install_packages: tuple[str, ...]
    create_user: bool
    changes: tuple[Change, ...]
    links: tuple[Link, ...]  # links to create
    enable_units: tuple[str, ...]
    services: tuple[str, ...]  # the app's .service units (restarted on a new release)
    daemons: tuple[str, ...]  # mod_wsgi: process markers of the app's daemons (signalled on a new release)
    switch: bool
    restart_app: bool
    reload_proxy: bool
    problems: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())
    hooks: tuple[PlannedHook, ...] = ()
    once_leader: str | None = None  # another host runs the run_once hooks; wait for them before going live
    workers: tuple[str, ...] = ()  # app.processes' units: gated with the app's services
    restart_workers: tuple[str, ...] = ()  # restarted (SIGTERM, TimeoutStopSec) together with the app
    restart_timers: tuple[str, ...] = ()  # timers whose unit changed: re-armed
    retire_units: tuple[str, ...] = ()  # process and timer units the inventory dropped: removed once healthy
    calendars: tuple[str, ...] = ()  # OnCalendar values, checked with systemd-analyze calendar

    def stage_hooks(self, stage: str, *, once: bool | None = None) -> tuple[PlannedHook, ...]:
        return tuple(h for h in self.hooks if h.stage == stage and (once is None or h.once == once))

    @property
    def unchanged(self) -> bool:
        return not (self.upload_release or self.build_venv or self.install_packages or self.create_user
                    or self.changes or self.links or self.enable_units or self.switch
                    or self.restart_app or self.reload_proxy or self.restart_workers or self.restart_timers
                    or self.retire_units)

    @property
    def units_changed(self) -> bool:
        return any(c.file.check == Check.SYSTEMD for c in self.changes)


@dataclass(frozen=True)
class Target:
    """What should run: from the artifact built on the controller."""

    release_id: str
    short_hash: str
    req_hash: str
    python: str


def plan_host(inventory: Inventory, host: Host, target: Target, files: tuple[RenderedFile, ...], facts: Facts,
              *, rollback: bool = False) -> HostPlan:
    """``rollback``: returning to ``target``, so after_rollback hooks run there instead of the deploy hooks."""
    app = inventory.app
    layout = Layout.of(app, host)
    problems = host_problems(app, layout, target, facts) + foreign_units(app, files, facts)

    existing = next((r for r in facts.releases if r.id.endswith("-" + target.short_hash)), None)
    release_id = existing.id if existing else target.release_id
    previous = facts.current

    changes = changed_files(files, facts)
    links = tuple(link for link in required_links(app, host) if facts.links.get(str(link.path)) != link.target)

    units = app_units(app, host)
    proxy = proxy_service(host)
    mine = jobs.units_of(app.name, files)  # from the files: a rollback gets the processes of its release
    enable_units = tuple(
        u for u in units + (proxy,) + mine.enabled
        if facts.units.get(u) is None or facts.units[u].enabled != "enabled" or facts.units[u].active != "active"
    )
    switch = previous != release_id
    release_path = str(layout.release(release_id))
    services = list(server_of(host).services(app))
    markers = process_marker(app, host)
    restart_app, reload_proxy = restarts(app, host, changes, links, facts, release_path, switch, mine.all)
    venv_present = target.req_hash in facts.venvs
    restart_workers, restart_timers = job_restarts(mine, changes, facts, switch, release_path, layout)
    return HostPlan(
        host=host,
        layout=layout,
        release_id=release_id,
        previous=previous,
        req_hash=target.req_hash,
        upload_release=existing is None,
        build_venv=not venv_present,
        install_packages=facts.missing_packages(),
        create_user=facts.user is None,
        changes=tuple(changes),
        links=links,
        enable_units=enable_units,
        services=tuple(services),
        daemons=markers,
        switch=switch,
        restart_app=restart_app,
        reload_proxy=reload_proxy,
        problems=tuple(problems),
        hooks=rollback_hooks(app) if rollback else deploy_hooks(app, switch),
        workers=mine.processes,
        restart_workers=restart_workers,
        restart_timers=restart_timers,
        retire_units=tuple(u for u in facts.managed_units if u not in mine.all),
        calendars=mine.calendars,
    )


def restarts(app: App, host: Host, changes: list[Change], links: tuple[Link, ...], facts: Facts,
             release_path: str, switch: bool, job_units: tuple[str, ...]) -> tuple[bool, bool]:
    """(restart the app, reload the proxy): what the changes, the switch and the running processes call for."""
    layout = Layout.of(app, host)
    server_files = {spec.path for spec in server_of(host).files(app, host, proxy_of(host))}  # uwsgi.ini, wsgi.py
    app_changed = any(
        c.file.path == layout.env_file or c.file.path in server_files
        or (c.file.check == Check.SYSTEMD and c.file.path.name not in job_units)
        for c in changes
    )
    services = server_of(host).services(app)
    markers = process_marker(app, host)
    stale = any(facts.serving.get(u) not in (None, release_path) for u in (*services, *markers))
    proxy = proxy_service(host)
    proxy_running = proxy in facts.units and facts.units[proxy].active == "active"
    # mod_wsgi: Apache running without the app's daemons is broken; a reload starts them.
    daemons_missing = proxy_running and any(m not in facts.serving for m in markers)
    reload_proxy = (
        any(c.file.check == proxy_of(host).check or c.file.path.parent.name == "tls" for c in changes)
        or bool(links)
        or daemons_missing
    )
    # mod_wsgi: a reload or a start of Apache restarts the daemons anyway; else signal just them.
    restart_app = (switch or app_changed or stale) and (
        bool(services) or (bool(markers) and proxy_running and not reload_proxy))
    return restart_app, reload_proxy


def host_problems(app: App, layout: Layout, target: Target, facts: Facts) -> list[str]:
    """Why this host cannot take the release at all: its Python, its disk, a root app user, a lock."""
    problems = []
    if facts.python_version < MIN_PYTHON:
        problems.append(f"python3 on host is {facts.python}; {'.'.join(map(str, MIN_PYTHON))}+ needed")
    if ".".join(map(str, facts.python_version)) != target.python:
        problems.append(f"python3 on host is {facts.python} but wheels were built for {target.python}")
    if facts.disk_free_mb < MIN_FREE_MB:
        problems.append(f"only {facts.disk_free_mb} MB free under {layout.app_root}; {MIN_FREE_MB} MB needed")
    if facts.user is not None and facts.user.get("uid") == 0:
        problems.append(f"user {app.user} is root: the app must run as an unprivileged user")
    if facts.lock is not None:
        problems.append("locked")
    return problems


def changed_files(files: tuple[RenderedFile, ...], facts: Facts) -> list[Change]:
    """The rendered files whose content or mode differs from the live one (or that the host lacks)."""
    changes = []
    for file in files:
        live = facts.files.get(str(file.path))
        if live is None or live.content != file.content or live.mode != file.mode:
            changes.append(Change(file, live.content if live else None))
    return changes


def foreign_units(app: App, files: tuple[RenderedFile, ...], facts: Facts) -> list[str]:
    """A process or timer unit path the host already has for something else (another app's, or hand-made)."""
    out = []
    for name in jobs.units_of(app.name, files).all:
        live = facts.files.get(str(jobs.SYSTEMD_DIR / name))
        if live is not None and jobs.kind_of(app.name, live.content) is None:
            owner = jobs.MARKER_RE.search(live.content)
            whose = f"app {owner.group(1)}'s" if owner else "not deployer's"
            out.append(f"{jobs.SYSTEMD_DIR / name} exists and is {whose}: rename the process or timer")
    return out


def job_restarts(mine: jobs.JobUnits, changes: list[Change], facts: Facts, switch: bool, release_path: str,
                 layout: Layout) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(processes, timers) to restart: every process on a switch or env change, else those changed or stale.

    A process not running is started by ``enable --now`` instead (it is in enable_units).
    """
    changed = {c.file.path.name for c in changes if c.file.check == Check.SYSTEMD}
    env_changed = any(c.file.path == layout.env_file for c in changes)
    running = lambda u: u in facts.units and facts.units[u].active == "active"  # noqa: E731
    workers = tuple(u for u in mine.processes if running(u) and (
        switch or env_changed or u in changed or facts.serving.get(u) not in (None, release_path)))
    timers = tuple(t for t in mine.timers if running(t) and (t in changed or t.replace(".timer", ".service") in changed))
    return workers, timers


def assign_run_once(app: App, plans: dict[str, HostPlan], order: list[str]) -> dict[str, HostPlan]:
    """run_once hooks go to the first host in ``order`` that switches and can; every other switching host waits for them."""
    once = tuple(h for h in app.hooks.before_switch if h.run_once)
    able = [name for name in order if plans[name].switch and not plans[name].problems]
    if not once or not able:
        return plans
    leader = able[0]
    out = dict(plans)
    lead = plans[leader]
    out[leader] = replace(lead, hooks=planned_hooks("before_switch", once, tuple(app.secrets.values()), once=True) + lead.hooks)
    for name in order:
        if name != leader and plans[name].switch:
            out[name] = replace(plans[name], once_leader=leader)
    return out
