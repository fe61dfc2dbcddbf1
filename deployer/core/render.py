"""Render every file a host needs from the inventory: pure data in, files out.

No I/O here except Jinja reading templates through its loader. Whatever comes
from the controller's disk (the TLS certificate and key) is read by the caller
and handed in as ``TlsMaterial``, so a dry run and a deploy render the same
bytes and tests need no files.

Templates are looked up first in ``inventory.templates_dir`` (user overrides,
same relative names as the built-ins) and then in the built-in directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

import jinja2

from deployer.core import jobs
from deployer.core import templating
from deployer.core.guard import check_context
from deployer.core.templating import render_config, uses_secrets
from deployer.core.layout import PROXY_GROUP, Layout
from deployer.config.model import App, Host, Inventory
from deployer.secret import Secret
from deployer.stacks import Check, FileSpec, proxy_of, server_of
from deployer.stacks.mod_wsgi import wsgi_script_path
from deployer.stacks.uwsgi import ini_path as uwsgi_ini_path


@dataclass(frozen=True)
class RenderedFile:
    path: PurePosixPath  # absolute target path on the host
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False  # True when content carries secrets (env file, TLS key)
    check: Check | None = None  # the real checker that validates it


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM contents of a host's ``tls.cert`` and ``tls.key``, read by the caller."""

    cert: str
    key: Secret


# --- where things go -------------------------------------------------------------


def tls_cert_path(app: App) -> PurePosixPath:
    return PurePosixPath("/etc") / app.name / "tls" / "cert.pem"


def tls_key_path(app: App) -> PurePosixPath:
    return PurePosixPath("/etc") / app.name / "tls" / "key.pem"


def site_path(app: App, host: Host) -> PurePosixPath:
    return proxy_of(host).site_path(app)


# --- what runs ---------------------------------------------------------------------


def wsgi_entry(app: App) -> str:
    """deployer's WSGI entry as app servers name it, ``module:callable``."""
    return f"{wsgi_script_path(app).stem}:application"


def proxy_hops(host: Host) -> int:
    """Proxies deployer runs in front of the app server: 1 over the app's socket, 0 when Apache runs the app."""
    return 0 if server_of(host).embedded else 1


def app_units(app: App, host: Host) -> tuple[str, ...]:
    """systemd units of the app server, socket first; () when it runs inside the proxy (mod_wsgi)."""
    return server_of(host).units(app)


def proxy_service(host: Host) -> str:
    """The systemd service of the front proxy, to reload after its config changes."""
    return proxy_of(host).service


def apache_modules(host: Host) -> tuple[str, ...]:
    """Proxy modules the rendered site uses (``a2enmod``), in load order; () for a proxy without modules."""
    return proxy_of(host).modules(host, server_of(host))


def apache_confs(app: App, host: Host) -> tuple[str, ...]:
    """Proxy ``conf-available`` names the deploy enables (``a2enconf``); () for a proxy without them."""
    return proxy_of(host).confs(app, server_of(host))


# --- small pure helpers used by the templates -------------------------------------------

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")


def size_bytes(size: str) -> int:
    """nginx size syntax (``512``, ``10k``, ``1m``, ``1g``) to bytes, for Apache."""
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"not a size: {size!r}")
    number, unit = match.groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def env_quote(value: str) -> str:
    """Quote a value for a systemd EnvironmentFile (and ``wsgi.py``'s parser).

    Double quotes; inside them systemd unescapes exactly ``\\"``, ``\\\\``,
    ``\\``` and ``\\$`` and keeps every other byte (newlines too) as is.
    """
    escaped = re.sub(r'(["\\`$])', r"\\\1", value)
    return f'"{escaped}"'


def env_lines(app: App, *, reveal_secrets: bool) -> tuple[tuple[str, str], ...]:
    """(name, value) for the env file: plain env first, then secrets (masked unless revealed)."""
    pairs = [(k, v) for k, v in app.env.items()]
    for key, secret in app.secrets.items():
        pairs.append((key, secret.reveal() if reveal_secrets else str(secret)))
    return tuple(pairs)


def py_literal(value: object) -> str:
    """A Python literal for a config file that is Python (gunicorn's); tuples become lists."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    raise TypeError(f"no Python literal for {value!r}")


# --- TLS profile (Mozilla "intermediate", guidelines 5.7/6.0) ----------------------------

TLS_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
HSTS = "max-age=63072000"
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)
# Every process deployer starts for the app (units, mod_wsgi daemons, hooks, exec):
# Debian's C.UTF-8 is always installed. LANG only, so an env file's LANG/LC_* wins.
UTF8_LOCALE = "C.UTF-8"
STATIC_MAX_AGE = 30 * 24 * 3600  # static names carry no content hash: a month, not a year


# --- templates -----------------------------------------------------------------------


def builtin_templates_dir() -> Path:
    """``deployer/templates`` in an installed wheel, else ``templates/`` of a checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    if installed.is_dir():
        return installed
    return package.parent / "templates"


@lru_cache(maxsize=16)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    search = [str(templates_dir)] if templates_dir is not None else []
    search.append(str(builtin_templates_dir()))
    env = templating.environment(search)  # sandboxed: the templates dir is the inventory's text, not code
    env.filters["env_quote"] = env_quote
    env.filters["size_bytes"] = size_bytes
    env.filters["without_directives"] = without_directives
    env.filters["pyrepr"] = py_literal
    return env


def without_directives(text: str, *names: str) -> str:
    """``text`` without the unit lines that set one of ``names``."""
    return "\n".join(line for line in text.splitlines() if line.strip().split("=", 1)[0] not in names) + "\n"


def _render(inventory: Inventory, name: str, ctx: Mapping[str, object], *, tidy: bool = True) -> str:
    text = templating.render_template(_environment(inventory.templates_dir), name, ctx)
    return _tidy(text) if tidy else text


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Config files: no trailing spaces, at most one blank line in a row, one final newline."""
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", lines).strip("\n") + "\n"


def _context(inventory: Inventory, host: Host, *, reveal_secrets: bool,
             server_version: str | None = None) -> dict[str, object]:
    """What every template sees, and what the host's app server adds for its ``server_version``."""
    app = inventory.app
    layout = Layout.of(app, host)
    return check_context({
        **server_of(host).context(app, host, server_version),  # every value re-checked before any template sees it
        "app": app,
        "host": host,
        "layout": layout,
        "proxy_group": PROXY_GROUP,
        "wsgi": app.wsgi,
        "tls_enabled": host.tls is not None,
        "tls_cert": tls_cert_path(app),
        "tls_key": tls_key_path(app),
        "tls_ciphers": TLS_CIPHERS,
        "hsts": HSTS,
        "security_headers": SECURITY_HEADERS,
        "static_max_age": STATIC_MAX_AGE,
        "wsgi_script": wsgi_script_path(app),
        "wsgi_entry": wsgi_entry(app),
        "proxy_hops": proxy_hops(host),
        "entry_loads_env": proxy_hops(host) == 0,  # no unit, no EnvironmentFile=: Apache runs the app
        "utf8_locale": UTF8_LOCALE,
        "uwsgi_ini": uwsgi_ini_path(app),
        "units": app_units(app, host),
        "socket_unit": f"{app.name}.socket",
        "service_unit": f"{app.name}.service",
        "env_pairs": env_lines(app, reveal_secrets=reveal_secrets),
        "modules": apache_modules(host),
    })


# Not for the transient units of hooks and exec: removing the app user's IPC objects
# when a hook ends would pull them from under the app still running as that user
# (mod_wsgi's daemons have no unit of the app's to hold them).
NOT_TRANSIENT = ("RemoveIPC",)


def sandbox_properties(inventory: Inventory, host: Host) -> tuple[str, ...]:
    """The app service's sandbox (``systemd/_hardening.j2``, overrides included) as unit properties.

    Hooks and ``deployer exec`` run as the app; rendered from the same template,
    their transient units cannot drift from the app's service.
    """
    text = _render(inventory, "systemd/_hardening.j2", _context(inventory, host, reveal_secrets=False))
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines
                 if line and not line.startswith(("#", ";")) and line.split("=", 1)[0] not in NOT_TRANSIENT)


def render_host(
    inventory: Inventory,
    host: Host,
    *,
    reveal_secrets: bool = False,
    tls: TlsMaterial | None = None,
    server_versions: Mapping[str, str] | None = None,
) -> tuple[RenderedFile, ...]:
    """Every file ``host`` needs, in a stable order.

    ``tls`` carries the certificate and key contents when ``host.tls`` is set
    (``host.tls.cert`` and ``.key``, read on the controller); without it the TLS
    files are left out and only the configs that reference them are rendered — fine for a preview, and
    ``plan`` should refuse. With ``reveal_secrets=False`` (the default) the env
    file and the TLS key render every secret as ``***``. ``server_versions`` maps a
    server's distribution (``gunicorn``) to the version the release installs
    (``deployer.run.server_version``); without one the server's tested version is assumed.
    """
    app = inventory.app
    layout = Layout.of(app, host)
    server = server_of(host)
    version = (server_versions or {}).get(server.distribution) if server.distribution else None
    ctx = _context(inventory, host, reveal_secrets=reveal_secrets, server_version=version)
    files: list[RenderedFile] = []

    # The front proxy's site, then the app server's files (each stack says which).
    proxy = proxy_of(host)
    for spec in proxy.files(app, host, server) + server.files(app, host, proxy):
        files.append(_render_spec(inventory, spec, ctx))
    # deployer's WSGI entry, which every app server loads (see templates/app/wsgi.py.j2).
    files.append(RenderedFile(wsgi_script_path(app), _render(inventory, "app/wsgi.py.j2", ctx, tidy=False)))

    # Background processes and scheduled jobs: the same units on every stack.
    files += [_render_job(inventory, job, ctx) for job in jobs.job_files(app)]

    # Environment and secrets: readable by root and the app's group only.
    files.append(
        RenderedFile(
            layout.env_file,
            _render(inventory, "app/env.j2", ctx, tidy=False),
            mode=0o640,
            group=app.user,
            secret=True,
        )
    )

    files.extend(config_files(app, host, reveal_secrets=reveal_secrets))

    # TLS material, verbatim from the controller (the key masked unless revealed).
    if host.tls is not None and tls is not None:
        files.append(RenderedFile(tls_cert_path(app), _with_newline(tls.cert)))
        key = tls.key.reveal() if reveal_secrets else str(tls.key)
        files.append(RenderedFile(tls_key_path(app), _with_newline(key), mode=0o600, secret=True))
    return flag_secret_files(files, app.secrets.values() if reveal_secrets else ())


def flag_secret_files(files: list[RenderedFile], secrets: Iterable[Secret]) -> tuple[RenderedFile, ...]:
    """Every file whose content carries a secret's value is secret too (an override template can put one anywhere)."""
    values = [s.reveal() for s in secrets if s.reveal()]
    return tuple(replace(f, secret=True) if not f.secret and any(v in f.content for v in values) else f for f in files)


def config_files(app: App, host: Host, *, reveal_secrets: bool) -> tuple[RenderedFile, ...]:
    """``app.files``: each template with env and secrets, 0640 root:<app> under /etc/<app>/files.

    The loader rendered each once already, so a template problem is reported with
    the inventory's FILE:LINE before anything reaches this point.
    """
    layout = Layout.of(app, host)
    secrets = {k: v.reveal() if reveal_secrets else str(v) for k, v in app.secrets.items()}
    context = {"env": dict(app.env), "secrets": secrets, "app": app.name, "host": host.name}
    out = []
    for item in app.files:
        out.append(RenderedFile(layout.config_file(item.path), render_config(item.text, context), mode=0o640,
                                group=app.user, secret=uses_secrets(item.text)))  # plan shows a secret file's size only
    return tuple(out)


def _render_spec(inventory: Inventory, spec: FileSpec, ctx: Mapping[str, object]) -> RenderedFile:
    return RenderedFile(spec.path, _render(inventory, spec.template, ctx, tidy=spec.tidy), check=spec.check)


def _render_job(inventory: Inventory, job: jobs.JobFile, ctx: Mapping[str, object]) -> RenderedFile:
    app = inventory.app
    own = check_context({
        "job_name": job.name, "job_timeout": job.timeout,
        "job_unit_stem": f"{app.name}-{job.name}",
        "job_service": jobs.unit(app, job.name), "job_timer": jobs.unit(app, job.name, "timer"),
    })
    extra = {"exec_start": jobs.exec_words(job.argv), "on_calendar": jobs.calendar(job.on_calendar) if job.on_calendar else ""}
    return RenderedFile(job.path, _render(inventory, job.template, {**ctx, **own, **extra}), check=Check.SYSTEMD)


def file_metadata(inventory: Inventory, host: Host) -> dict[PurePosixPath, tuple[Check | None, bool]]:
    """Each file render makes for ``host``: (checker, secret), TLS files included. For a rollback's snapshot."""
    meta = {f.path: (f.check, f.secret) for f in render_host(inventory, host)}
    if host.tls is not None:
        meta[tls_cert_path(inventory.app)] = (None, False)
        meta[tls_key_path(inventory.app)] = (None, True)
    return meta


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
