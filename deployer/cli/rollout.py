"""The commands that change hosts, or show how they would: ``deploy``, ``plan``, ``rollback``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deployer.cli.common import (exit_code_for, inventory_option, limit_option, load, progress, run_rollout,
                                 wiring)
from deployer.console import echo
from deployer.core.outcomes import DeployStatus
from deployer.errors import EXIT_FAILED, EXIT_OK


@click.command()
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
    connect = wiring().connect
    results, cancelled = run_rollout(
        lambda cancel: rollout.deploy(inventory, hosts, serial=serial, progress=progress(False), cancel=cancel,
                                      verify=verify, connect=connect), as_json)
    sys.exit(130 if cancelled else exit_code_for(results))


@click.command()
@inventory_option
@limit_option
def plan(inventory_path: Path, limit: str | None) -> None:
    """Show what a deploy would do on each host, changing nothing."""
    from deployer.core.steps import plan_lines
    from deployer.run import rollout

    inventory, hosts = load(inventory_path, limit)
    secrets = rollout.secrets_of(inventory)
    with rollout.Session(inventory, hosts, wiring().connect) as session:
        ready = rollout.prepare(session, rollout.render_all(inventory, hosts, reveal_secrets=True))
    if ready.artifact is not None:
        click.echo(dependencies_line(ready.artifact))
    for note in ready.notes:
        click.echo(f"* {note}")
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


def dependencies_line(artifact) -> str:  # noqa: ANN001
    """``dependencies: 9 wheels for CPython 3.11.2 on x86_64-manylinux_2_36 (from uv.lock)``"""
    count = len(artifact.wheel_names)
    target = artifact.target.describe() if artifact.target else f"Python {artifact.python}"
    source = f" (from {artifact.declared})" if artifact.declared else ""
    return f"dependencies: {count} wheel{'s' if count != 1 else ''} for {target}{source}"


@click.command()
@inventory_option
@limit_option
@click.option("--to", "to", metavar="RELEASE", help="Release id to return to (default: the previous good one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result document on stdout.")
def rollback(inventory_path: Path, limit: str | None, to: str | None, as_json: bool) -> None:
    """Return to the previous (or named) release, its configs included, with the health gate."""
    from deployer.run import rollout

    inventory, hosts = load(inventory_path, limit)
    connect = wiring().connect
    results, cancelled = run_rollout(
        lambda cancel: rollout.rollback(inventory, hosts, to=to, progress=progress(False), cancel=cancel,
                                        connect=connect), as_json)
    ok = all(r.status == DeployStatus.ROLLED_BACK_TO for r in results)
    sys.exit(130 if cancelled else EXIT_OK if ok else exit_code_for(results) or EXIT_FAILED)
