"""The Jinja environment every template renders in: a sandbox, and errors as FILE:LINE.

An inventory's ``templates:`` directory is text from whoever wrote the inventory,
rendered on the controller as the user who runs deployer (often root): it may say
what the configs contain, never run code. Jinja's ``ImmutableSandboxedEnvironment``
refuses ``_``-names (``cycler.__init__.__globals__``), unsafe callables and changes
to lists and dicts; on top of it a template cannot touch a ``Secret`` (it prints
``***``, ``reveal`` is refused) nor call a controller ``Path``'s I/O methods
(``host.tls.key.read_text()``, ``app.source.write_text(...)``). The built-in
templates use attributes, filters and macros only, so they render the same.

The app's own ``app.files`` templates render in the same sandbox with only plain data
in reach: ``env``, ``secrets`` (values; ``***`` unless revealed), ``app`` (its name) and
``host`` (the host's name). One that names ``secrets`` renders a secret file: ``plan``
shows that it changes, never its lines.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from deployer.errors import EXIT_BAD_INPUT, DeployerError
from deployer.secret import Secret

# What a template may get wrong at render time besides Jinja's own errors.
RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError)


class TemplateProblem(DeployerError):
    """A template deployer cannot render: FILE:LINE: what is wrong (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class DeployerSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, minus every way from a template to a secret or the controller's files."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Secret):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def is_safe_callable(self, obj: Any) -> bool:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, Secret):
            return False
        # Path's I/O methods (read_text, write_bytes, unlink, cwd...) are not PurePath's.
        owner_type = owner if isinstance(owner, type) else type(owner)
        if issubclass(owner_type, PurePath) and not hasattr(PurePath, getattr(obj, "__name__", "")):
            return False
        return super().is_safe_callable(obj)


def environment(search: Sequence[str]) -> jinja2.Environment:
    """Templates looked up in ``search`` in order (the first directory that has the name wins)."""
    return DeployerSandbox(
        loader=jinja2.FileSystemLoader(list(search)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(env: jinja2.Environment, name: str, ctx: Mapping[str, object]) -> str:
    """``name`` rendered with ``ctx``; any mistake in it is a ``TemplateProblem`` at its FILE:LINE."""
    try:
        return env.get_template(name).render(ctx)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name or name}:{exc.lineno}"
        raise TemplateProblem(f"{where}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateProblem(f"{name}: template not found: {exc.message}") from exc
    except RENDER_ERRORS as exc:
        kind = "refused by the sandbox" if isinstance(exc, jinja2.exceptions.SecurityError) else "cannot render"
        raise TemplateProblem(f"{template_location(exc, name, env)}: {kind}: {exc}") from exc


def template_location(exc: BaseException, name: str, env: jinja2.Environment) -> str:
    """FILE:LINE of the innermost template frame in ``exc``'s traceback (Jinja maps its frames to template lines)."""
    dirs = tuple(str(d).rstrip("/") + "/" for d in getattr(env.loader, "searchpath", ()))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(dirs)]
    if not frames:
        return name
    return f"{frames[-1].filename}:{frames[-1].lineno}"


# -- the app's own templates (``app.files``) ---------------------------------------------

APP_CONTEXT = ("env", "secrets", "app", "host")


class AppTemplateProblem(Exception):
    """An ``app.files`` template that cannot render: ``line`` in it (0 when unknown) and why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def app_environment() -> jinja2.Environment:
    """The same sandbox, no loader: an app template sees only the plain data it is given."""
    return DeployerSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


_APP_ENV = app_environment()


def uses_secrets(text: str) -> bool:
    """Whether an ``app.files`` template reads ``secrets`` at all (then what it renders is secret)."""
    return "secrets" in meta.find_undeclared_variables(_APP_ENV.parse(text))


def render_config(text: str, context: Mapping[str, object]) -> str:
    """Render an ``app.files`` template (names: env, secrets, app, host); ``AppTemplateProblem`` if it cannot."""
    try:
        unknown = sorted(meta.find_undeclared_variables(_APP_ENV.parse(text)) - set(APP_CONTEXT))
        if unknown:
            raise AppTemplateProblem(0, f"unknown name {unknown[0]!r} (a template sees {', '.join(APP_CONTEXT)})")
        return _APP_ENV.from_string(text).render(dict(context))
    except jinja2.TemplateSyntaxError as exc:
        raise AppTemplateProblem(exc.lineno or 0, f"template syntax: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise AppTemplateProblem(0, f"refused by the template sandbox: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise AppTemplateProblem(0, f"{exc.message} (env and secrets hold exactly the inventory's names)") from None
    except RENDER_ERRORS as exc:
        raise AppTemplateProblem(0, f"cannot render: {exc}") from None
