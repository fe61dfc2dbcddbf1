"""``deployer check`` and ``render`` in-process (no host contacted, secrets masked), and bad input for every command."""

from __future__ import annotations

import stat

import pytest
import yaml

from tests.fakehosts import SECRET, host_doc, project


def test_check_prints_the_effective_settings_with_secrets_masked(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    result = proj.cli("check")
    assert result.exit_code == 0
    doc = yaml.safe_load(result.stdout)
    assert doc["app"]["secrets"] == {"APP_SECRET_KEY": "***"}
    assert list(doc["hosts"]) == ["web1", "web2"] and doc["hosts"]["web2"]["server"] == "uwsgi"
    assert doc["hosts"]["web1"]["address"] == "198.18.1.2"
    assert result.stderr == "ok: 2 hosts selected\n"
    assert SECRET not in result.stdout
    assert proj.fleet.states == {}  # no connection made


def test_check_limit_selects_and_a_bad_limit_is_bad_input(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    one = proj.cli("check", "--limit", "!web1")
    assert one.exit_code == 0 and list(yaml.safe_load(one.stdout)["hosts"]) == ["web2"]
    assert one.stderr == "ok: 1 host selected\n"
    bad = proj.cli("check", "--limit", "nosuch")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "nosuch" in bad.stderr


def test_check_of_a_bad_inventory_names_file_and_line_without_a_traceback(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1, server="waitress")})
    result = proj.cli("check")
    assert result.exit_code == 2
    assert f"{proj.inventory}:" in result.stderr and "server" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_render_shows_every_file_with_secrets_masked_unless_asked(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    result = proj.cli("render", "--limit", "web1")
    assert result.exit_code == 0
    headers = [line for line in result.stdout.splitlines() if line.startswith("# ==> ")]
    assert "# ==> web1:/etc/hello/env (0640 root:hello) <==" in headers
    assert "# ==> web1:/etc/systemd/system/hello.service (0644 root:root) <==" in headers
    assert SECRET not in result.stdout and 'APP_SECRET_KEY="***"' in result.stdout
    shown = proj.cli("render", "--limit", "web1", "--show-secrets")
    assert f'APP_SECRET_KEY="{SECRET}"' in shown.stdout


def test_render_out_writes_one_tree_per_host_secret_files_private(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    out = tmp_path / "out"
    result = proj.cli("render", "--out", str(out))
    assert result.exit_code == 0
    assert f"{out}/web2/etc/hello/env" in result.stdout.splitlines()
    env = out / "web1" / "etc" / "hello" / "env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and "***" in env.read_text()
    assert (out / "web2" / "etc" / "systemd" / "system" / "hello.service").is_file()


@pytest.mark.parametrize("argv", [("check",), ("render",), ("plan",), ("deploy",), ("rollback",), ("status",),
                                  ("releases",), ("unlock",), ("logs",), ("verify",), ("exec", "--", "true")],
                         ids=lambda argv: argv[0])
def test_every_command_exits_2_on_a_bad_inventory_before_touching_a_host(tmp_path, monkeypatch, argv) -> None:  # noqa: ANN001
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1, workers=0)})
    result = proj.cli(*argv)
    assert result.exit_code == 2
    assert f"{proj.inventory}:" in result.stderr and "workers" in result.stderr and "Traceback" not in result.stderr
    assert proj.fleet.states == {}
