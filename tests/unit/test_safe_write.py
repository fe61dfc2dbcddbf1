"""``render --out`` and ``verify --junit`` write new files only (issue 11, finding 4).

Before: a link planted under DIR made deployer overwrite its target and chmod it
0644; a file someone else created in advance received the real secrets.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from deployer.cli import main
from deployer.errors import UsageError
from deployer.safe_write import fresh_directory, replace_file, write_new, write_under
from tests import factories as f


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("theirs\n")
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_new_refuses_a_planted_link_and_an_existing_file(tmp_path: Path, victim: Path) -> None:
    link = tmp_path / "env"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="cannot create"):
        write_new(link, "SECRET=1\n", secret=False)
    with pytest.raises(UsageError, match="cannot create"):
        write_new(victim, "SECRET=1\n", secret=True)
    assert victim.read_text() == "theirs\n" and mode(victim) == 0o600


def test_modes_are_exact_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_new(tmp_path / "key.pem", "k\n", secret=True)
        write_new(tmp_path / "site.conf", "s\n", secret=False)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "key.pem") == 0o600 and mode(tmp_path / "site.conf") == 0o644


def test_fresh_directory_refuses_what_exists(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    for existing in (tmp_path / "out", tmp_path / "elsewhere"):
        with pytest.raises(UsageError, match="already exists"):
            fresh_directory(existing)
    fresh_directory(tmp_path / "new" / "deeper")
    assert (tmp_path / "new" / "deeper").is_dir()


def test_write_under_stays_under_its_root(tmp_path: Path) -> None:
    fresh_directory(tmp_path / "out")
    for bad in ("../escape", "web1/../../escape", "/etc/passwd"):
        with pytest.raises(UsageError, match="not a plain relative path"):
            write_under(tmp_path / "out", PurePosixPath(bad), "x", secret=False)
    assert not (tmp_path / "escape").exists()
    (tmp_path / "out" / "web1").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="not a directory deployer created"):
        write_under(tmp_path / "out", PurePosixPath("web1/etc/hello/env"), "x", secret=True)


def test_replace_file_replaces_a_link_instead_of_following_it(tmp_path: Path, victim: Path) -> None:
    junit = tmp_path / "report.xml"
    junit.symlink_to(victim)
    replace_file(junit, "<testsuites/>\n")
    assert not junit.is_symlink() and junit.read_text() == "<testsuites/>\n" and mode(junit) == 0o644
    assert victim.read_text() == "theirs\n" and mode(victim) == 0o600
    replace_file(junit, "<testsuites></testsuites>\n")  # a second run replaces its own file
    assert junit.read_text() == "<testsuites></testsuites>\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.xml", "victim"]


def inventory_file(tmp_path: Path) -> Path:
    (tmp_path / "secrets.env").write_text("APP_SECRET_KEY=s3cr3t-Key_value\n")
    path = tmp_path / "inv.yml"
    path.write_text(f"app:\n  name: hello\n  source: {f.EXAMPLE_APP}\n  wsgi: app:app\n  secrets: secrets.env\n"
                    "hosts:\n  web1: {address: 198.18.0.11, server_name: web1.example}\n")
    return path


def test_render_out_writes_a_new_tree_with_secret_files_0600(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", "-i", str(inventory_file(tmp_path)), "--out", str(out), "--show-secrets"])
    assert result.exit_code == 0, result.output
    env = out / "web1" / "etc" / "hello" / "env"
    assert "s3cr3t-Key_value" in env.read_text() and mode(env) == 0o600
    assert mode(out / "web1" / "etc" / "systemd" / "system" / "hello.service") == 0o644


def test_render_out_refuses_an_existing_directory_with_a_planted_link(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "out"
    (out / "web1" / "etc" / "hello").mkdir(parents=True)
    (out / "web1" / "etc" / "hello" / "env").symlink_to(victim)
    result = CliRunner().invoke(main, ["render", "-i", str(inventory_file(tmp_path)), "--out", str(out), "--show-secrets"])
    assert result.exit_code == 2 and "already exists" in result.output, result.output
    assert victim.read_text() == "theirs\n" and mode(victim) == 0o600


def test_verify_junit_goes_through_replace_file(tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployer.verify import runner
    from deployer.verify.report import CheckResult, HostReport

    monkeypatch.setattr(runner, "verify_all", lambda *a, **k: [HostReport("web1", [CheckResult("nginx", "passed")])])
    junit = tmp_path / "junit.xml"
    junit.symlink_to(victim)
    result = CliRunner().invoke(main, ["verify", "-i", str(inventory_file(tmp_path)), "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "theirs\n" and "<testcase" in junit.read_text() and not junit.is_symlink()


def test_replace_file_errors_name_the_file_and_leave_nothing(tmp_path: Path) -> None:
    (tmp_path / "report.xml").mkdir()
    with pytest.raises(UsageError, match=r"report\.xml: cannot write: "):
        replace_file(tmp_path / "report.xml", "x")
    with pytest.raises(UsageError, match=r"missing/report\.xml: cannot write: "):
        replace_file(tmp_path / "missing" / "report.xml", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]
