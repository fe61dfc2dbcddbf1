"""The commands that need no host: ``check`` (validate, show the settings), ``render``, ``init``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from deployer.cli.common import inventory_option, limit_option, load
from deployer.config.model import HOOK_STAGES, Host, Inventory
from deployer.core.hostview import host_json
from deployer.init.writer import init  # noqa: F401 - registered by deployer.cli
from deployer.secret import mask_text


@click.command()
@inventory_option
@limit_option
def check(inventory_path: Path, limit: str | None) -> None:
    """Validate the inventory and show each host's effective settings."""
    inventory, hosts = load(inventory_path, limit)
    click.echo(yaml.safe_dump(describe_inventory(inventory, hosts), sort_keys=False, width=100).rstrip("\n"))
    click.echo(f"ok: {len(hosts)} host{'s' if len(hosts) != 1 else ''} selected", err=True)


def _declared(app) -> str:  # noqa: ANN001
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
            "files": {f.path: str(f.template) for f in app.files},
            "static": {"url": app.static.url, "dir": app.static.dir} if app.static else None,
            "keep_releases": app.keep_releases,
            "hooks": {stage: [mask_text(str(h), app.secrets.values()) + (" (run_once)" if h.run_once else "")
                              for h in app.hooks.stage(stage)] for stage in HOOK_STAGES if app.hooks.stage(stage)},
        },
        "hosts": {host.name: {k: v for k, v in host_json(host).items() if k != "name"} for host in hosts},
    }


@click.command()
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
