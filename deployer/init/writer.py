"""The starter inventory ``deployer init`` writes, and the command itself.

Everything found is written as an inventory line with its reason in a comment; what
init could only guess (env values, secrets) is written commented out, for the user
to fill in. The file is created, never overwritten.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath

import click

from deployer.init.scan import Findings, InitError, inspect_app


def scalar(value: str) -> str:
    """A YAML scalar: plain when that is safe, else a double-quoted (JSON) string."""
    return value if re.fullmatch(r"[A-Za-z_./][A-Za-z0-9_./:()-]*", value) else json.dumps(value)


def commented(text: str, comment: str = "") -> str:
    """One inventory line with its comment in the column the example inventories use."""
    return f"{text.ljust(33)} # {comment}".rstrip() + "\n" if comment else text + "\n"


def env_block(found: Findings) -> list[str]:
    """Commented ``env`` and ``secrets`` entries for the variables the code reads (values from .flaskenv)."""
    plain = [r for r in found.env if not r.secret]
    secret = [r for r in found.env if r.secret]
    given = {k: v for k, v in found.flaskenv.items() if k not in ("FLASK_APP", "FLASK_DEBUG", "FLASK_ENV")}
    lines = []
    if plain or given:
        lines.append(commented("  # env:", "variables the code reads: uncomment what production needs"))
        for name, value in given.items():
            lines.append(commented(f"  #   {name}: {scalar(value)}", "from .flaskenv"))
        for read in plain:
            if read.name not in given:
                value = scalar(read.default) if read.default is not None else "FILL_IN"
                lines.append(commented(f"  #   {read.name}: {value}", f"{read.file}:{read.line}"))
    else:
        lines.append(commented("  # env: {APP_MODE: production}", "plain settings for the app's environment"))
    lines.append(commented("  # secrets: secrets.env", "dotenv file kept out of version control; masked in all output"))
    for read in secret:
        lines.append(commented(f"  #   {read.name}=...", f"read at {read.file}:{read.line}: put it in secrets.env"))
    return lines


def requirements_line(found: Findings) -> str:
    if found.requirements:
        return commented(f"  requirements: {scalar(found.requirements)}", "installed into each release's virtualenv")
    if found.pyproject:
        return commented("  # requirements: requirements.txt", "unset: the app is built from pyproject.toml")
    return commented("  requirements: requirements.txt", "FILL IN: this file is missing")


def shared_lines(found: Findings) -> list[str]:
    """``shared``: the instance folder, and caches the app writes inside its package (nested paths)."""
    if not found.instance and not found.caches:
        return [commented("  # shared: [instance]", "paths kept across releases (SQLite, uploads)")]
    lines = ["  shared:\n"]
    if found.instance:
        lines.append(commented("    - instance", "Flask's instance folder: kept across releases (SQLite, uploads)"))
    lines += [commented(f"    - {scalar(path)}", why) for path, why in found.caches]
    return lines


def files_lines(found: Findings) -> list[str]:
    """``files``: config files the code loads, each rendered from a template the user writes (commented)."""
    if not found.config_files:
        return [commented("  # files: {instance/config.py: config.py.j2}", "config files rendered with env and secrets")]
    lines = [commented("  # files:", "files the app reads: write each template (Jinja: env, secrets), then uncomment")]
    for path, why in found.config_files:
        template = PurePosixPath(path).name + ".j2"
        lines.append(commented(f"  #   {scalar(path)}: {scalar(template)}", why))
    return lines


def app_lines(found: Findings, source: str) -> list[str]:
    static = (commented(f"  static: {{url: {found.static[0]}, dir: {scalar(found.static[1])}}}", "served by the proxy itself")
              if found.static else commented("  # static: {url: /static, dir: static}", "a folder the proxy serves itself"))
    shared = shared_lines(found)
    blueprints = [commented(f"  #   blueprint {name}: {folder}/", "served by the app (one static folder goes to the proxy)")
                  for name, folder in found.blueprint_static]
    return [
        "app:\n",
        commented(f"  name: {found.name}", "system user, /srv/<name>, unit and site names"),
        commented(f"  source: {scalar(source)}", "the app directory, relative to this file"),
        commented(f"  wsgi: {found.entry.wsgi}", "module:attribute, or module:factory()"),
        requirements_line(found),
        commented(f"  health: {found.health}", "must answer 2xx (no redirect) through the proxy after a deploy"),
        *env_block(found),
        *shared,
        *files_lines(found),
        static,
        *blueprints,
        commented("  keep_releases: 5"),
    ]


def starter_inventory(found: Findings, source: str) -> str:
    """The commented inventory text; ``source`` is the app directory relative to the file."""
    return "".join([
        f"# Starter inventory for {found.name}, written by `deployer init` from {found.entry.file}:{found.entry.line}\n",
        f"# ({found.entry.what}). Fill in every FILL IN, then:\n",
        "#   deployer check -i THIS_FILE && deployer plan -i THIS_FILE && deployer deploy -i THIS_FILE\n",
        *app_lines(found, source),
        "\n",
        commented("defaults:", "every host; a host's own settings win"),
        commented("  ssh_user: root", "or a sudo user, with become: true"),
        commented("  # ssh_key: ~/.ssh/id_ed25519"),
        commented("  known_hosts: ~/.ssh/known_hosts", "host keys are checked against this file"),
        commented("  host_key_policy: strict", "accept-new records a host's key on first contact"),
        commented("  server: gunicorn", "gunicorn | uwsgi | mod_wsgi (with proxy: apache)"),
        commented("  proxy: nginx", "nginx | apache"),
        commented("  # server_name: [www.example.com]", "default: the address"),
        "\n",
        "hosts:\n",
        "  web1:\n",
        commented("    address:", "FILL IN: the server's IP address or DNS name"),
    ])


def write_new(path: Path, text: str) -> None:
    """Create ``path``; an existing file is never overwritten."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InitError(f"{path} already exists: not overwritten (move it away, or write elsewhere with -o PATH)") from None
    except OSError as exc:
        raise InitError(f"cannot write {path}: {exc.strerror or exc}") from None


def summary(found: Findings) -> list[str]:
    """What init found, one line each, for the terminal."""
    lines = [f"  app:          {found.entry.wsgi}  ({found.entry.file}:{found.entry.line}: {found.entry.what})"]
    lines += [f"  also:         {other.wsgi}  ({other.file}:{other.line})" for other in found.others]
    deps = found.requirements or ("pyproject.toml" if found.pyproject else "MISSING")
    lines.append(f"  dependencies: {deps}")
    lines.append(f"  static:       {f'{found.static[1]}/ at {found.static[0]}' if found.static else 'none'}")
    lines.append(f"  instance:     {f'shared: [instance] ({found.instance})' if found.instance else 'not used'}")
    lines += [f"  shared:       {path} ({why})" for path, why in found.caches]
    lines += [f"  files:        {path} ({why}): write its template" for path, why in found.config_files]
    lines.append(f"  health:       {found.health}")
    if found.env:
        lines.append(f"  reads env:    {', '.join(r.name + (' (secret)' if r.secret else '') for r in found.env)}")
    lines += [f"  ! {note}" for note in found.notes]
    return lines


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Inventory file to write (default: DIRECTORY/deploy.yml).")
def init(directory: Path, out: Path | None) -> None:
    """Look at a Flask app (without running it) and write a commented starter inventory."""
    found = inspect_app(directory)
    out = out or directory / "deploy.yml"
    source = os.path.relpath(directory.resolve(), out.resolve().parent)
    write_new(out, starter_inventory(found, source))
    click.echo(f"found in {directory}:")
    for line in summary(found):
        click.echo(line)
    click.echo(f"wrote {out}")
    click.echo(f"fill in: hosts/web1/address (and ssh_user/ssh_key/known_hosts under defaults), then: deployer check -i {out}")
