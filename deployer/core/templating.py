"""The app's own templates (``app.files``): sandboxed Jinja, pure.

An app's template is the user's text, not deployer's: it renders in Jinja's
``SandboxedEnvironment`` (no attribute walks to ``__class__`` and the like) with
only plain data in reach: ``env``, ``secrets`` (names to values; ``***`` unless
revealed), ``app`` (its name) and ``host`` (the host's name). An undefined name
is an error, not an empty string. A template that names ``secrets`` renders a
secret file: ``plan`` shows that it changes, never its lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

CONTEXT_NAMES = ("env", "secrets", "app", "host")


class TemplateProblem(ValueError):
    """A template that cannot render: ``line`` in the template (0 when unknown) and why."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def uses_secrets(text: str) -> bool:
    """Whether the template reads ``secrets`` at all (then its output is secret)."""
    return "secrets" in meta.find_undeclared_variables(environment().parse(text))


def render_config(text: str, context: Mapping[str, object]) -> str:
    """Render an app template; ``TemplateProblem`` for a syntax error, an unknown name or a sandbox refusal."""
    try:
        unknown = sorted(meta.find_undeclared_variables(environment().parse(text)) - set(CONTEXT_NAMES))
        if unknown:
            raise TemplateProblem(0, f"unknown name {unknown[0]!r} (a template sees {', '.join(CONTEXT_NAMES)})")
        return environment().from_string(text).render(dict(context))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(exc.lineno or 0, f"template syntax: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(0, f"{exc.message} (env and secrets hold exactly the inventory's names)") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateProblem(0, f"refused by the template sandbox: {exc}") from None
