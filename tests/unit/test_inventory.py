"""Inventory loading: a table of bad snippets and the exact messages they give."""

from __future__ import annotations

import textwrap
from pathlib import Path, PurePosixPath

import pytest

from deployer.errors import InventoryError
from deployer.config.inventory import load_inventory

BASE = """\
app:
  name: hello
  source: app
  wsgi: app:app
groups:
  web:
    hosts:
      web1: {address: 203.0.113.10}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app" / "static").mkdir(parents=True)
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "inv.yml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(project: Path, text: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(write(project, text))
    return [str(p) for p in info.value.problems]


def test_minimal_inventory_resolves_defaults(project: Path) -> None:
    inventory = load_inventory(write(project, BASE))
    (host,) = inventory.hosts
    assert host.name == "web1" and host.groups == ("web",)
    assert (host.server, host.proxy, host.ssh_user, host.become) == ("gunicorn", "nginx", "root", False)
    assert host.server_names == ("203.0.113.10",)
    assert host.deploy_root == PurePosixPath("/srv")
    assert inventory.app.source == project / "app"
    assert str(inventory.app.wsgi) == "app:app"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (BASE.replace("name: hello", "name: Hello"),
         "inv.yml:2: app/name: expected a name matching ^[a-z][a-z0-9-]{0,30}$, got 'Hello'"),
        (BASE.replace("wsgi: app:app", "wsgi: app"),
         "inv.yml:4: app/wsgi: expected 'module:attr' or 'module:factory()', got 'app'"),
        (BASE.replace("source: app", "source: nope"),
         "inv.yml:3: app/source: expected a directory, got 'nope' (not found)"),
        (BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, http_port: eighty}"),
         "inv.yml:8: groups/web/hosts/web1/http_port: expected an integer 1-65535, got 'eighty'"),
        (BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, ssh_port: null}"),
         "inv.yml:8: groups/web/hosts/web1/ssh_port: expected an integer 1-65535, got null"),
        (BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, become: yes please}"),
         "inv.yml:8: groups/web/hosts/web1/become: expected true or false, got 'yes please'"),
        (BASE + "hostz: {}\n",
         "inv.yml:9: hostz: unknown key (did you mean 'hosts'?)"),
        (BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  helth: /up\n"),
         "inv.yml:5: app/helth: unknown key (did you mean 'health'?)"),
        (BASE.replace("{address: 203.0.113.10}", "{}"),
         "inv.yml:8: groups/web/hosts/web1: missing required key 'address'"),
        (BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, server: mod_wsgi}"),
         "inv.yml:8: groups/web/hosts/web1: server mod_wsgi runs inside apache: set proxy: apache (got proxy nginx)"),
        (BASE + "      web2: {address: 203.0.113.10}\n",
         "inv.yml:9: groups/web/hosts/web2: address 203.0.113.10 is also used by host 'web1'"),
        (BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  static: {url: /static, dir: ../etc}\n"),
         "inv.yml:5: app/static/dir: expected a relative path inside the app (letters, digits, '.', '_', '-', no '..'), got '../etc' (it leaves the app)"),
        (BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  keep_releases: 1\n"),
         "inv.yml:5: app/keep_releases: expected an integer 2-100, got 1"),
        ("app: [1]\n", "inv.yml:1: app: expected a mapping of app settings, got a list"),
        (BASE.replace("web:\n", "web:\n    vars: {address: 1.2.3.4}\n"),
         "inv.yml:7: groups/web/vars/address: 'address' belongs on a host, not in shared settings"),
        (BASE + "  web:\n    hosts: {}\n",
         "inv.yml:9: groups/web: duplicate key (the earlier value would be ignored)"),
        ("app: {name: x\n", "inv.yml:2: YAML syntax error: while parsing a flow mapping expected ',' or '}', but got '<stream end>'"),
    ],
)
def test_bad_snippet_gives_exact_message(project: Path, snippet: str, expected: str) -> None:
    assert expected in problems(project, snippet)


@pytest.mark.parametrize(
    ("key", "value", "bad"),
    [
        ("server_name", '"evil.com; include /etc/passwd"', "';'"),
        ("server_name", '"a.com\\nreturn 200"', "'\\n'"),
        ("server_name", '"a.com{"', ""),
        ("client_max_body_size", '"1m;"', ""),
        ("deploy_root", '"/srv/$x"', "'$'"),
        ("deploy_root", '"/srv/a b"', "' '"),
        ("deploy_root", '"/srv/../etc"', ""),
        ("ssh_user", '"root\\""', ""),
        ("address", '"10.0.0.1;x"', "';'"),
    ],
)
def test_injection_attempts_are_rejected(project: Path, key: str, value: str, bad: str) -> None:
    found = problems(project, BASE.replace("{address: 203.0.113.10}", f"{{address: 203.0.113.10, {key}: {value}}}" if key != "address" else f"{{address: {value}}}"))
    (message,) = [m for m in found if f"web1/{key}:" in m]
    assert "expected" in message
    if bad:
        assert f"({bad} is not allowed" in message


def test_env_values_may_hold_any_single_line_but_names_are_checked(project: Path) -> None:
    text = BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  env: {GREETING: 'a \"quoted\" $dollar; {x}', 1BAD: x, ML: \"a\\nb\"}\n")
    found = problems(project, text)
    assert "inv.yml:5: app/env/1BAD: expected an environment name like APP_MODE, got '1BAD'" in found
    assert "inv.yml:5: app/env/ML: expected a single-line string, got 'a\\nb' (line breaks are not allowed)" in found
    assert not any("GREETING" in m for m in found)


def test_every_problem_is_reported_at_once(project: Path) -> None:
    text = BASE.replace("name: hello", "name: Hello").replace("{address: 203.0.113.10}", "{address: 203.0.113.10, workers: 0, proxy: haproxy}")
    found = problems(project, text)
    assert len(found) == 3


def test_host_in_two_groups_takes_later_group_vars_and_own_settings(project: Path) -> None:
    inventory = load_inventory(write(project, """\
        app: {name: hello, source: app, wsgi: "app:create_app()"}
        defaults: {workers: 2, timeout: 10}
        groups:
          web:
            vars: {workers: 4, server: uwsgi}
            hosts:
              web1: {address: 203.0.113.10}
          canary:
            vars: {workers: 8}
            hosts:
              web1: {timeout: 60}
    """))
    (host,) = inventory.hosts
    assert host.groups == ("web", "canary")
    assert (host.workers, host.timeout, host.server) == (8, 60, "uwsgi")
    assert inventory.app.wsgi.factory


def test_conflicting_host_settings_in_two_groups_are_an_error(project: Path) -> None:
    found = problems(project, """\
        app: {name: hello, source: app, wsgi: app:app}
        groups:
          a: {hosts: {web1: {address: 203.0.113.10, workers: 2}}}
          b: {hosts: {web1: {workers: 3}}}
    """)
    assert found == ["inv.yml:4: groups/b/hosts/web1/workers: conflicts with the value given where 'web1' is listed before"]


def test_secrets_are_loaded_masked_and_checked(project: Path) -> None:
    (project / "secrets.env").write_text("# comment\nSECRET_KEY='s3cr3t value'\nexport TOKEN=\"a\\\"b\"\n")
    inventory = load_inventory(write(project, BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  secrets: secrets.env\n")))
    secrets = inventory.app.secrets
    assert secrets["SECRET_KEY"].reveal() == "s3cr3t value"
    assert secrets["TOKEN"].reveal() == 'a"b'
    assert "s3cr3t" not in repr(inventory) and "s3cr3t" not in f"{secrets['SECRET_KEY']}"


def test_bad_secrets_file_names_line_without_showing_value(project: Path) -> None:
    (project / "secrets.env").write_text("OK=1\nBROKEN='unterminated s3cr3t\n")
    found = problems(project, BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  secrets: secrets.env\n"))
    assert found == ["secrets.env:2: BROKEN: expected a value in matching quotes on one line (the value is not shown)"]
    assert not any("s3cr3t" in m for m in found)


def test_tls_files_must_exist(project: Path) -> None:
    found = problems(project, BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, tls: {cert: c.pem, key: k.pem}}"))
    assert "inv.yml:8: groups/web/hosts/web1/tls/cert: expected a file, got 'c.pem' (not found)" in found
    assert "inv.yml:8: groups/web/hosts/web1/tls/key: expected a file, got 'k.pem' (not found)" in found


def test_missing_file_is_a_clear_error(project: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load_inventory(project / "missing.yml")
    assert str(info.value).startswith("missing.yml: inventory file not found")
