"""The render-time re-check of every value a template can interpolate.

``deployer.config.schema`` is the first line: each inventory value passes an
allowlist there. This is the second, run on the very context a template sees,
so a value that arrives by a road the validator did not foresee (a model built
in code, a field added later, a validator bug like the IPv6 zone id that carried
``;``, ``{`` and newlines into nginx and Apache) still cannot write a directive.

Policy, by where a value goes:
- config values (every string, path and name in ``app``, ``host``, the layout
  and the constants): ``CONFIG_VALUE``, ASCII without space, quotes, ``;``,
  ``{}``, ``$``, ``%``, ``#``, ``\\``, ``<>``, ``|`` or any control character;
- env file pairs (``env_pairs``): names as ``ENV_NAME``; values any text on one
  line without control characters (tab aside), because ``env_quote`` quotes them;
- fields no template writes into a config (controller paths, hooks run as argv,
  secrets) are named in ``NOT_INTERPOLATED`` with the reason, and skipped. A new
  field is checked unless it is listed there.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from deployer.errors import DeployerError, EXIT_BAD_INPUT

CONFIG_VALUE = re.compile(r"[A-Za-z0-9._:/*@+=,~-]*", re.ASCII)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)

NOT_INTERPOLATED = {
    "source": "the app's directory on the controller, uploaded, never written into a config",
    "secrets_file": "a controller path, read by the loader",
    "hooks": "argv run by systemd-run, not through a config file",
    "env": "reaches the env file only as env_pairs, checked with the env policy",
    "secrets": "reaches the env file only as env_pairs, checked with the env policy",
    "ssh_key": "a controller path for SSH",
    "known_hosts": "a controller path for SSH",
    "tls": "controller paths; the configs name the host-side tls_cert and tls_key",
    "env_pairs": "checked with the env policy",
    "argv": "process and timer commands: quoted word by word into ExecStart (jobs.exec_words)",
    "on_calendar": "checked against jobs.CALENDAR_RE where it is rendered",
    "files": "app.files: the app's own templates, rendered sandboxed into files of their own (core.templating)",
}


class UnsafeValue(DeployerError):
    """A value that would change a rendered file's directives: nothing is written."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, where: str, value: str) -> None:
        super().__init__(f"refusing to render: {where} = {value!r} could inject a directive into a config file")


def check_context(ctx: Mapping[str, Any]) -> Mapping[str, Any]:
    """Raise UnsafeValue for the first value a template must not interpolate; else return ``ctx``."""
    for name, value in ctx.items():
        if name not in NOT_INTERPOLATED:
            _config(name, value)
    for index, pair in enumerate(ctx.get("env_pairs", ())):
        _env_pair(f"env_pairs[{index}]", pair)
    return ctx


def _config(where: str, value: Any) -> None:
    """Walk containers and dataclasses; every leaf must read as ``CONFIG_VALUE``.

    Callables (helpers a template calls) are not values: their results are
    what the templates' own text makes of checked values.
    """
    if value is None or isinstance(value, (bool, int, float)) or callable(value) and not isinstance(value, type):
        return
    if isinstance(value, (tuple, list, set, frozenset)):
        for index, item in enumerate(value):
            _config(f"{where}[{index}]", item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _config(f"{where} key", key)
            _config(f"{where}[{key!r}]", item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if field.name not in NOT_INTERPOLATED:
                _config(f"{where}.{field.name}", getattr(value, field.name))
    elif not CONFIG_VALUE.fullmatch(str(value)):  # str, paths, and whatever prints into a template
        raise UnsafeValue(where, str(value))


def _env_pair(where: str, pair: tuple[str, str]) -> None:
    name, value = pair
    if not ENV_NAME.fullmatch(name):
        raise UnsafeValue(where, name)
    for ch in value:
        if ch != "\t" and unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            raise UnsafeValue(f"{where} ({name})", f"<value with U+{ord(ch):04X}, not shown>")
