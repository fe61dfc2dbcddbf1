"""Templates from an inventory's ``templates:`` directory render in a sandbox (issue 11, finding 5).

The directory is the inventory author's text: it may shape the configs, never run
code on the controller, read its files or reveal a secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import main
from deployer.config.model import TLS
from deployer.core.render import render_host
from deployer.core.templating import TemplateProblem
from tests import factories as f

SSTI = "{{ cycler.__init__.__globals__.os.popen('touch %s').read() }}"


def site_override(templates: Path, body: str) -> Path:
    path = templates / "nginx" / "site.conf.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def render_with(templates: Path, host=None):  # noqa: ANN001, ANN201
    host = host or f.host()
    inv = f.inventory(host, templates_dir=templates)
    return {str(x.path): x for x in render_host(inv, host, reveal_secrets=True)}


def test_ssti_runs_nothing_and_names_file_and_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = site_override(tmp_path / "templates", "# site\nserver {\n" + SSTI % marker + "\n}\n")
    with pytest.raises(TemplateProblem) as caught:
        render_with(tmp_path / "templates")
    assert not marker.exists()
    assert f"{path}:3: refused by the sandbox" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_template_cannot_reveal_a_secret(tmp_path: Path) -> None:
    site_override(tmp_path / "t", "shown={{ app.secrets.APP_SECRET_KEY }}\n")
    assert render_with(tmp_path / "t")["/etc/nginx/sites-available/hello.conf"].content == "shown=***\n"
    for body in ("{{ app.secrets.APP_SECRET_KEY.reveal() }}", "{{ app.secrets.APP_SECRET_KEY.reveal }}",
                 "{{ app.secrets.APP_SECRET_KEY._value }}", "{{ app.secrets.values()|map(attribute='_value')|join }}"):
        site_override(tmp_path / "t", "x\n" + body + "\n")
        with pytest.raises(TemplateProblem, match=r"site\.conf\.j2:2: "):
            render_with(tmp_path / "t")


def test_a_template_cannot_read_or_write_controller_files(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    host = f.host(tls=TLS(cert=tmp_path / "cert.pem", key=key))
    for body in ("{{ host.tls.key.read_text() }}", "{{ host.tls.key.open().read() }}",
                 "{{ host.tls.key.with_name('planted').write_text('x') }}", "{{ app.source.cwd() }}"):
        site_override(tmp_path / "t", body + "\n")
        with pytest.raises(TemplateProblem, match="refused by the sandbox"):
            render_with(tmp_path / "t", host)
    assert not (tmp_path / "planted").exists()
    # Pure path arithmetic stays available to templates.
    site_override(tmp_path / "t", "{{ host.tls.key.name }} {{ layout.current.joinpath('static') }}\n")
    assert render_with(tmp_path / "t", host)["/etc/nginx/sites-available/hello.conf"].content == (
        "key.pem /srv/hello/current/static\n")


def test_a_template_cannot_change_the_data_it_is_given(tmp_path: Path) -> None:
    site_override(tmp_path / "t", "{% set x = app.env.update(A='1') %}\n")
    with pytest.raises(TemplateProblem, match="refused by the sandbox"):
        render_with(tmp_path / "t")


def test_template_mistakes_are_file_line_errors(tmp_path: Path) -> None:
    path = site_override(tmp_path / "t", "a\n{% if %}\n")
    with pytest.raises(TemplateProblem, match=f"^{path}:2: "):
        render_with(tmp_path / "t")
    path = site_override(tmp_path / "t", "a\nb\n{{ 1 // 0 }}\n")
    with pytest.raises(TemplateProblem, match=f"^{path}:3: cannot render: "):
        render_with(tmp_path / "t")


def test_builtin_templates_render_in_the_sandbox() -> None:
    for server, proxy in f.COMBINATIONS:
        host = f.host(server=server, proxy=proxy)
        files = render_host(f.inventory(host), host, reveal_secrets=True)
        assert any("s3cr3t-Key_value" in x.content for x in files if x.secret)


def test_render_command_exits_2_with_file_line_and_no_traceback(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = site_override(tmp_path / "templates", "x\n" + SSTI % marker + "\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        f"app:\n  name: hello\n  source: {f.EXAMPLE_APP}\n  wsgi: app:app\ntemplates: templates\n"
        "hosts:\n  web1: {address: 198.18.0.11, server_name: web1.example}\n")
    result = CliRunner().invoke(main, ["render", "-i", str(inventory)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2: refused by the sandbox" in result.output
    assert "Traceback" not in result.output and not marker.exists()
