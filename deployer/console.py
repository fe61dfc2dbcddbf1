"""Human output to the terminal: what a host or the app said is shown, not obeyed.

``click.echo`` through ``deployer.core.terminal.printable``. For every line a person
reads that may carry remote text (progress, errors, summaries, logs, hook and exec
output, verify tables); ``--json`` documents and rendered files go out as data.
"""

from __future__ import annotations

import click

from deployer.core.terminal import printable


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(printable(message), err=err, nl=nl)
