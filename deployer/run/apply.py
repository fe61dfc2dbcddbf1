"""Carry out one host's plan over its connection, with a rollback for every failure.

Stages, in order (Capistrano's fixed, named stages):
  lock -> prepare (nothing live) -> before_switch hooks (run_once ones on one
  host, the others wait for them) -> configs (installed, validated, restored on
  failure) -> go live (switch, restart, reload) -> gate (serving release and
  health) -> after_switch hooks -> record and prune -> unlock (always, also on
  errors and Ctrl-C).
A failure after configs were installed rolls back to the previous release and
its configs, reloads, checks health again and runs the after_rollback hooks.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath

from deployer.core import commands as cmd
from deployer.remote.ssh import CommandFailed, Remote
from deployer.errors import DeployerError
from deployer.core.facts import Facts, drift, facts_command, facts_failure, parse_facts
from deployer.core.failure_log import FailureLog, explain, with_response
from deployer.core.layout import Layout, config_links
from deployer.core.outcomes import DeployStatus, LogResult
from deployer.config.model import Inventory
from deployer.core.plan import HostPlan, PlannedHook, process_marker, required_links, required_packages, service_units
from deployer.artifact.manifest import Artifact
from deployer.artifact.venv import venv_command, venv_tree
from deployer.core.release_env import ReleaseEnv, in_release, logged, run_in_release, unit_name
from deployer.core.render import RenderedFile, app_units, proxy_service, sandbox_properties
from deployer.core import jobs
from deployer.run.failure_report import read_failure_log
from deployer.stacks import Check, proxy_of, server_of
from deployer.stacks.base import SYSTEMD_DIR

HEALTH_DEADLINE = 30.0
SERVING_DEADLINE = 15.0
WORKER_SETTLE = 3.0  # a process must still run, same pid, this long after the gate saw it (RestartSec=2)


class StepFailed(DeployerError):
    """A stage failed; ``log`` is the tail of the log that says why, its cause line also in the message."""

    def __init__(self, stage: str, message: str, log: FailureLog | None = None) -> None:
        cause = f" [cause: {log.cause}]" if log is not None and log.cause and log.cause not in message else ""
        super().__init__(f"{stage}: {message}{cause}")
        self.stage = stage
        self.message = message
        self.log = log


class Cancelled(DeployerError):
    pass


class OnceGate:
    """The outcome of the run_once hooks, shared by every host of one deploy.

    The host that runs them opens the gate (with an error if they, or anything
    before them on that host, failed); the other hosts wait here before anything
    of theirs goes live.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self.error: str | None = None

    def open(self, error: str | None = None) -> None:
        if not self._done.is_set():
            self.error = error
            self._done.set()

    def wait(self, cancel: threading.Event) -> str | None:
        while not self._done.wait(0.2):
            if cancel.is_set():
                raise Cancelled("cancelled")
        return self.error


@dataclass
class HostResult:
    host: str
    status: DeployStatus
    release: str | None
    seconds: float = 0.0
    error: str | None = None
    previous: str | None = None
    log: FailureLog | None = None  # why it failed: the failing unit's (or hook's) last lines and cause

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "status": self.status, "release": self.release,
                "previous": self.previous, "seconds": round(self.seconds, 2), "error": self.error,
                "cause": self.log.cause if self.log else None, "log": self.log.as_dict() if self.log else None}


def gather_facts(remote: Remote, inventory: Inventory, files: tuple[RenderedFile, ...]) -> Facts:
    """One read-only round trip: everything the planner compares against."""
    app, host = inventory.app, remote.host
    layout = Layout.of(app, host)
    command = facts_command(
        layout,
        user=app.user,
        packages=required_packages(host),
        files=tuple(f.path for f in files),
        links=tuple(link.path for link in required_links(app, host)),
        units=service_units(app, host),
        process_markers=process_marker(app, host),
    )
    result = remote.run(command, check=False, mask=False)
    if not result.ok:
        raise DeployerError(f"{host.name}: cannot read host state: {facts_failure(result.code, result.stderr)}")
    try:
        return parse_facts(result.stdout)
    except (ValueError, KeyError, TypeError) as exc:  # never the output itself: it holds the live files
        raise DeployerError(f"{host.name}: cannot read host state: unreadable facts ({type(exc).__name__})") from None


def lock_info(command: str) -> dict[str, object]:
    return {"holder": f"{getpass.getuser()}@{socket.gethostname()}", "pid": os.getpid(), "command": command,
            "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


@dataclass
class Applier:
    remote: Remote
    inventory: Inventory
    plan: HostPlan
    files: tuple[RenderedFile, ...]
    artifact: Artifact | None  # None for a rollback: its release and venv are on the host
    progress: Callable[[str, str], None] = lambda host, message: None
    cancel: threading.Event = field(default_factory=threading.Event)
    command: str = "deploy"
    once: OnceGate | None = None  # shared by the hosts of a deploy with run_once hooks
    verify: Callable[[Remote], str | None] | None = None  # after health: why the host fails verify, or None
    facts: Facts | None = None  # what the plan was made from: read again once the lock is held

    def __post_init__(self) -> None:
        self.layout = self.plan.layout
        self.host = self.plan.host
        self.installed: list[PurePosixPath] = []
        self.links_made: list = []
        self.live = False  # True once anything a running service reads has changed
        self.rollback_error: str | None = None  # an after_rollback hook failed during recover()

    # -- helpers -------------------------------------------------------------

    def say(self, message: str) -> None:
        self.progress(self.host.name, message)

    def run(self, stage: str, argv: cmd.Command, timeout: float | None = None) -> str:
        if self.cancel.is_set():
            raise Cancelled("cancelled")
        try:
            return self.remote.run(argv, timeout=timeout).stdout
        except CommandFailed as exc:
            raise StepFailed(stage, str(exc)) from None

    # -- the rollout ------------------------------------------------------------

    def apply(self) -> HostResult:
        started = time.monotonic()
        plan = self.plan
        result = HostResult(self.host.name, DeployStatus.DEPLOYED, plan.release_id, previous=plan.previous)
        locked = False
        try:
            self.lock()
            locked = True
            self.recheck()
            self.prepare()
            self.before_switch()
            self.install_configs()
            self.go_live()
            self.gate()
            if self.command == "rollback":
                hook_error = self.after_rollback(plan.release_id)
                if hook_error:
                    result.error, result.status = hook_error, DeployStatus.FAILED
            else:
                self.run_hooks(plan.stage_hooks("after_switch"), self.live_env(plan.release_id))
            self.retire()
            self.record(LogResult.DEPLOYED)
            self.prune()
        except LockHeld as exc:
            result.error, result.status = str(exc), DeployStatus.LOCKED
        except (StepFailed, Cancelled, CommandFailed) as exc:
            result.error = str(exc)
            result.log = getattr(exc, "log", None)
            result.status = self.recover(exc) if locked else DeployStatus.FAILED
        except Exception as exc:  # connection lost and the like: still try to leave the host sane
            result.error = f"{type(exc).__name__}: {exc}"
            result.status = self.recover(exc) if locked else DeployStatus.FAILED
        finally:
            if self.once is not None and plan.stage_hooks("before_switch", once=True):
                self.once.open(result.error)  # no-op once opened
            if self.rollback_error:
                result.error = f"{result.error}; {self.rollback_error}"
            if locked:
                self._quiet(cmd.release_lock(self.layout))
            self._quiet_cleanup()
            result.seconds = time.monotonic() - started
        return result

    def lock(self) -> None:
        outcome = self.remote.run(cmd.sh('mkdir -p "$1"', self.layout.state_dir), check=False)
        if not outcome.ok:
            raise StepFailed("lock", outcome.stderr.strip())
        taken = self.remote.run(cmd.take_lock(self.layout, lock_info(self.command)), check=False)
        if not taken.ok:
            raise LockHeld(self.host.name, self.read_lock())

    def recheck(self) -> None:
        """The facts were read and the plan made before the lock: a deploy that finished meanwhile made it stale."""
        if self.facts is None:
            return
        changed = drift(self.facts, gather_facts(self.remote, self.inventory, self.files))
        if changed:
            raise StepFailed("lock", f"the host changed after it was planned ({', '.join(changed)}: another deploy?); "
                                     "nothing was done, run again")

    def read_lock(self) -> str:
        out = self.remote.run(("cat", str(self.layout.state_dir / "lock" / "info")), check=False)
        return out.stdout.strip() or "unknown holder"

    def prepare(self) -> None:
        """Everything that does not touch what runs: packages, user, release, venv."""
        plan, app = self.plan, self.inventory.app
        if plan.problems:
            raise StepFailed("preflight", "; ".join(p for p in plan.problems if p != "locked"))
        if plan.install_packages:
            self.say(f"installing {' '.join(plan.install_packages)}")
            try:
                self.run("packages", cmd.apt_install(plan.install_packages), timeout=600)
            except StepFailed as exc:
                raise StepFailed("packages", f"cannot install {' '.join(plan.install_packages)}: {exc}") from None
        if plan.create_user:
            self.run("user", cmd.create_user(app.user, self.layout.app_root))
        in_shared, in_release = config_links(app, self.layout)
        self.run("dirs", cmd.prepare_dirs(self.layout, app.user, self.host.ssh_user, app.shared, in_shared))
        art = self.artifact
        if plan.build_venv:
            self.say("building virtualenv")
            venv = self.layout.venvs / art.req_hash
            tree = venv_tree(art, venv)
            uploaded = self.remote.upload(tree.tarball, "venv.tar.gz")
            self.run("venv", venv_command(self.layout, art.req_hash, uploaded, tree.sha256, art.python, tree.precompiled),
                     timeout=600)
        if plan.upload_release:
            self.say(f"uploading release {plan.release_id}")
            tarball = self.remote.upload(art.app_tarball, "app.tar.gz")
            self.run("release", cmd.unpack_release(self.layout, plan.release_id, tarball, art.req_hash, app.shared,
                                                      in_release))
        else:
            self.run("release", cmd.relink_venv(self.layout, plan.release_id, plan.req_hash))
            self.run("release", cmd.clear_bad(self.layout, plan.release_id))

    # -- hooks ---------------------------------------------------------------

    def before_switch(self) -> None:
        """run_once hooks (this host runs them for all) or the wait for them, then this host's own.

        They see the env the new release will run with: the env file is put in
        the release's config snapshot first, since the live one may be older or
        (on a first deploy) absent.
        """
        plan = self.plan
        once = plan.stage_hooks("before_switch", once=True)
        own = plan.stage_hooks("before_switch", once=False)
        env = self.release_env(plan.release_id) if once or own else None
        if once:
            self.run_hooks(once, env)
            self.once.open()
        if plan.once_leader:
            self.say(f"waiting for the run_once hooks on {plan.once_leader}")
            error = self.once.wait(self.cancel)
            if error:
                raise StepFailed("run_once", f"the run_once hooks on {plan.once_leader} did not succeed: {error}")
        self.run_hooks(own, env)

    def release_env(self, release_id: str) -> ReleaseEnv:
        """The new release with the env file it will run with, staged into its snapshot."""
        env_file = next(f for f in self.files if f.path == self.layout.env_file)
        snapshot = self.layout.release(release_id) / ".deployer" / "config" / str(env_file.path).lstrip("/")
        staged = self.remote.upload(env_file.content.encode("utf-8"), "hook-env")
        self.run("hooks", cmd.install_files([(f"{env_file.mode:04o}", env_file.owner, env_file.group, staged, snapshot)]))
        return ReleaseEnv(self.layout.release(release_id), self.inventory.app.user, snapshot,
                          sandbox_properties(self.inventory, self.host))

    def live_env(self, release_id: str) -> ReleaseEnv:
        """A release that is live: the env file the app's service reads now."""
        return ReleaseEnv(self.layout.release(release_id), self.inventory.app.user, self.layout.env_file,
                          sandbox_properties(self.inventory, self.host))

    def run_hooks(self, hooks: tuple[PlannedHook, ...], env: ReleaseEnv | None) -> None:
        """Each hook in turn, output streamed with the host name and kept in <release>/.deployer/hooks.log."""
        log = env.release_dir / ".deployer" / "hooks.log" if env else None
        for planned in hooks:
            if self.cancel.is_set():
                raise Cancelled("cancelled")
            stage, hook = planned.stage, planned.hook
            self.say(f"{stage} hook{' (run_once)' if planned.once else ''}: {planned.shown}")
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            app = self.inventory.app.name
            unit = unit_name(app, stage.replace("_", "-"))
            command = logged(in_release(env, hook.argv, unit=unit, timeout=hook.timeout, description=f"{app} {stage} hook"),
                             log, f"== {stamp} {stage} ({unit}): {planned.shown}")
            outcome = run_in_release(self.remote, command, timeout=hook.timeout,
                                     on_line=lambda line, stage=stage: self.say(f"{stage}> {line}"))
            if outcome.code != 0:
                why = f"timed out after {hook.timeout}s" if outcome.timed_out else f"exited {outcome.code}"
                log = explain(f"output of {unit}", outcome.output)
                last = log.cause or (log.lines[-1] if log.lines else "")
                raise StepFailed(stage, f"hook {planned.shown} {why}" + (f": {last}" if last else ""), log)

    def after_rollback(self, release_id: str) -> str | None:
        """Run the after_rollback hooks in the release returned to; the error, if one failed."""
        try:
            self.run_hooks(self.plan.stage_hooks("after_rollback"), self.live_env(release_id))
        except (StepFailed, Cancelled, CommandFailed) as exc:
            return str(exc)
        return None

    # -- configs and going live ---------------------------------------------

    def install_configs(self) -> None:
        """Put changed configs in place with a backup, enable links, then run the real checkers."""
        plan = self.plan
        snapshot = self.layout.release(plan.release_id) / ".deployer" / "config"
        entries = []
        for index, file in enumerate(self.files):
            staged = self.remote.upload(file.content.encode("utf-8"), f"file{index}")
            entries.append((f"{file.mode:04o}", file.owner, file.group, staged, snapshot / str(file.path).lstrip("/")))
            if any(c.file.path == file.path for c in plan.changes):
                entries.append((f"{file.mode:04o}", file.owner, file.group, staged, file.path))
        targets = [c.file.path for c in plan.changes]
        if not targets and not plan.links:
            self.run("configs", cmd.install_files(entries))  # snapshot only
            return
        self.say(f"installing {len(targets)} config file(s)")
        self.run("configs", cmd.backup_files(targets))
        self.installed = targets
        self.live = True  # from here on a failure restores files
        self.run("configs", cmd.install_files(entries))
        for link in plan.links:
            self.run("configs", link.enable)
            self.links_made.append(link)
        try:
            self.validate()
        except StepFailed:
            # Nothing was reloaded yet: put the old files back and nothing live has changed.
            self.undo_configs()
            self.live = False
            raise

    def validate(self) -> None:
        proxy = proxy_of(self.host)
        checks = {c.file.check for c in self.plan.changes} | ({proxy.check} if self.plan.links else set())
        if Check.SYSTEMD in checks:
            # Verify the units as they will run this release: `current` may not point at it
            # yet (or at all, on a first deploy), and verify checks that ExecStart exists.
            release = str(self.layout.release(self.plan.release_id))
            staged = [
                self.remote.upload(c.file.content.replace(str(self.layout.current), release).encode(), f"verify/{c.file.path.name}")
                for c in self.plan.changes if c.file.check == Check.SYSTEMD
            ]
            self.run("validate", ("systemd-analyze", "verify", *map(str, staged)))
            if self.plan.calendars:  # verify only warns about an OnCalendar it cannot parse
                self.run("validate", ("systemd-analyze", "calendar", "--", *self.plan.calendars))
        if proxy.check in checks:
            self.run("validate", proxy.check_argv)

    def go_live(self) -> None:
        plan = self.plan
        self.live = True
        if plan.units_changed:
            self.run("reload", cmd.systemctl("daemon-reload"))
        if plan.switch:
            self.say(f"switching to {plan.release_id}")
            self.run("switch", cmd.switch_current(self.layout, plan.release_id))
        self.restart(plan.enable_units, plan.restart_app, plan.reload_proxy)

    def restart(self, enable: tuple[str, ...], restart_app: bool, reload_proxy: bool) -> None:
        try:
            self._restart(enable, restart_app, reload_proxy)
        except StepFailed as exc:
            raise self.explained(exc) from None

    def explained(self, exc: StepFailed, health_output: str | None = None) -> StepFailed:
        """``exc`` with the tail of the app's log (and the health check's last answer) that says why."""
        if exc.log is not None:
            return exc
        log = read_failure_log(self.remote, self.inventory.app)
        if health_output is not None:
            log = with_response(log, health_output)
        return StepFailed(exc.stage, exc.message, log)

    def _restart(self, enable: tuple[str, ...], restart_app: bool, reload_proxy: bool) -> None:
        own_sockets = server_of(self.host).sockets(self.inventory.app)
        sockets = [u for u in enable if u in own_sockets]
        if sockets:
            self.run("start", cmd.systemctl("enable", "--now", *sockets))
        if restart_app and self.plan.services:
            self.run("restart", cmd.systemctl("restart", *self.plan.services), timeout=120)
        if restart_app and self.plan.daemons:
            self.restart_daemons()
        if self.plan.restart_workers:
            self.say(f"restarting {' '.join(self.plan.restart_workers)}")
            self.run("restart", cmd.systemctl("restart", *self.plan.restart_workers), timeout=self.stop_timeout())
        if self.plan.restart_timers:
            self.run("restart", cmd.systemctl("restart", *self.plan.restart_timers), timeout=120)
        others = [u for u in enable if u not in own_sockets]
        if others:
            self.run("start", cmd.systemctl("enable", "--now", *others), timeout=120)
        if reload_proxy:  # also after `enable --now`: a proxy already running must load the new site
            self.run("reload", proxy_of(self.host).reload(), timeout=120)

    def stop_timeout(self) -> float:
        """How long a restart of the processes may take: the longest stop_timeout, then a start."""
        return max((p.stop_timeout for p in self.inventory.app.processes), default=30) + 90

    def retire(self) -> None:
        """Stop, disable and remove the process and timer units the inventory (or the release) no longer has."""
        units = self.plan.retire_units
        if not units:
            return
        self.say(f"removing {' '.join(units)}")
        self.run("retire", cmd.systemctl("disable", "--now", *units), timeout=self.stop_timeout())
        self.run("retire", cmd.remove_paths(SYSTEMD_DIR / u for u in units))
        self.run("retire", cmd.systemctl("daemon-reload"))
        self._quiet(cmd.systemctl("reset-failed", *units))

    def restart_daemons(self) -> None:
        """mod_wsgi: new daemon processes on the new release, Apache left alone (see cmd.restart_daemons)."""
        proxy = proxy_service(self.host)
        for marker in self.plan.daemons:
            self.say(f"gracefully restarting the {marker} daemons")
            self.run("restart", cmd.restart_daemons(proxy, marker))

    def gate(self) -> None:
        """Prove the new release is what serves, then that it is healthy through the proxy."""
        release_path = str(self.layout.release(self.plan.release_id))
        # signalled mod_wsgi daemons first finish their requests, for up to graceful-timeout (host.timeout)
        draining = self.host.timeout if self.plan.restart_app and self.plan.daemons else 0
        deadline = time.monotonic() + SERVING_DEADLINE + draining
        while True:
            facts = gather_facts(self.remote, self.inventory, ())
            expected = self.plan.services + self.plan.daemons + self.plan.workers
            wrong = {k: v for k, v in facts.serving.items() if k in expected and v != release_path}
            missing = [k for k in expected if k not in facts.serving]
            if not wrong and not missing:
                break
            if time.monotonic() > deadline:
                detail = ", ".join([f"{k} runs from {v}" for k, v in wrong.items()] + [f"{m} is not running" for m in missing])
                raise self.explained(StepFailed("serving", f"expected {release_path}: {detail}"))
            time.sleep(0.3)
        if self.plan.workers:
            self.settle_workers(facts, release_path)
        self.say(f"health check {self.health_url()}")
        outcome = self.remote.run(self.health_command(), check=False, timeout=HEALTH_DEADLINE + 15)
        if not outcome.ok:
            raise self.explained(StepFailed("health", f"{self.inventory.app.health} did not answer 2xx within "
                                                      f"{HEALTH_DEADLINE:.0f}s: {outcome.stdout.strip()[-200:]}"),
                                 outcome.stdout)
        if self.verify is not None:  # before the config backups go: a failed verify restores them
            self.say("verifying")
            failure = self.verify(self.remote)
            if failure:
                raise StepFailed("verify", failure)
        if self.installed:
            self._quiet(cmd.drop_backups(self.installed))

    def settle_workers(self, seen: Facts, release_path: str) -> None:
        """A process that exits right after it started (``/usr/bin/env`` found no such command) fails the gate.

        Type=exec reports a start once ``env`` runs; Restart= then starts it again, so one
        sample could catch it alive. The same pid on the release a little later cannot.
        """
        time.sleep(WORKER_SETTLE)
        now = gather_facts(self.remote, self.inventory, ())
        pid = lambda facts, unit: facts.units[unit].pid if unit in facts.units else 0  # noqa: E731
        gone = [u for u in self.plan.workers
                if not pid(now, u) or pid(now, u) != pid(seen, u) or now.serving.get(u) != release_path]
        if gone:
            raise StepFailed("serving", f"{', '.join(gone)} did not stay up on {release_path} "
                                        "(it exited or was restarted: see deployer logs)")

    def health_url(self) -> str:
        host = self.host
        scheme, port = ("https", host.https_port) if host.tls else ("http", host.http_port)
        return f"{scheme}://{host.server_name}:{port}{self.inventory.app.health}"

    def health_command(self) -> cmd.Command:
        """Health through the proxy on the host itself: HTTPS when tls, the primary name as Host."""
        host = self.host
        scheme, port = ("https", host.https_port) if host.tls else ("http", host.http_port)
        return cmd.health_check(scheme, port, host.server_name, self.inventory.app.health, HEALTH_DEADLINE)

    def record(self, result: LogResult) -> None:
        record = {"release": self.plan.release_id, "previous": self.plan.previous, "result": result,
                  "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "user": getpass.getuser(), "controller": socket.gethostname(), "command": self.command}
        self._quiet(cmd.append_log(self.layout, record))

    def prune(self) -> None:
        facts = gather_facts(self.remote, self.inventory, ())
        doomed = prune_releases(facts, self.inventory.app.keep_releases)
        if doomed:
            self.say(f"pruning {len(doomed)} old release(s)")
            self.run("prune", cmd.remove_paths(self.layout.release(r) for r in doomed))
            facts = gather_facts(self.remote, self.inventory, ())
        used = {r.venv for r in facts.releases}
        unused = [v for v in facts.venvs if v not in used]
        if unused:
            self.run("prune", cmd.remove_paths(self.layout.venvs / v for v in unused))

    # -- failure ------------------------------------------------------------

    def recover(self, exc: BaseException) -> DeployStatus:
        """Undo what this deploy changed. Returns the host's final status."""
        plan = self.plan
        self.say(f"failed: {exc}")
        if plan.release_id != plan.previous:
            self._quiet(cmd.mark_bad(self.layout, plan.release_id, str(exc)[:500]))
        if not self.live:
            self.record(LogResult.FAILED)
            return DeployStatus.FAILED
        self.say("rolling back")
        configs_touched = bool(self.installed or self.links_made)
        ours = jobs.units_of(self.inventory.app.name, self.files).all
        new_units = [c.file.path.name for c in plan.changes if c.old is None and c.file.path.name in ours]
        if new_units:  # processes and timers this deploy added: stopped before their files go
            self._quiet(cmd.systemctl("disable", "--now", *new_units))
        self.undo_configs()
        if plan.units_changed:
            self._quiet(cmd.systemctl("daemon-reload"))
        proxy = proxy_service(self.host)
        if plan.previous is None:
            units = app_units(self.inventory.app, self.host) + plan.workers + jobs.units_of(self.inventory.app.name, self.files).timers
            if units:
                self._quiet(cmd.systemctl("disable", "--now", *units))
            self._quiet(("rm", "-f", str(self.layout.current)))
            self._quiet(proxy_of(self.host).reload())
            self.record(LogResult.FAILED)
            return DeployStatus.FAILED
        self._quiet(cmd.switch_current(self.layout, plan.previous))
        if plan.services:
            self._quiet(cmd.systemctl("restart", *plan.services))
        workers = [u for u in plan.workers if u not in new_units]
        if workers:  # back on the previous release and unit files
            self._quiet(cmd.systemctl("restart", *workers))
        # mod_wsgi with Apache's config as it was: new daemons suffice (no reload, no 503s); else reload
        daemons_restarted = bool(plan.daemons) and not configs_touched and all(
            [self._quiet(cmd.restart_daemons(proxy, marker)) for marker in plan.daemons])
        if not daemons_restarted:
            self._quiet(proxy_of(self.host).reload())
        healthy = self._quiet(self.health_command())
        self.rollback_error = self.after_rollback(plan.previous)
        self.record(LogResult.ROLLED_BACK if healthy else LogResult.ROLLBACK_UNHEALTHY)
        return DeployStatus.ROLLED_BACK if healthy else DeployStatus.FAILED

    def undo_configs(self) -> None:
        if self.installed:
            self._quiet(cmd.restore_files(self.installed))
        for link in self.links_made:
            self._quiet(("rm", "-f", str(link.path)))
        self.installed, self.links_made = [], []

    def _quiet(self, argv: cmd.Command) -> bool:
        """Run a clean-up command; its failure must not hide the original error."""
        try:
            return self.remote.run(argv, check=False, timeout=120).ok
        except Exception:  # noqa: BLE001 - best effort by design
            return False

    def _quiet_cleanup(self) -> None:
        try:
            self.remote.cleanup()
        except Exception:  # noqa: BLE001
            pass


class LockHeld(DeployerError):
    exit_code = 3

    def __init__(self, host: str, holder: str) -> None:
        super().__init__(f"{host}: locked by another deploy: {holder} (run 'deployer unlock' if it is dead)")


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
