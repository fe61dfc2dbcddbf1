"""The ``deployer`` command line: parse options, call the pipeline, print, exit.

Errors a user can act on (``DeployerError``) print as one message with their
exit code; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
import yaml

from deployer.errors import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, DeployerError
from deployer.run.exec_command import exec_command
from deployer.config.inventory import load_inventory
from deployer.lab.cli import lab as lab_group
from deployer.run.logs import logs_command
from deployer.config.model import HOOK_STAGES, Host, Inventory
from deployer.core.hostview import host_json
from deployer.core.outcomes import DEPLOY_FAILURES, DeployStatus
from deployer.console import echo
from deployer.secret import mask_text
from deployer.config.selection import select_hosts
from deployer.init.writer import init
from deployer.verify.command import verify_command


class DeployerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeployerError as exc:
            if ctx.meta.get("deployer.debug"):
                raise
            echo(f"error: {exc.format()}" if "\n" not in exc.format() else exc.format(), err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=DeployerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="deployer")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Render, deploy and verify a Flask app on Linux servers."""
    ctx.meta["deployer.debug"] = debug


inventory_option = click.option(
    "-i", "--inventory", "inventory_path", envvar="DEPLOYER_INVENTORY", required=True,
    type=click.Path(dir_okay=False, path_type=Path), help="Inventory YAML file (or $DEPLOYER_INVENTORY).",
)
limit_option = click.option(
    "-l", "--limit", default=None, metavar="PATTERN",
    help="Hosts or groups: names, globs, comma lists, !exclusions.",
)


def load(inventory_path: Path, limit: str | None) -> tuple[Inventory, tuple[Host, ...]]:
    inventory = load_inventory(inventory_path)
    return inventory, select_hosts(inventory, limit)


@main.command()
@inventory_option
@limit_option
def check(inventory_path: Path, limit: str | None) -> None:
    """Validate the inventory and show each host's effective settings."""
    inventory, hosts = load(inventory_path, limit)
    click.echo(yaml.safe_dump(describe_inventory(inventory, hosts), sort_keys=False, width=100).rstrip("\n"))
    click.echo(f"ok: {len(hosts)} host{'s' if len(hosts) != 1 else ''} selected", err=True)


def _declared(app) -> str:
    """Which file declares the dependencies; a source with none is refused here (exit 2), not at deploy."""
    from deployer.artifact.dependencies import detect

    declared = detect(app)
    return declared.label if app.requirements else f"{declared.label} (detected)"


def describe_inventory(inventory: Inventory, hosts: tuple[Host, ...]) -> dict[str, Any]:
    """A plain, secret-free view of the resolved inventory (for ``check``)."""
    app = inventory.app
    return {
        "app": {
            "name": app.name,
            "source": str(app.source),
            "wsgi": str(app.wsgi),
            "requirements": _declared(app),
            "health": app.health,
            "env": dict(app.env),
            "secrets": {name: str(value) for name, value in app.secrets.items()},
            "shared": list(app.shared),
            "static": {"url": app.static.url, "dir": app.static.dir} if app.static else None,
            "keep_releases": app.keep_releases,
            "hooks": {stage: [mask_text(str(h), app.secrets.values()) + (" (run_once)" if h.run_once else "")
                              for h in app.hooks.stage(stage)] for stage in HOOK_STAGES if app.hooks.stage(stage)},
        },
        "hosts": {host.name: {k: v for k, v in host_json(host).items() if k != "name"} for host in hosts},
    }


@main.command()
@inventory_option
@limit_option
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="Write files under DIR/<host>/<target path> (DIR must not exist).")
@click.option("--show-secrets", is_flag=True, help="Render real secret values instead of ***.")
def render(inventory_path: Path, limit: str | None, out: Path | None, show_secrets: bool) -> None:
    """Render every file each host will get, without touching any server."""
    from deployer.run.rollout import render_all
    from deployer.safe_write import fresh_directory, write_under

    inventory, hosts = load(inventory_path, limit)
    rendered = render_all(inventory, hosts, reveal_secrets=show_secrets)
    if out is not None:
        fresh_directory(out)
    for host in hosts:
        for file in rendered[host.name]:
            if out is None:
                click.echo(f"# ==> {host.name}:{file.path} ({file.mode:04o} {file.owner}:{file.group}) <==")
                click.echo(file.content, nl=not file.content.endswith("\n"))
                continue
            target = write_under(out, host.name / file.path.relative_to("/"), file.content, secret=file.secret)
            click.echo(str(target))


def _progress(quiet: bool):
    lock = threading.Lock()

    def report(host: str, message: str) -> None:
        if not quiet:
            with lock:
                echo(f"{host}: {message}", err=True)

    return report


def _summary(results: list) -> None:
    width = max([len(r.host) for r in results] + [4])
    click.echo(f"{'HOST':<{width}}  {'STATUS':<12} {'RELEASE':<28} {'SECONDS':>7}  ERROR")
    for r in results:
        echo(f"{r.host:<{width}}  {r.status:<12} {r.release or '-':<28} {r.seconds:>7.1f}  {r.error or ''}")


def exit_code_for(results: list) -> int:
    statuses = {r.status for r in results}
    if statuses & DEPLOY_FAILURES:
        return EXIT_FAILED
    if DeployStatus.LOCKED in statuses:
        return EXIT_LOCKED
    return EXIT_OK


@contextlib.contextmanager
def cancellable():
    """Turn SIGTERM (a cancelled CI job) into the same path as Ctrl-C: workers stop, roll back, unlock."""
    cancel = threading.Event()

    def on_term(signum, frame):  # noqa: ANN001
        cancel.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cancellable(func, cancel: threading.Event):
    """Run ``func`` in a worker thread so Ctrl-C/SIGTERM reach us; on either, ask it to stop and wait."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            cancel.set()
            click.echo("cancelling: finishing the current step on each host, rolling back and unlocking", err=True)
    if "error" in box:
        raise box["error"]
    return box["result"]


@main.command()
@inventory_option
@limit_option
@click.option("--serial", type=click.IntRange(min=1), help="Deploy N hosts at a time; stop after a failed batch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result document on stdout, nothing else.")
@click.option("--no-verify", is_flag=True, help="Skip 'deployer verify' on each host after its health check.")
def deploy(inventory_path: Path, limit: str | None, serial: int | None, as_json: bool, no_verify: bool) -> None:
    """Deploy the app: new release, validated configs, switch, reload, health check, verify, rollback on failure."""
    from deployer.run import rollout
    from deployer.verify.runner import deploy_verifier

    inventory, hosts = load(inventory_path, limit)
    verify = None if no_verify else deploy_verifier(inventory)
    results, cancelled = _rollout(
        lambda cancel: rollout.deploy(inventory, hosts, serial=serial, progress=_progress(False), cancel=cancel,
                                      verify=verify), as_json)
    sys.exit(130 if cancelled else exit_code_for(results))


def _rollout(func, as_json: bool) -> tuple[list, bool]:
    """Run a deploy or rollback so that Ctrl-C/SIGTERM unwind it, then print the results."""
    with cancellable() as cancel:
        results = run_cancellable(lambda: func(cancel), cancel)
    if as_json:
        click.echo(json.dumps({"results": [r.as_dict() for r in results]}, indent=2))
    else:
        _summary(results)
    return results, cancel.is_set()


@main.command()
@inventory_option
@limit_option
def plan(inventory_path: Path, limit: str | None) -> None:
    """Show what a deploy would do on each host, changing nothing."""
    from deployer.core.steps import plan_lines
    from deployer.run import rollout

    inventory, hosts = load(inventory_path, limit)
    secrets = rollout.secrets_of(inventory)
    with rollout.Session(inventory, hosts) as session:
        ready = rollout.prepare(session, rollout.render_all(inventory, hosts, reveal_secrets=True))
    if ready.artifact is not None:
        click.echo(dependencies_line(ready.artifact))
    failed = False
    for host in hosts:
        if host.name in session.errors:
            echo(f"== {host.name}: cannot plan: {session.errors[host.name]}")
            failed = True
            continue
        p = ready.plans[host.name]
        state = "unchanged" if p.unchanged else "would change"
        echo(f"== {host.name} ({host.address}): {state}")
        for problem in p.problems:
            echo(f"  ! {problem}")
        for line in plan_lines(ready.steps[host.name][1], secrets):  # the very steps deploy sends
            echo(f"  - {line}")
        if ready.steps[host.name][1]:
            for hook in p.stage_hooks("after_rollback"):
                echo(f"  - if it rolls back: run after_rollback hook: {hook.shown}")
        for change in p.changes:
            echo(change.diff(secrets), nl=False)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def dependencies_line(artifact) -> str:
    """``dependencies: 9 wheels for CPython 3.11.2 on x86_64-manylinux_2_36 (from uv.lock)``"""
    count = len(artifact.wheel_names)
    target = artifact.target.describe() if artifact.target else f"Python {artifact.python}"
    source = f" (from {artifact.declared})" if artifact.declared else ""
    return f"dependencies: {count} wheel{'s' if count != 1 else ''} for {target}{source}"


main.add_command(lab_group)
main.add_command(exec_command(inventory_option, limit_option))
main.add_command(verify_command(inventory_option, limit_option, load))


@main.command()
@inventory_option
@limit_option
@click.option("--to", "to", metavar="RELEASE", help="Release id to return to (default: the previous good one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result document on stdout.")
def rollback(inventory_path: Path, limit: str | None, to: str | None, as_json: bool) -> None:
    """Return to the previous (or named) release, its configs included, with the health gate."""
    from deployer.run import rollout

    inventory, hosts = load(inventory_path, limit)
    results, cancelled = _rollout(
        lambda cancel: rollout.rollback(inventory, hosts, to=to, progress=_progress(False), cancel=cancel), as_json)
    ok = all(r.status == DeployStatus.ROLLED_BACK_TO for r in results)
    sys.exit(130 if cancelled else EXIT_OK if ok else exit_code_for(results) or EXIT_FAILED)


def _read_hosts(inventory_path: Path, limit: str | None, with_files: bool):
    """Facts (and release logs) from every selected host, read-only."""
    from deployer.run import rollout
    from deployer.run.apply import gather_facts
    from deployer.core.facts import log_command, parse_log
    from deployer.core.layout import Layout

    inventory, hosts = load(inventory_path, limit)
    files = rollout.render_all(inventory, hosts, reveal_secrets=True) if with_files else {h.name: () for h in hosts}
    out: dict[str, object] = {}
    with rollout.Session(inventory, hosts) as session:
        def one(remote) -> None:  # noqa: ANN001
            try:
                facts = gather_facts(remote, inventory, files[remote.host.name])
                log = parse_log(remote.run(log_command(Layout.of(inventory.app, remote.host)), check=False).stdout)
                out[remote.host.name] = (facts, log)
            except DeployerError as exc:
                out[remote.host.name] = exc

        rollout.parallel(one, session.connected())
        for name, error in session.errors.items():
            out[name] = DeployerError(error)
    return inventory, hosts, files, out


@main.command()
@inventory_option
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def status(inventory_path: Path, limit: str | None, as_json: bool) -> None:
    """Per host: current release, who deployed it, what actually serves, services, lock, config drift."""
    from deployer.core.layout import Layout
    from deployer.core.status import host_status

    inventory, hosts, files, out = _read_hosts(inventory_path, limit, with_files=True)
    doc: dict[str, object] = {}
    for host in hosts:
        item = out[host.name]
        doc[host.name] = ({"error": str(item)} if isinstance(item, Exception)
                          else host_status(Layout.of(inventory.app, host), item[0], files[host.name], item[1]))
    if as_json:
        click.echo(json.dumps({"hosts": doc}, indent=2))
    else:
        for name, st in doc.items():
            if "error" in st:
                echo(f"{name}: error: {st['error']}")
                continue
            echo(f"{name}: current {st['current'] or '-'} (deployed {st['deployed_at'] or '?'} by {st['deployed_by'] or '?'})")
            echo(f"  serving: {', '.join(f'{k}={v}' for k, v in st['serving'].items()) or 'nothing'}")
            echo(f"  units:   {', '.join(f'{k} {v}' for k, v in st['units'].items())}")
            lock = st["lock"]
            held = f"held by {lock['holder']} for {lock['age']}" if lock else "free"
            echo(f"  lock:    {held}")
            echo(f"  drift:   {'; '.join(st['drift']) or 'none'}")
    sys.exit(EXIT_FAILED if any("error" in st for st in doc.values()) else EXIT_OK)


@main.command()
@inventory_option
@limit_option
def releases(inventory_path: Path, limit: str | None) -> None:
    """Releases on each host, newest first; * marks current, ! a failed one."""
    inventory, hosts, _, out = _read_hosts(inventory_path, limit, with_files=False)
    for host in hosts:
        item = out[host.name]
        if isinstance(item, Exception):
            echo(f"{host.name}: error: {item}")
            continue
        facts, log = item
        echo(f"{host.name}:")
        results = {r.get("release"): r for r in log}
        for release in sorted(facts.releases, key=lambda r: r.id, reverse=True):
            mark = "*" if release.id == facts.current else "!" if release.bad else " "
            rec = results.get(release.id, {})
            echo(f"  {mark} {release.id}  {rec.get('result', ''):<12} {rec.get('time', '')}  {rec.get('user', '')}")


@main.command()
@inventory_option
@limit_option
def unlock(inventory_path: Path, limit: str | None) -> None:
    """Clear a deploy lock left by a killed deploy (shows who held it)."""
    from deployer.core import commands as cmd
    from deployer.run import rollout
    from deployer.core.layout import Layout

    inventory, hosts = load(inventory_path, limit)
    with rollout.Session(inventory, hosts) as session:
        for remote in session.connected():
            layout = Layout.of(inventory.app, remote.host)
            held = remote.run(("cat", str(layout.state_dir / "lock" / "info")), check=False)
            remote.run(cmd.release_lock(layout))
            echo(f"{remote.host.name}: {'released lock held by ' + held.stdout.strip() if held.ok else 'not locked'}")
        for name, error in session.errors.items():
            echo(f"{name}: error: {error}", err=True)
    sys.exit(EXIT_FAILED if session.errors else EXIT_OK)


main.add_command(logs_command(inventory_option, limit_option))
main.add_command(init)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
