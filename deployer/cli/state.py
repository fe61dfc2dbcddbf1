"""The commands that read what hosts hold now: ``status``, ``releases``; and ``unlock``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from deployer.cli.common import inventory_option, limit_option, load, wiring
from deployer.console import echo
from deployer.errors import EXIT_FAILED, EXIT_OK, DeployerError


def read_hosts(inventory_path: Path, limit: str | None, with_files: bool):  # noqa: ANN201
    """Facts (and release logs) from every selected host, read-only; a host that failed has its error."""
    from deployer.core.facts import log_command, parse_log
    from deployer.core.layout import Layout
    from deployer.run import rollout
    from deployer.run.apply import gather_facts

    inventory, hosts = load(inventory_path, limit)
    files = rollout.render_all(inventory, hosts, reveal_secrets=True) if with_files else {h.name: () for h in hosts}

    def one(remote):  # noqa: ANN001, ANN202
        facts = gather_facts(remote, inventory, files[remote.host.name])
        log = parse_log(remote.run(log_command(Layout.of(inventory.app, remote.host)), check=False).stdout)
        return facts, log

    out: dict[str, object] = {}
    with rollout.Session(inventory, hosts, wiring().connect) as session:
        for name, outcome in session.each(one).items():
            out[name] = outcome.value if outcome.ok else outcome.error
        for name, error in session.errors.items():
            out[name] = DeployerError(error)
    return inventory, hosts, files, out


@click.command()
@inventory_option
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def status(inventory_path: Path, limit: str | None, as_json: bool) -> None:
    """Per host: current release, who deployed it, what actually serves, services, lock, config drift."""
    from deployer.core.layout import Layout
    from deployer.core.status import host_status

    inventory, hosts, files, out = read_hosts(inventory_path, limit, with_files=True)
    doc: dict[str, object] = {}
    for host in hosts:
        item = out[host.name]
        doc[host.name] = ({"error": str(item)} if isinstance(item, Exception)
                          else host_status(Layout.of(inventory.app, host), item[0], files[host.name], item[1]))
    if as_json:
        click.echo(json.dumps({"hosts": doc}, indent=2))
    else:
        for name, st in doc.items():
            show_status(name, st)
    sys.exit(EXIT_FAILED if any("error" in st for st in doc.values()) else EXIT_OK)


def show_status(name: str, st: dict) -> None:
    if "error" in st:
        echo(f"{name}: error: {st['error']}")
        return
    echo(f"{name}: current {st['current'] or '-'} (deployed {st['deployed_at'] or '?'} by {st['deployed_by'] or '?'})")
    echo(f"  serving: {', '.join(f'{k}={v}' for k, v in st['serving'].items()) or 'nothing'}")
    echo(f"  units:   {', '.join(f'{k} {v}' for k, v in st['units'].items())}")
    lock = st["lock"]
    held = f"held by {lock['holder']} for {lock['age']}" if lock else "free"
    echo(f"  lock:    {held}")
    echo(f"  drift:   {'; '.join(st['drift']) or 'none'}")


@click.command()
@inventory_option
@limit_option
def releases(inventory_path: Path, limit: str | None) -> None:
    """Releases on each host, newest first; * marks current, ! a failed one."""
    inventory, hosts, _, out = read_hosts(inventory_path, limit, with_files=False)
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


@click.command()
@inventory_option
@limit_option
def unlock(inventory_path: Path, limit: str | None) -> None:
    """Clear a deploy lock left by a killed deploy (shows who held it)."""
    from deployer.core import commands as cmd
    from deployer.core.layout import Layout
    from deployer.run import rollout

    inventory, hosts = load(inventory_path, limit)

    def one(remote) -> str:  # noqa: ANN001
        layout = Layout.of(inventory.app, remote.host)
        held = remote.run(("cat", str(layout.state_dir / "lock" / "info")), check=False)
        remote.run(cmd.release_lock(layout))
        return "released lock held by " + held.stdout.strip() if held.ok else "not locked"

    with rollout.Session(inventory, hosts, wiring().connect) as session:
        for name, outcome in session.each(one).items():
            if outcome.ok:
                echo(f"{name}: {outcome.value}")
            else:
                session.errors[name] = outcome.message
        for name, error in session.errors.items():
            echo(f"{name}: error: {error}", err=True)
    sys.exit(EXIT_FAILED if session.errors else EXIT_OK)
