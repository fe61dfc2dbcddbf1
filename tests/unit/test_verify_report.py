"""Verify output (table, JUnit, JSON), exit codes, masking of what a host run reports. No SSH."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from deployer.cli import main
from deployer.secret import Secret
from deployer.verify import suite
from deployer.verify.plugin import one_line
from deployer.verify.report import CheckResult, HostReport, exit_code, render_json, render_junit, render_table
from deployer.verify.runner import REASON_LIMIT, parse_results, pytest_argv

REPO = Path(__file__).resolve().parents[2]


def reports() -> list[HostReport]:
    return [
        HostReport("lab1", [CheckResult("app-user", "passed", seconds=0.01),
                            CheckResult("proxy", "failed", "nginx.service is inactive (dead)"),
                            CheckResult("health", "skipped", "not checked: proxy failed")], seconds=1.5),
        HostReport("lab2", [CheckResult("app-user", "passed"), CheckResult("env-file", "passed")], seconds=1.2),
        HostReport("lab3", error="lab3: host key for 198.18.3.2 is not in /tmp/known_hosts", seconds=0.2),
    ]


def test_exit_code_is_zero_only_when_every_check_on_every_host_passed() -> None:
    good = [HostReport("lab2", [CheckResult("app-user", "passed")])]
    assert exit_code(good) == 0
    assert exit_code(reports()) == 1
    assert exit_code(reports()[2:]) == 1  # unreachable host
    assert exit_code([HostReport("lab1", [CheckResult("health", "failed", "502")])]) == 1
    assert exit_code([]) == 1


def test_table_shows_each_host_check_outcome_and_reason() -> None:
    text = render_table(reports())
    assert "lab1: 1 passed, 1 failed, 1 skipped (1.5s)" in text
    assert "  proxy     failed   nginx.service is inactive (dead)" in text
    assert "lab3: error: lab3: host key for 198.18.3.2 is not in /tmp/known_hosts" in text
    assert text.splitlines()[-1] == "verify failed on lab1, lab3"


def test_junit_has_one_testcase_per_check_per_host() -> None:
    root = ET.fromstring(render_junit(reports()))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["lab1", "lab2", "lab3"]
    lab1 = suites["lab1"]
    assert [c.get("name") for c in lab1.iter("testcase")] == ["app-user", "proxy", "health"]
    assert (lab1.get("tests"), lab1.get("failures"), lab1.get("skipped")) == ("3", "1", "1")
    proxy = next(c for c in lab1.iter("testcase") if c.get("name") == "proxy")
    assert proxy.find("failure").get("message") == "nginx.service is inactive (dead)"
    assert proxy.get("classname") == "verify.lab1"
    assert [c.get("name") for c in suites["lab3"].iter("testcase")] == ["host"]  # unreachable: one failed case


def test_json_is_one_document() -> None:
    doc = json.loads(render_json(reports()))
    assert doc["ok"] is False
    lab1 = doc["hosts"][0]
    assert lab1["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert lab1["checks"][1] == {"name": "proxy", "outcome": "failed", "reason": "nginx.service is inactive (dead)",
                                 "seconds": 0.0}


def test_failure_line_for_a_deploy() -> None:
    lab1, lab2, lab3 = reports()
    assert lab1.failure() == "proxy: nginx.service is inactive (dead)"
    assert lab2.failure() is None
    assert lab3.failure().startswith("lab3: host key")


def test_results_are_masked_then_shortened() -> None:
    secret = Secret('pa"ss\\word-123')
    doc = {"error": None, "checks": [
        {"name": "t.py::test_env", "outcome": "failed", "seconds": 0.1,
         "reason": "AssertionError: assert 'X' in 'KEY=\"pa\"ss\\\\word-123\"' " + "x" * 400},
        {"name": "t.py::test_plain", "outcome": "failed", "seconds": 0.1, "reason": "saw pa\"ss\\word-123"},
    ]}
    report = parse_results("lab1", doc, (secret,), 1.0)
    first, second = (c.reason for c in report.checks)
    assert "word-123" not in first and "***" in first and len(first) == REASON_LIMIT
    assert second == "saw ***"


def test_reason_is_the_first_line_without_pytest_prefix() -> None:
    assert one_line("Failed: hello.service is inactive\nmore") == "hello.service is inactive"
    assert one_line("\n  Skipped: not checked: proxy failed") == "not checked: proxy failed"


def test_pytest_runs_only_our_plugin_with_user_tests_and_k(tmp_path: Path) -> None:
    argv = pytest_argv(tmp_path / "spec.json", tmp_path / "pytest.ini", tmp_path, builtin=True,
                       tests_dir=tmp_path / "checks", keyword="health or static")
    assert argv[1:5] == ["-m", "pytest", "-p", "deployer.verify.plugin"]
    assert argv[-4:] == [suite.__file__, str(tmp_path / "checks"), "-k", "health or static"]
    no_builtin = pytest_argv(tmp_path / "s", tmp_path / "i", tmp_path, builtin=False, tests_dir=None, keyword=None)
    assert not any(a.endswith("suite.py") for a in no_builtin)


def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["verify", "-i", str(REPO / "inventories" / "lab.yml"), "--tests", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a directory" in missing.output and "Traceback" not in missing.output
    no_inventory = runner.invoke(main, ["verify", "-i", str(tmp_path / "none.yml")])
    assert no_inventory.exit_code == 2 and "inventory file not found" in no_inventory.output
    bad_limit = runner.invoke(main, ["verify", "-i", str(REPO / "inventories" / "lab.yml"), "-l", "nohost"])
    assert bad_limit.exit_code == 2 and "matches no host" in bad_limit.output


def test_deploy_has_no_verify_option() -> None:
    result = CliRunner().invoke(main, ["deploy", "--help"])
    assert "--no-verify" in result.output
