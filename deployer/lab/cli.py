"""``deployer lab``: the click group. Thin: parse, call Lab, print a table."""

from __future__ import annotations

import os
import sys

import click

from deployer.lab import commands, host, naming
from deployer.lab.lab import Lab, LabHost, require_root
from deployer.lab.run import LabError


def format_table(hosts: list[LabHost]) -> str:
    rows = [("NAME", "ADDRESS", "STATE")] + [(h.name, h.address, h.state) for h in hosts]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows)


def _fail(e: Exception, code: int = 1) -> click.ClickException:
    err = click.ClickException(str(e))
    err.exit_code = code
    return err


def _lab() -> Lab:
    return Lab(say=lambda msg: click.echo(msg, err=True))


@click.group()
def lab() -> None:
    """Throwaway Debian hosts on this machine (systemd-nspawn), reachable over SSH."""


def _guard(fn):
    """Turn LabError (and a few others) into a one-line message and exit code."""
    try:
        return fn()
    except LabError as e:
        raise _fail(e, e.exit_code) from None
    except ValueError as e:
        raise _fail(e, 2) from None
    except OSError as e:
        raise _fail(f"{e.filename or ''}: {e.strerror}".lstrip(": "), 1) from None
    except (click.ClickException, click.Abort, KeyboardInterrupt):
        raise
    except Exception as e:  # a bug: still one line, but say what it was
        raise _fail(f"unexpected {type(e).__name__}: {e}", 1) from None


@lab.command()
@click.option("--hosts", "n", default=3, show_default=True, type=int,
              help=f"boot lab1..labN (1-{naming.MAX_HOSTS}); hosts beyond N are left as they are")
def up(n: int) -> None:
    """Boot lab1..labN (idempotent: working hosts stay, broken ones are rebuilt)."""
    hosts = _guard(lambda: _lab().up(n))
    click.echo(format_table(hosts))


@lab.command()
@click.argument("names", nargs=-1)
def down(names: tuple[str, ...]) -> None:
    """Stop hosts (all, or NAMES) and remove their state; the base image stays."""
    gone = _guard(lambda: _lab().down(list(names) if names else None))
    click.echo(f"stopped {len(gone)} host{'s' if len(gone) != 1 else ''}"
               + (f": {' '.join(gone)}" if gone else ""))


@lab.command()
def status() -> None:
    """List lab hosts and whether sshd answers."""
    hosts = _guard(lambda: _lab().status())
    click.echo(format_table(hosts) if hosts else "no lab hosts")


@lab.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(name: str, command: tuple[str, ...]) -> None:
    """SSH to a lab host as root, with the lab key and strict host-key checking."""

    def argv():
        require_root()
        index = naming.host_index(name)
        if not host.routed_via_veth(name):  # else ssh would try the default route
            raise LabError(f"{name} is not up (no route through {naming.veth_name(name)}); "
                           "run: deployer lab up")
        lab_ = _lab()
        return commands.ssh(lab_.key_path, lab_.known_hosts_path, naming.host_address(index), command)

    cmd = _guard(argv)
    sys.stdout.flush()
    try:
        os.execvp(cmd[0], list(cmd))
    except OSError as e:
        raise _fail(f"cannot run ssh: {e.strerror}") from None


if __name__ == "__main__":
    lab(prog_name="deployer lab")
