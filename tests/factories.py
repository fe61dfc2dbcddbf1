"""Small builders for the inventory dataclasses: tests need no YAML.

    inv = inventory(host(server="uwsgi", proxy="apache", tls=True))
"""

from __future__ import annotations

from pathlib import Path

from deployer.config.model import TLS, App, Host, Inventory, Static, WsgiTarget
from deployer import stacks
from deployer.secret import Secret
from deployer.core.steps import STAGING, VENV_UPLOAD, Context, Operator, Payload, deploy_steps, rollback_steps

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "hello"

COMBINATIONS = stacks.combinations()  # every valid (server, proxy), from the stack registry


def app(**overrides) -> App:
    fields = dict(
        name="hello",
        source=EXAMPLE_APP,
        wsgi=WsgiTarget("app", "app"),
        env={"APP_GREETING": "Hello from the lab"},
        secrets={"APP_SECRET_KEY": Secret("s3cr3t-Key_value")},
        static=Static(url="/static", dir="static"),
        shared=("instance",),
    )
    fields.update(overrides)
    return App(**fields)


def host(name: str = "web1", *, tls: bool | TLS = False, **overrides) -> Host:
    fields = dict(
        name=name,
        address="198.18.0.11",
        server_names=(f"{name}.lab.example", f"www.{name}.lab.example"),
    )
    if tls is True:
        fields["tls"] = TLS(cert=Path("/controller/tls/cert.pem"), key=Path("/controller/tls/key.pem"))
    elif tls:
        fields["tls"] = tls
    fields.update(overrides)
    return Host(**fields)


def inventory(*hosts: Host, app_: App | None = None, templates_dir: Path | None = None) -> Inventory:
    hosts = hosts or (host(),)
    return Inventory(
        path=Path("/controller/inventories/lab.yml"),
        app=app_ or app(),
        hosts=tuple(hosts),
        groups={"web": tuple(h.name for h in hosts)},
        templates_dir=templates_dir,
    )


OPERATOR = Operator("tester", "controller.example")
PAYLOAD = Payload(Path("/controller/cache/app.tar.gz"), Path("/controller/cache/venv.tar.gz"),
                  ("sh", "-c", "build the venv", "sh", str(STAGING / VENV_UPLOAD)))


def deploy_steps_of(inv: Inventory, plan, facts, files=None, *, rollback: bool = False) -> tuple:  # noqa: ANN001
    """The steps a deploy (or rollback) of ``plan`` sends, with the files render makes for its host."""
    from deployer.core.render import render_host

    files = files if files is not None else render_host(inv, plan.host, reveal_secrets=True)
    ctx = Context(inv, plan, files, OPERATOR)
    return ctx, (rollback_steps(ctx, facts) if rollback else deploy_steps(ctx, facts, PAYLOAD))


def whats(inv: Inventory, plan, facts) -> list[str]:  # noqa: ANN001
    return [s.what for s in deploy_steps_of(inv, plan, facts)[1]]
