"""The ``deployer`` command line: parse options, call the pipeline, print, exit.

One module per command family (``inventory``: check, render, init; ``rollout``:
deploy, plan, rollback; ``state``: status, releases, unlock; ``ops``: exec, logs;
``verify``); ``common`` holds the shared options and the wiring tests replace.
Errors a user can act on (``DeployerError``) print as one message with their
exit code; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

from typing import Any

import click

from deployer.cli import inventory, ops, rollout, state, verify
from deployer.console import echo
from deployer.errors import DeployerError
from deployer.lab.cli import lab as lab_group


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


for command in (inventory.check, inventory.render, rollout.plan, rollout.deploy, lab_group, ops.exec_, verify.verify,
                rollout.rollback, state.status, state.releases, state.unlock, ops.logs, inventory.init):
    main.add_command(command)
