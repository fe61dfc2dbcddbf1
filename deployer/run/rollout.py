"""Many hosts at once: connect, gather facts, build the release once, plan, apply.

Each host gets its own connection and thread (as Fabric's ThreadingGroup); a
host's failure never stops the others silently: every host has a result.
``--serial N`` deploys in batches and stops before the next batch on failure.
"""

from __future__ import annotations

import getpass
import json
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from deployer.artifact.manifest import Artifact, HostPython, host_python_of
from deployer.run import server_version
from deployer.run.apply import HostResult, OnceGate, StepRunner, gather_facts
from deployer.remote.connector import Connector, ConnectorFactory, ssh_connector
from deployer.remote.fanout import Outcome, fan_out
from deployer.errors import DeployerError
from deployer.core.facts import Facts, snapshot_command
from deployer.core.layout import Layout
from deployer.core.outcomes import DEPLOY_SUCCESSES, DeployStatus
from deployer.config.model import Host, Inventory
from deployer.core.plan import HostPlan, Target, assign_run_once, plan_host
from deployer.core.steps import STAGING, VENV_UPLOAD, Context, Operator, Payload, Step, deploy_steps, rollback_steps
from deployer.core.render import RenderedFile, TlsMaterial, file_metadata, render_host
from deployer.secret import Secret
from deployer.stacks import check_for_path

Progress = Callable[[str, str], None]


def read_tls(host: Host) -> TlsMaterial | None:
    """The controller-side TLS files a host's configs embed (read here, at the I/O edge)."""
    if host.tls is None:
        return None
    return TlsMaterial(cert=host.tls.cert.read_text(), key=Secret(host.tls.key.read_text()))


def render_all(inventory: Inventory, hosts: Iterable[Host], *, reveal_secrets: bool,
               server_versions: dict[str, str] | None = None) -> dict[str, tuple[RenderedFile, ...]]:
    """Every selected host's files; for the app server's version the app pins (or the tested one) by default."""
    hosts = tuple(hosts)
    if server_versions is None:
        server_versions = server_version.pinned_versions(inventory.app, hosts)
    return {h.name: render_host(inventory, h, reveal_secrets=reveal_secrets, tls=read_tls(h),
                                server_versions=server_versions) for h in hosts}


@dataclass(frozen=True)
class Release:
    """The artifact built for the hosts' Python, and the files rendered for the server versions it installs."""

    artifact: Artifact
    target: Target
    files: dict[str, tuple[RenderedFile, ...]]
    notes: tuple[str, ...]  # what deployer added to the app's requirements, for plan


def build_release(inventory: Inventory, hosts: tuple[Host, ...], facts: dict[str, Facts],
                  files: dict[str, tuple[RenderedFile, ...]]) -> Release:
    """Build once; re-render when the wheel set's server version is not the one ``files`` assumed."""
    from deployer.artifact.manifest import short_hash
    from deployer.artifact.release import build_artifact

    added = server_version.added(inventory.app, hosts)
    artifact = build_artifact(inventory.app, python=host_python(facts),
                              extra_requirements=tuple(a.requirement for a in added))
    target = Target(artifact.release_id, short_hash(artifact.content_hash), artifact.req_hash, artifact.python)
    installed = server_version.installed_versions(artifact.wheel_names, hosts)
    if installed != server_version.pinned_versions(inventory.app, hosts):
        files = render_all(inventory, hosts, reveal_secrets=True, server_versions=installed)
    return Release(artifact, target, files, tuple(a.note() for a in added))


def secrets_of(inventory: Inventory) -> tuple[Secret, ...]:
    return tuple(inventory.app.secrets.values())


@dataclass
class Session:
    """Open connections to the selected hosts (SSH unless ``connect`` says otherwise), closed together."""

    inventory: Inventory
    hosts: tuple[Host, ...]
    connect: ConnectorFactory = ssh_connector

    def __post_init__(self) -> None:
        extra = tuple(tls.key for tls in map(read_tls, self.hosts) if tls)
        self.remotes = {h.name: self.connect(h, secrets_of(self.inventory) + extra) for h in self.hosts}
        self.errors: dict[str, str] = {}

    def __enter__(self) -> "Session":
        for outcome in fan_out(self.remotes.values(), lambda remote: remote.open()):
            if not outcome.ok:
                self.errors[outcome.item.host.name] = outcome.message
        return self

    def __exit__(self, *exc: object) -> None:
        for remote in self.remotes.values():
            try:
                remote.close()
            except Exception:  # noqa: BLE001
                pass

    def failed_results(self) -> dict[str, HostResult]:
        """A result for every host that could not be reached or read."""
        return {name: HostResult(name, DeployStatus.FAILED, None, error=error) for name, error in self.errors.items()}

    def connected(self) -> list[Connector]:
        return [r for name, r in self.remotes.items() if name not in self.errors]

    def each(self, fn: Callable[[Connector], object], catch: tuple[type[BaseException], ...] = (DeployerError,)
             ) -> dict[str, Outcome]:
        """``fn`` on every connected host in parallel: each host's outcome, by host name, in host order."""
        return {o.item.host.name: o for o in fan_out(self.connected(), fn, catch=catch)}


def gather_all(session: Session, files: dict[str, tuple[RenderedFile, ...]]) -> dict[str, Facts]:
    facts: dict[str, Facts] = {}
    for name, outcome in session.each(lambda remote: gather_facts(remote, session.inventory, files[remote.host.name])).items():
        if outcome.ok:
            facts[name] = outcome.value
        else:
            session.errors[name] = outcome.message
    return facts


def host_python(facts: dict[str, Facts]) -> HostPython:
    """The one interpreter every host runs (full version, implementation, CPU, glibc): wheels fit it exactly."""
    targets = {name: host_python_of(f.python, f.platform) for name, f in facts.items()}
    kinds = {t.describe() for t in targets.values()}
    if len(kinds) > 1:
        seen = ", ".join(f"{name}: {t.describe()}" for name, t in sorted(targets.items()))
        raise DeployerError(f"hosts run different Pythons ({seen}): their wheels differ, deploy them separately with --limit")
    return targets.popitem()[1] if targets else host_python_of("3.11", {})


def plan_all(session: Session, files: dict[str, tuple[RenderedFile, ...]], facts: dict[str, Facts], target: Target) -> dict[str, HostPlan]:
    plans = {name: plan_host(session.inventory, session.inventory.host(name), target, files[name], f) for name, f in facts.items()}
    return assign_run_once(session.inventory.app, plans, [h.name for h in session.hosts if h.name in plans])


@dataclass
class Prepared:
    """Everything deploy and plan share, up to the steps of each host: plan shows what deploy runs."""

    files: dict[str, tuple[RenderedFile, ...]]  # as the release's server versions want them
    facts: dict[str, Facts]
    artifact: Artifact | None  # None when no host could be read
    plans: dict[str, HostPlan]
    steps: dict[str, tuple[Context, tuple[Step, ...]]]
    notes: tuple[str, ...] = ()  # what deployer added to the app's requirements (build_release)


def operator(command: str) -> Operator:
    return Operator(getpass.getuser(), socket.gethostname(), command)


def payload_for(artifact: Artifact, plan: HostPlan) -> Payload:
    """The release tarball, and the venv tree when the host has no venv for these wheels (built once, cached)."""
    from deployer.artifact.venv import venv_command, venv_tree

    if not plan.build_venv:
        return Payload(app_tarball=artifact.app_tarball)
    tree = venv_tree(artifact, plan.layout.venvs / artifact.req_hash)
    argv = venv_command(plan.layout, artifact.req_hash, STAGING / VENV_UPLOAD, tree.sha256, artifact.python, tree.precompiled)
    return Payload(artifact.app_tarball, tree.tarball, argv)


def prepare(session: Session, files: dict[str, tuple[RenderedFile, ...]]) -> Prepared:
    """Facts, the release built once (``files`` re-rendered for its server versions), each host's plan and its steps."""
    facts = gather_all(session, files)
    if not facts:
        return Prepared(files, facts, None, {}, {})
    release = build_release(session.inventory, session.hosts, facts, files)
    artifact, files = release.artifact, release.files
    plans = plan_all(session, files, facts, release.target)
    who = operator("deploy")
    steps = {}
    for name, plan in plans.items():
        ctx = Context(session.inventory, plan, files[name], who)
        payload = Payload() if plan.unchanged or plan.problems else payload_for(artifact, plan)  # no venv tree for those
        steps[name] = (ctx, deploy_steps(ctx, facts[name], payload))
    return Prepared(files, facts, artifact, plans, steps, release.notes)


def deploy(
    inventory: Inventory,
    hosts: tuple[Host, ...],
    *,
    serial: int | None = None,
    progress: Progress = lambda host, message: None,
    cancel: threading.Event | None = None,
    verify: Callable[[Connector], str | None] | None = None,
    connect: ConnectorFactory = ssh_connector,
) -> list[HostResult]:
    cancel = cancel or threading.Event()
    results: dict[str, HostResult] = {}
    with Session(inventory, hosts, connect) as session:
        ready = prepare(session, render_all(inventory, hosts, reveal_secrets=True))
        results.update(session.failed_results())
        for note in ready.notes:
            progress("*", note)
        order = [h.name for h in hosts if h.name in ready.plans]
        once = OnceGate()  # run_once hooks: the first switching host runs them, the others wait before going live

        def one(name: str) -> HostResult:
            plan = ready.plans[name]
            if plan.unchanged and not plan.problems:
                progress(name, DeployStatus.UNCHANGED)
                return HostResult(name, DeployStatus.UNCHANGED, plan.release_id, previous=plan.previous)
            ctx, steps = ready.steps[name]
            outcome = StepRunner(session.remotes[name], ctx, steps, progress=progress, cancel=cancel, once=once,
                                 verify=verify, facts=ready.facts[name]).apply()
            progress(name, outcome.status + (f": {outcome.error}" if outcome.error else ""))
            return outcome

        batch_size = serial or len(order) or 1
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            for done in fan_out(batch, one, catch=()):
                results[done.value.host] = done.value
            if any(results[n].status not in DEPLOY_SUCCESSES for n in batch) or cancel.is_set():
                for name in order[start + batch_size:]:
                    results[name] = HostResult(name, DeployStatus.SKIPPED, None, error="an earlier batch failed")
                break
    return [results[h.name] for h in hosts if h.name in results]


def snapshot_files(remote: Connector, layout, release_id: str, meta: dict | None = None) -> tuple[RenderedFile, ...]:
    """The configs a release was deployed with, read back from the host for a rollback.

    Each file's checker and secrecy come from render (``meta``, see ``render.file_metadata``); a file
    render no longer makes (the inventory changed since) gets the checker of the stack whose config
    directory holds it, and is secret when others may not read it.
    """
    meta = meta or {}
    result = remote.run(snapshot_command(layout, release_id), check=False, mask=False)  # real content: it is installed again
    if not result.ok:
        raise DeployerError(f"{remote.host.name}: release {release_id} has no config snapshot")
    files = []
    for item in json.loads(result.stdout):
        path = PurePosixPath(item["path"])
        check, secret = meta.get(path, (check_for_path(path), item["mode"] & 0o007 == 0))
        files.append(RenderedFile(path, item["content"], item["mode"], item["owner"], item["group"],
                                  secret=secret, check=check))
    return tuple(files)


def rollback_target(facts: Facts, to: str | None) -> str:
    if to is not None:
        if facts.release(to) is None:
            raise DeployerError(f"no release {to} (have: {', '.join(r.id for r in facts.releases) or 'none'})")
        return to
    older = [r.id for r in facts.releases if not r.bad and facts.current is not None and r.id < facts.current]
    if not older:
        raise DeployerError("no earlier good release to roll back to")
    return max(older)


def rollback(
    inventory: Inventory,
    hosts: tuple[Host, ...],
    *,
    to: str | None = None,
    progress: Progress = lambda host, message: None,
    cancel: threading.Event | None = None,
    connect: ConnectorFactory = ssh_connector,
) -> list[HostResult]:
    """Back to the previous good (or named) release with the configs it was deployed with."""
    cancel = cancel or threading.Event()
    results: dict[str, HostResult] = {}
    with Session(inventory, hosts, connect) as session:
        results.update(session.failed_results())

        def one(remote: Connector) -> HostResult:
            name = remote.host.name
            layout = Layout.of(inventory.app, remote.host)
            try:
                facts = gather_facts(remote, inventory, ())
                release_id = rollback_target(facts, to)
                files = snapshot_files(remote, layout, release_id, file_metadata(inventory, remote.host))
                facts = gather_facts(remote, inventory, files)
                release = facts.release(release_id)
                target = Target(release_id, release_id.rsplit("-", 1)[-1], release.venv or "", ".".join(map(str, facts.python_version)))
                plan = plan_host(inventory, remote.host, target, files, facts, rollback=True)
            except DeployerError as exc:
                return HostResult(name, DeployStatus.FAILED, None, error=str(exc))
            if plan.build_venv:
                return HostResult(name, DeployStatus.FAILED, release_id, error=f"the virtualenv of {release_id} is gone; deploy instead")
            progress(name, f"rolling back {facts.current} -> {release_id}")
            ctx = Context(inventory, plan, files, operator("rollback"))
            outcome = StepRunner(remote, ctx, rollback_steps(ctx, facts), progress=progress, cancel=cancel,
                                 facts=facts).apply()
            if outcome.status == DeployStatus.DEPLOYED:
                outcome.status = DeployStatus.ROLLED_BACK_TO
            return outcome

        for done in session.each(one, catch=()).values():
            results[done.value.host] = done.value
    return [results[h.name] for h in hosts if h.name in results]
