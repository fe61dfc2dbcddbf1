"""The per-host pytest run, end to end on this machine: user tests with a local ``host``, no SSH.

The user's conftest overrides ``host`` with testinfra's local backend, so the
plugin, the results file, naming, collection errors and masking are all real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import UsageError
from deployer.verify.runner import verify_host
from tests import factories as f

SECRET = "s3cr3t-Key_value"  # the factories' app secret

CONFTEST = '''
import pytest
import testinfra


@pytest.fixture(scope="session")
def host():
    return testinfra.get_host("local://")
'''

TESTS = f'''
def test_runs_commands(host, deployer_host):
    assert host.run("echo %s", deployer_host["app"]["user"]).stdout.strip() == "hello"


def test_sees_settings(deployer_host):
    assert deployer_host["server"] == "uwsgi" and deployer_host["layout"]["env_file"] == "/etc/hello/env"
    assert "APP_SECRET_KEY" in deployer_host["app"]["secret_names"]


def test_leaks_a_secret(host):
    assert host.run("echo %s", "KEY={SECRET}").stdout == "nothing"


def test_skips(host):
    import pytest
    pytest.skip("not on this host")
'''


@pytest.fixture
def checks_dir(tmp_path: Path) -> Path:
    tests = tmp_path / "checks"
    tests.mkdir()
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "test_local.py").write_text(TESTS)
    (tests / "test_broken.py").write_text("def test_x(:\n")
    return tests


def test_user_tests_run_with_fixtures_and_report_one_masked_line_each(checks_dir: Path) -> None:
    inv = f.inventory(f.host(server="uwsgi"))
    report = verify_host(inv, inv.hosts[0], tests_dir=checks_dir, builtin=False)
    assert report.error is None
    results = {c.name: c for c in report.checks}
    assert {n: c.outcome for n, c in results.items()} == {
        "test_broken.py (collect)": "failed",
        "test_local.py::test_runs_commands": "passed",
        "test_local.py::test_sees_settings": "passed",
        "test_local.py::test_leaks_a_secret": "failed",
        "test_local.py::test_skips": "skipped",
    }
    leak = results["test_local.py::test_leaks_a_secret"].reason
    assert SECRET not in leak and "KEY=***" in leak and "\n" not in leak
    assert "SyntaxError" in results["test_broken.py (collect)"].reason
    assert results["test_local.py::test_skips"].reason == "not on this host"
    assert report.failure().startswith("test_broken.py (collect): ")


def test_k_selects_user_tests_and_a_bad_expression_is_bad_input(checks_dir: Path) -> None:
    (checks_dir / "test_broken.py").unlink()
    inv = f.inventory(f.host())
    report = verify_host(inv, inv.hosts[0], tests_dir=checks_dir, keyword="settings", builtin=False)
    assert [c.name for c in report.checks] == ["test_local.py::test_sees_settings"]
    with pytest.raises(UsageError):
        verify_host(inv, inv.hosts[0], tests_dir=checks_dir, keyword="(", builtin=False)


def test_an_unreachable_host_is_one_error_not_a_crash(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    inv = f.inventory(f.host(address="127.0.0.1", ssh_port=1, known_hosts=known))
    report = verify_host(inv, inv.hosts[0])
    assert report.checks == [] and "cannot connect to 127.0.0.1:1" in report.error
