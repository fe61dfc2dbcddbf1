"""``app.files`` and nested ``shared`` paths: validation, rendering, plan and the release's links.

The lab half is tests/integration/test_corpus.py (pyfile_config, webassets_cache).
"""

from __future__ import annotations

import textwrap
from pathlib import Path, PurePosixPath

import pytest

from deployer.artifact.manifest import AppFile, IgnoreRules
from deployer.artifact.source import collect_app_files, linked_parent_problems
from deployer.config.inventory import load_inventory
from deployer.core.layout import Layout, config_links
from deployer.core.plan import Change
from deployer.core.render import render_host
from deployer.errors import InventoryError
from deployer.init.scan import inspect_app
from deployer.init.writer import starter_inventory
from deployer.artifact.source import SourceError

BASE = """\
app:
  name: hello
  source: app
  wsgi: app:app
  secrets: secrets.env
  env: {GREETING: "Grüß Gott"}
  static: {url: /static, dir: pkg/static}
  shared: [instance, pkg/static/.webassets-cache]
  files:
    instance/config.py: config.py.j2
    settings.cfg: settings.cfg.j2
groups:
  web:
    hosts:
      web1: {address: 203.0.113.10}
"""
SECRET = "s3cr3t-'quoted'-value"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app" / "pkg" / "static").mkdir(parents=True)
    (tmp_path / "app" / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    (tmp_path / "secrets.env").write_text(f'SECRET_KEY="{SECRET}"\n')
    (tmp_path / "config.py.j2").write_text("SECRET_KEY = {{ secrets.SECRET_KEY | tojson }}\n")
    (tmp_path / "settings.cfg.j2").write_text("greeting = {{ env.GREETING }} on {{ host }}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(project: Path, text: str = BASE):
    path = project / "inv.yml"
    path.write_text(textwrap.dedent(text))
    return load_inventory(path)


def problems(project: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load(project, text)
    return [str(p) for p in info.value.problems]


def test_files_render_with_env_and_secrets_root_owned_readable_by_the_app(project: Path) -> None:
    inv = load(project)
    host = inv.hosts[0]
    files = {str(f.path): f for f in render_host(inv, host, reveal_secrets=True)}
    config, settings = files["/etc/hello/files/instance/config.py"], files["/etc/hello/files/settings.cfg"]
    assert config.content == 'SECRET_KEY = "s3cr3t-\\u0027quoted\\u0027-value"\n'  # tojson: a valid Python literal
    assert settings.content == "greeting = Grüß Gott on web1\n"
    assert [(f.mode, f.owner, f.group) for f in (config, settings)] == [(0o640, "root", "hello")] * 2
    assert (config.secret, settings.secret) == (True, False)
    masked = {str(f.path): f for f in render_host(inv, host)}
    assert SECRET not in masked["/etc/hello/files/instance/config.py"].content


def test_plan_shows_a_file_rendered_with_secrets_changes_but_never_its_lines(project: Path) -> None:
    inv = load(project)
    files = {str(f.path): f for f in render_host(inv, inv.hosts[0], reveal_secrets=True)}
    secret_diff = Change(files["/etc/hello/files/instance/config.py"], "SECRET_KEY = 'old-secret'\n").diff()
    config_bytes = files["/etc/hello/files/instance/config.py"].content.encode()
    assert secret_diff == f"/etc/hello/files/instance/config.py: changed (secret, {len(config_bytes)} bytes)\n"
    assert "old-secret" not in secret_diff and SECRET not in secret_diff
    plain_diff = Change(files["/etc/hello/files/settings.cfg"], None).diff()
    assert "+greeting = Grüß Gott on web1" in plain_diff


def test_links_under_a_shared_path_are_the_app_users_others_go_in_the_release(project: Path) -> None:
    inv = load(project)
    in_shared, in_release = config_links(inv.app, Layout.of(inv.app, inv.hosts[0]))
    assert in_shared == (("instance/config.py", PurePosixPath("/etc/hello/files/instance/config.py")),)
    assert in_release == (("settings.cfg", PurePosixPath("/etc/hello/files/settings.cfg")),)


BAD = [
    ("shared: [instance, pkg/static/.webassets-cache]", "shared: [pkg, pkg/static/.webassets-cache]",
     "inv.yml:8: app/shared/1: 'pkg/static/.webassets-cache' overlaps 'pkg': list the outer one only"),
    ("shared: [instance, pkg/static/.webassets-cache]", "shared: [instance, ../x]",
     "inv.yml:8: app/shared/1: expected a relative path inside the app (letters, digits, '.', '_', '-', no '..'), got '../x' (it leaves the app)"),
    ("instance/config.py: config.py.j2", "instance: config.py.j2",
     "inv.yml:10: app/files/instance: 'instance' is a shared path (or holds one): a config file must be a file"),
    ("instance/config.py: config.py.j2", "pkg/static/secret.py: config.py.j2",
     "inv.yml:10: app/files/pkg/static/secret.py: 'pkg/static/secret.py' is inside the static folder 'pkg/static': "
     "the proxy would serve it to anyone"),
    ("instance/config.py: config.py.j2", ".venv/x.py: config.py.j2",
     "inv.yml:10: app/files/.venv/x.py: '.venv/x.py' is reserved by deployer"),
    ("instance/config.py: config.py.j2", "/etc/passwd: config.py.j2",
     "inv.yml:10: app/files//etc/passwd: expected a relative path inside the app (letters, digits, '.', '_', '-', no '..'), got '/etc/passwd' (it leaves the app)"),
    ("shared: [instance, pkg/static/.webassets-cache]", "shared: [instance, pkg/./x]",
     "inv.yml:8: app/shared/1: expected a relative path inside the app (letters, digits, '.', '_', '-', no '..'), "
     "got 'pkg/./x' (no empty or '.' parts)"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD)
def test_refused_paths(project: Path, old: str, new: str, expected: str) -> None:
    assert expected in problems(project, BASE.replace(old, new))


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ secrets.NOPE }}", "config.py.j2: app.files instance/config.py: 'dict object' has no attribute 'NOPE'"),
    ("{{ env.__class__.__mro__ }}", "config.py.j2: app.files instance/config.py: refused by the template sandbox"),
    ("a\n{% if %}", "config.py.j2:2: app.files instance/config.py: template syntax"),
    ("{{ os }}", "config.py.j2: app.files instance/config.py: unknown name 'os'"),
])
def test_template_problems_name_the_template(project: Path, template: str, expected: str) -> None:
    (project / "config.py.j2").write_text(template)
    assert any(p.startswith(expected) for p in problems(project, BASE)), problems(project, BASE)


def test_a_config_file_in_the_source_is_not_shipped_and_nested_shared_paths_neither(project: Path) -> None:
    (project / "app" / "settings.cfg").write_text("dev settings\n")
    (project / "app" / "pkg" / "static" / ".webassets-cache").mkdir()
    (project / "app" / "pkg" / "static" / ".webassets-cache" / "x").write_text("cached\n")
    (project / "app" / "pkg" / "static" / "site.css").write_text("a {}\n")
    shipped = {f.path for f in collect_app_files(load(project).app)}
    assert "settings.cfg" not in shipped and "pkg/static/site.css" in shipped
    assert not any(p.startswith("pkg/static/.webassets-cache") for p in shipped)
    assert IgnoreRules(config_files=["settings.cfg"]).reason("settings.cfg", False).startswith("app.files")


def test_a_shipped_link_above_a_path_deployer_links_is_refused(project: Path) -> None:
    elsewhere = project / "app" / "elsewhere"
    elsewhere.mkdir()
    inv = load(project, BASE.replace("pkg/static/.webassets-cache]", "pkg/static/.webassets-cache, data/cache]"))
    (project / "app" / "data").symlink_to("elsewhere")
    with pytest.raises(SourceError) as info:
        collect_app_files(inv.app)
    assert "data: is a link in the app, but data/cache (which deployer links on the host) lies under it" in str(info.value)
    files = [AppFile("pkg", "dir", 0o755), AppFile("pkg/static", "dir", 0o755)]
    assert linked_parent_problems(files, {"pkg/static/.webassets-cache": "shared"}) == []


def test_init_proposes_the_asset_cache_and_the_pyfile_config(tmp_path: Path) -> None:
    app = tmp_path / "site"
    (app / "gallery" / "static").mkdir(parents=True)
    (app / "requirements.txt").write_text("flask\ngunicorn\n")
    (app / "gallery" / "__init__.py").write_text(
        "from flask import Flask\nfrom flask_assets import Environment\n\n"
        "def create_app():\n    app = Flask(__name__, instance_relative_config=True)\n"
        "    app.config.from_pyfile('config.py')\n    Environment(app)\n    return app\n")
    text = starter_inventory(inspect_app(app), "site")
    assert "    - gallery/static/.webassets-cache" in text and "    - instance" in text
    assert "  #   instance/config.py: config.py.j2" in text
