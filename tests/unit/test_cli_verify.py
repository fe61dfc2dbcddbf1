"""``deployer verify`` in-process: the built-in checks judged over fake hosts' connections.

``deployer verify`` runs a pytest process per host over SSH (tests/unit/test_verify_runner.py
and the lab prove that part); here the command's own job is under test: which hosts, the
table, --json, --junit, exit codes, bad input, and masking, with ``Wiring.verify_hosts``
judging the same probe in this process (``runner.builtin_all``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from deployer.cli.common import Wiring
from deployer.config.inventory import load_inventory
from deployer.verify.checks import settings
from deployer.verify.report import HostReport
from deployer.verify.runner import builtin_all
from tests.fakehosts import SECRET, host_doc, project
from tests.unit.test_verify_checks import good_probe


def checked(tmp_path, monkeypatch, **hosts):  # noqa: ANN001, ANN003, ANN201
    proj = project(tmp_path, monkeypatch, hosts=hosts or {"web1": host_doc("web1", 1), "web2": host_doc("web2", 2)})
    inv = load_inventory(proj.inventory)
    for host in inv.hosts:
        proj.fleet[host.name].probe = good_probe(settings(inv, host))
    wiring = Wiring(connect=proj.fleet.connect,
                    verify_hosts=lambda inventory, hosts, tests_dir, keyword: builtin_all(inventory, hosts, proj.fleet.connect))
    return proj, wiring


def test_verify_passes_on_good_hosts(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch)
    result = proj.cli("verify", wiring=wiring)
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("web1: ") and " passed" in lines[0] and "failed" not in lines[0]
    assert any(line.split()[:2] == ["health", "passed"] for line in lines)
    assert lines[-1] == "verify passed on 2 host(s)"


def test_verify_failure_exits_1_and_json_is_one_document(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch)
    proj.fleet["web2"].probe["env_file"]["mode"] = 0o644
    result = proj.cli("verify", "--json", wiring=wiring)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and [h["host"] for h in doc["hosts"]] == ["web1", "web2"]
    env = next(c for c in doc["hosts"][1]["checks"] if c["name"] == "env-file")
    assert env["outcome"] == "failed"
    assert all(c["outcome"] == "passed" for c in doc["hosts"][0]["checks"])


def test_verify_of_an_unreachable_host_and_a_failing_probe(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch)
    proj.fleet["web1"].unreachable = "Connection refused"
    proj.fleet["web2"].probe = None
    result = proj.cli("verify", wiring=wiring)
    assert result.exit_code == 1
    assert "web1: error: web1: cannot connect to 198.18.1.2:22: Connection refused" in result.stdout
    assert "web2: error: the probe failed on the host (exit 1): fake host: no probe scripted" in result.stdout
    assert result.stdout.splitlines()[-1] == "verify failed on web1, web2"


def test_verify_masks_what_the_host_reports(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch, web1=host_doc("web1", 1))
    proj.fleet["web1"].probe["http"]["health"] = {"status": 500, "headers": {}, "error": f"key {SECRET} leaked"}
    proj.fleet["web1"].probe["current"]["link"] = f"releases/{SECRET}"
    result = proj.cli("verify", "--json", wiring=wiring)
    assert result.exit_code == 1
    assert SECRET not in result.stdout and "***" in result.stdout


def test_verify_writes_junit(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch)
    junit = tmp_path / "verify.xml"
    result = proj.cli("verify", "--junit", str(junit), wiring=wiring)
    assert result.exit_code == 0
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["web1", "web2"] and suites[0].get("failures") == "0"


def test_verify_bad_input_exits_2(tmp_path, monkeypatch) -> None:
    proj, wiring = checked(tmp_path, monkeypatch)
    missing = proj.cli("verify", "--tests", str(tmp_path / "nope"), wiring=wiring)
    assert missing.exit_code == 2 and f"error: --tests {tmp_path / 'nope'}: not a directory" in missing.stderr
    unwritable = proj.cli("verify", "--junit", str(tmp_path / "no" / "dir" / "x.xml"), wiring=wiring)
    assert unwritable.exit_code == 2 and "x.xml: cannot write" in unwritable.stderr


def test_verify_passes_tests_dir_and_keyword_and_a_keyword_matching_nothing_is_bad_input(tmp_path, monkeypatch) -> None:
    proj, _ = checked(tmp_path, monkeypatch)
    asked = []

    def nothing_selected(inventory, hosts, tests_dir, keyword):  # noqa: ANN001, ANN202
        asked.append(([h.name for h in hosts], tests_dir, keyword))
        return [HostReport(h.name) for h in hosts]

    (tmp_path / "mytests").mkdir()
    result = proj.cli("verify", "--limit", "web2", "--tests", str(tmp_path / "mytests"), "-k", "nothing",
                      wiring=Wiring(connect=proj.fleet.connect, verify_hosts=nothing_selected))
    assert result.exit_code == 2 and "error: -k 'nothing' selects no check on any host" in result.stderr
    assert asked == [(["web2"], tmp_path / "mytests", "nothing")]
