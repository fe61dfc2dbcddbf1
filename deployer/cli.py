"""The ``deployer`` command line: parse options, call the pipeline, print, exit.

Errors a user can act on (``DeployerError``) print as one message with their
exit code; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from deployer.errors import DeployerError
from deployer.inventory import load_inventory
from deployer.model import Host, Inventory
from deployer.selection import select_hosts


class DeployerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeployerError as exc:
            if ctx.meta.get("deployer.debug"):
                raise
            click.echo(f"error: {exc.format()}" if "\n" not in exc.format() else exc.format(), err=True)
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


def describe_inventory(inventory: Inventory, hosts: tuple[Host, ...]) -> dict[str, Any]:
    """A plain, secret-free view of the resolved inventory (for ``check``)."""
    app = inventory.app
    return {
        "app": {
            "name": app.name,
            "source": str(app.source),
            "wsgi": str(app.wsgi),
            "requirements": app.requirements,
            "health": app.health,
            "env": dict(app.env),
            "secrets": {name: str(value) for name, value in app.secrets.items()},
            "shared": list(app.shared),
            "static": {"url": app.static.url, "dir": app.static.dir} if app.static else None,
            "keep_releases": app.keep_releases,
        },
        "hosts": {host.name: _host_view(host) for host in hosts},
    }


def _host_view(host: Host) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for key, value in vars(host).items():
        if key == "name":
            continue
        if key == "tls" and value is not None:
            value = {"cert": str(value.cert), "key": str(value.key)}
        elif isinstance(value, tuple):
            value = list(value)
        elif value is not None and not isinstance(value, (str, int, bool)):
            value = str(value)
        view[key] = value
    return view


@main.command()
@inventory_option
@limit_option
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="Write files under DIR/<host>/<target path>.")
@click.option("--show-secrets", is_flag=True, help="Render real secret values instead of ***.")
def render(inventory_path: Path, limit: str | None, out: Path | None, show_secrets: bool) -> None:
    """Render every file each host will get, without touching any server."""
    from deployer.render import render_host

    inventory, hosts = load(inventory_path, limit)
    for host in hosts:
        for file in render_host(inventory, host, reveal_secrets=show_secrets):
            if out is None:
                click.echo(f"# ==> {host.name}:{file.path} ({file.mode:04o} {file.owner}:{file.group}) <==")
                click.echo(file.content, nl=not file.content.endswith("\n"))
                continue
            target = out / host.name / file.path.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content, encoding="utf-8")
            target.chmod(0o600 if file.secret else 0o644)
            click.echo(str(target))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
