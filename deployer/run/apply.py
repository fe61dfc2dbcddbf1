"""Send one host's planned steps (``core/steps.py``) over its connection, with a rollback for every failure.

The runner decides nothing about *what* to send: it uploads, sends each step's
argv in order, and owns the lock (and the recheck of the facts under it), the
run_once gate, the health gate and recovery. Stages, in order (Capistrano's fixed, named stages):
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

from deployer.core import commands as cmd
from deployer.remote.ssh import CommandFailed, Remote
from deployer.errors import DeployerError
from deployer.core.facts import Facts, drift, facts_command, facts_failure, parse_facts
from deployer.core.failure_log import FailureLog, explain, with_response
from deployer.core.layout import Layout
from deployer.core.outcomes import DeployStatus, LogResult
from deployer.config.model import Inventory
from deployer.core.plan import process_marker, required_links, required_packages, service_units
from deployer.core.release_env import run_in_release
from deployer.core.render import RenderedFile
from deployer.run.failure_report import read_failure_log
from deployer.core.steps import (HEALTH_DEADLINE, Context, Role, Step, record_step, recovery_steps, resolve,
                                 rollback_hook_steps)

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
class StepRunner:
    """Sends one host's planned steps in order; owns only execution, the gates and recovery."""

    remote: Remote
    ctx: Context
    steps: tuple[Step, ...]
    progress: Callable[[str, str], None] = lambda host, message: None
    cancel: threading.Event = field(default_factory=threading.Event)
    once: OnceGate | None = None  # shared by the hosts of a deploy with run_once hooks
    verify: Callable[[Remote], str | None] | None = None  # after health: why the host fails verify, or None
    facts: Facts | None = None  # what the plan was made from: read again once the lock is held

    def __post_init__(self) -> None:
        self.plan, self.layout, self.host = self.ctx.plan, self.ctx.layout, self.ctx.host
        self.undo: list[cmd.Command] = []  # of the steps that ran, for recovery
        self.live = False  # True once anything a running service reads has changed
        self.rollback_error: str | None = None  # an after_rollback hook failed during recover()
        self.hook_error: str | None = None  # a rollback's after_rollback hook failed
        self.sent: list[cmd.Command] = []  # every argv of a planned step, as resolved and sent

    def say(self, message: str) -> None:
        self.progress(self.host.name, message)

    def apply(self) -> HostResult:
        started = time.monotonic()
        plan = self.plan
        result = HostResult(self.host.name, DeployStatus.DEPLOYED, plan.release_id, previous=plan.previous)
        locked = False
        try:
            self.lock()
            locked = True
            self.recheck()
            if plan.problems:
                raise StepFailed("preflight", "; ".join(p for p in plan.problems if p != "locked"))
            for step in self.steps:
                self.run_step(step)
            if self.hook_error:
                result.error, result.status = self.hook_error, DeployStatus.FAILED
        except LockHeld as exc:
            result.error, result.status = str(exc), DeployStatus.LOCKED
        except Exception as exc:  # also a lost connection: still try to leave the host sane
            known = isinstance(exc, (StepFailed, Cancelled, CommandFailed))
            result.error = str(exc) if known else f"{type(exc).__name__}: {exc}"
            result.log = getattr(exc, "log", None)
            result.status = self.recover(exc) if locked else DeployStatus.FAILED
        finally:
            if self.once is not None and plan.stage_hooks("before_switch", once=True):
                self.once.open(result.error)  # no-op once opened
            if self.rollback_error:
                result.error = f"{result.error}; {self.rollback_error}"
            if locked:
                quiet(self.remote, cmd.release_lock(self.layout))
            quiet_cleanup(self.remote)
            result.seconds = time.monotonic() - started
        return result

    def lock(self) -> None:
        outcome = self.remote.run(cmd.sh('mkdir -p "$1"', self.layout.state_dir), check=False)
        if not outcome.ok:
            raise StepFailed("lock", outcome.stderr.strip())
        taken = self.remote.run(cmd.take_lock(self.layout, lock_info(self.ctx.operator.command)), check=False)
        if not taken.ok:
            out = self.remote.run(("cat", str(self.layout.state_dir / "lock" / "info")), check=False)
            raise LockHeld(self.host.name, out.stdout.strip() or "unknown holder")

    def recheck(self) -> None:
        """The facts were read and the plan made before the lock: a deploy that finished meanwhile made it stale."""
        if self.facts is None:
            return
        changed = drift(self.facts, gather_facts(self.remote, self.ctx.inventory, self.ctx.files))
        if changed:
            raise StepFailed("lock", f"the host changed after it was planned ({', '.join(changed)}: another deploy?); "
                                     "nothing was done, run again")

    # -- one step ------------------------------------------------------------

    def resolved(self, step: Step) -> cmd.Command:
        """Upload what the step needs, then its argv with the real upload paths and the time."""
        staged = {str(u.path): str(self.remote.upload(u.source, u.name)) for u in step.uploads}
        return resolve(step.argv, staged, now())

    def run_step(self, step: Step) -> None:
        if self.cancel.is_set() and step.role is Role.SOFT_HOOK:
            self.hook_error = self.hook_error or "cancelled"
            return
        if self.cancel.is_set():
            raise Cancelled("cancelled")
        if step.say:
            self.say(step.say)
        if step.role is Role.ONCE_DONE:
            if self.once is not None:
                self.once.open()
            return
        if step.role is Role.ONCE_WAIT:
            error = self.once.wait(self.cancel)
            if error:
                raise StepFailed("run_once", f"the run_once hooks on {self.plan.once_leader} did not succeed: {error}")
            return
        argv = self.resolved(step)
        self.sent.append(argv)
        self.live = self.live or step.live or step.role is Role.GATE
        if step.role is Role.GATE:
            self.gate(argv, step.timeout)
        elif step.role in (Role.HOOK, Role.SOFT_HOOK):
            self.hook(step, argv)
        elif step.role is Role.QUIET:
            quiet(self.remote, argv)
        else:
            self.must(step, argv)

    def must(self, step: Step, argv: cmd.Command) -> None:
        try:
            self.remote.run(argv, timeout=step.timeout)
        except CommandFailed as exc:
            if step.role is Role.CHECK:  # nothing reloaded yet: the old files back, nothing live changed
                self.undo_configs()
                self.live = False
            message = f"cannot install {' '.join(self.plan.install_packages)}: {exc}" if step.stage == "packages" else str(exc)
            failed = StepFailed(step.stage, message)
            raise (explained(self.remote, self.ctx, failed) if step.explain else failed) from None
        if step.undo is not None:
            self.undo.append(step.undo)

    def hook(self, step: Step, argv: cmd.Command) -> None:
        """A hook's output streamed with the host name; a failure names the hook and its last lines."""
        planned, stage = step.hook, step.stage
        outcome = run_in_release(self.remote, argv, timeout=planned.hook.timeout,
                                 on_line=lambda line: self.say(f"{stage}> {line}"))
        if outcome.code == 0:
            return
        why = f"timed out after {planned.hook.timeout}s" if outcome.timed_out else f"exited {outcome.code}"
        log = explain(f"output of {step.unit}", outcome.output)
        last = log.cause or (log.lines[-1] if log.lines else "")
        error = StepFailed(stage, f"hook {planned.shown} {why}" + (f": {last}" if last else ""), log)
        if step.role is not Role.SOFT_HOOK:
            raise error
        self.hook_error = self.hook_error or str(error)

    def gate(self, health: cmd.Command, timeout: float | None) -> None:
        """Prove the new release is what serves, then that it is healthy through the proxy, then verify."""
        try:
            seen = wait_serving(self.remote, self.ctx)
        except StepFailed as exc:
            raise explained(self.remote, self.ctx, exc) from None
        if self.plan.workers:
            settle_workers(self.remote, self.ctx, seen)
        outcome = self.remote.run(health, check=False, timeout=timeout)
        if not outcome.ok:
            why = f"{self.ctx.inventory.app.health} did not answer 2xx within {HEALTH_DEADLINE:.0f}s"
            raise explained(self.remote, self.ctx, StepFailed("health", f"{why}: {outcome.stdout.strip()[-200:]}"), outcome.stdout)
        if self.verify is not None:  # before the config backups go: a failed verify restores them
            self.say("verifying")
            failure = self.verify(self.remote)
            if failure:
                raise StepFailed("verify", failure)

    # -- failure ------------------------------------------------------------

    def recover(self, exc: BaseException) -> DeployStatus:
        """Undo what this deploy changed (``recovery_steps``). Returns the host's final status."""
        plan = self.plan
        self.say(f"failed: {exc}")
        if self.live:
            self.say("rolling back")
        steps = recovery_steps(self.ctx, reason=str(exc), live=self.live, undo=tuple(reversed(self.undo)))
        self.undo = []
        ok = {}
        for step in steps:
            if step.role is Role.FALLBACK and ok.get(Role.DAEMON, False):
                continue
            done = quiet(self.remote, resolve(step.argv, {}, now()))
            ok[step.role] = ok.get(step.role, True) and done
        if not self.live or plan.previous is None:
            self.record(LogResult.FAILED)
            return DeployStatus.FAILED
        healthy = ok.get(Role.PROBE, False)
        self.rollback_error = self.after_rollback(plan.previous)
        self.record(LogResult.ROLLED_BACK if healthy else LogResult.ROLLBACK_UNHEALTHY)
        return DeployStatus.ROLLED_BACK if healthy else DeployStatus.FAILED

    def after_rollback(self, release_id: str) -> str | None:
        """The after_rollback hooks in the release returned to; the error, if one failed (or Ctrl-C stopped them)."""
        self.hook_error = None
        for step in rollback_hook_steps(self.ctx, release_id):
            if self.cancel.is_set():
                return "cancelled"
            try:
                self.say(step.say)
                self.hook(step, resolve(step.argv, {}, now()))
            except Exception as exc:  # noqa: BLE001 - reported with the original error
                return str(exc)
        return self.hook_error

    def undo_configs(self) -> None:
        for argv in reversed(self.undo):
            quiet(self.remote, argv)
        self.undo = []

    def record(self, result: LogResult) -> None:
        quiet(self.remote, resolve(record_step(self.ctx, result).argv, {}, now()))


def explained(remote: Remote, ctx: Context, exc: StepFailed, health_output: str | None = None) -> StepFailed:
    """``exc`` with the tail of the app's log (and the health check's last answer) that says why."""
    if exc.log is not None:
        return exc
    log = read_failure_log(remote, ctx.inventory.app)
    if health_output is not None:
        log = with_response(log, health_output)
    return StepFailed(exc.stage, exc.message, log)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def quiet(remote: Remote, argv: cmd.Command) -> bool:
    """Run a clean-up command; its failure must not hide the original error."""
    try:
        return remote.run(argv, check=False, timeout=120).ok
    except Exception:  # noqa: BLE001 - best effort by design
        return False


def quiet_cleanup(remote: Remote) -> None:
    try:
        remote.cleanup()
    except Exception:  # noqa: BLE001
        pass


def wait_serving(remote: Remote, ctx: Context) -> Facts:
    """Until the app's services and daemons all run from the new release, or the deadline."""
    plan = ctx.plan
    release_path = str(ctx.layout.release(plan.release_id))
    # signalled mod_wsgi daemons first finish their requests, for up to graceful-timeout (host.timeout)
    draining = ctx.host.timeout if plan.restart_app and plan.daemons else 0
    deadline = time.monotonic() + SERVING_DEADLINE + draining
    expected = plan.services + plan.daemons + plan.workers
    while True:
        facts = gather_facts(remote, ctx.inventory, ())
        wrong = {k: v for k, v in facts.serving.items() if k in expected and v != release_path}
        missing = [k for k in expected if k not in facts.serving]
        if not wrong and not missing:
            return facts
        if time.monotonic() > deadline:
            detail = ", ".join([f"{k} runs from {v}" for k, v in wrong.items()] + [f"{m} is not running" for m in missing])
            raise StepFailed("serving", f"expected {release_path}: {detail}")
        time.sleep(0.3)


def settle_workers(remote: Remote, ctx: Context, seen: Facts) -> None:
    """A process that exits right after it started (``/usr/bin/env`` found no such command) fails the gate.

    Type=exec reports a start once ``env`` runs; Restart= then starts it again, so one
    sample could catch it alive. The same pid on the release a little later cannot.
    """
    release_path = str(ctx.layout.release(ctx.plan.release_id))
    time.sleep(WORKER_SETTLE)
    now = gather_facts(remote, ctx.inventory, ())
    pid = lambda facts, unit: facts.units[unit].pid if unit in facts.units else 0  # noqa: E731
    gone = [u for u in ctx.plan.workers
            if not pid(now, u) or pid(now, u) != pid(seen, u) or now.serving.get(u) != release_path]
    if gone:
        raise StepFailed("serving", f"{', '.join(gone)} did not stay up on {release_path} "
                                    "(it exited or was restarted: see deployer logs)")


class LockHeld(DeployerError):
    exit_code = 3

    def __init__(self, host: str, holder: str) -> None:
        super().__init__(f"{host}: locked by another deploy: {holder} (run 'deployer unlock' if it is dead)")


