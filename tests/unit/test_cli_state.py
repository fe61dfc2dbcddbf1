"""``deployer status``, ``releases`` and ``unlock`` in-process against fake hosts."""

from __future__ import annotations

import json

from deployer.hostside import program
from tests.fakehosts import SECRET, LaterClock, host_doc, project


def deployed(tmp_path, monkeypatch, **hosts):  # noqa: ANN001, ANN003, ANN201
    proj = project(tmp_path, monkeypatch, hosts=hosts or None)
    assert proj.cli("deploy", "--no-verify").exit_code == 0
    return proj


def test_status_text_of_deployed_hosts(tmp_path, monkeypatch) -> None:
    proj = deployed(tmp_path, monkeypatch)
    release = proj.fleet["web1"].current
    result = proj.cli("status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"web1: current {release} (deployed 20") and lines[0].endswith(")")
    assert " by " in lines[0] and "?" not in lines[0]
    assert lines[1:5] == [
        f"  serving: hello.service={release}",
        "  units:   hello.socket active/enabled, hello.service active/enabled, nginx.service active/enabled",
        "  lock:    free",
        "  drift:   none",
    ]
    assert lines[5].startswith("web2: current ")


def test_status_json_shows_lock_drift_and_an_unreachable_host(tmp_path, monkeypatch) -> None:
    proj = deployed(tmp_path, monkeypatch)
    web1 = proj.fleet["web1"]
    web1.lock = '{"holder": "ci@runner", "pid": 42, "since": "2026-01-01T00:00:00Z"}\n'
    web1.files["/etc/hello/env"].content += f"EXTRA={SECRET}\n"
    proj.fleet["web2"].unreachable = "Connection refused"
    result = proj.cli("status", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)["hosts"]
    assert doc["web2"] == {"error": "web2: cannot connect to 198.18.2.2:22: Connection refused"}
    st = doc["web1"]
    assert set(st) == {"current", "deployed_at", "deployed_by", "serving", "units", "lock", "drift", "releases"}
    assert st["lock"]["holder"] == "ci@runner" and st["lock"]["pid"] == 42 and st["lock"]["age"]
    assert len(st["drift"]) == 1 and "/etc/hello/env" in st["drift"][0]
    assert st["releases"] == [{"id": web1.current, "bad": False, "current": True}]
    assert SECRET not in result.stdout


def test_status_of_a_host_never_deployed(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    result = proj.cli("status")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "web1: current - (deployed ? by ?)"
    assert "  serving: nothing" in result.stdout


def test_releases_marks_current_and_failed(tmp_path, monkeypatch) -> None:
    proj = deployed(tmp_path, monkeypatch, web1=host_doc("web1", 1))
    web1 = proj.fleet["web1"]
    good = web1.current
    (tmp_path / "app" / "app.py").write_text((tmp_path / "app" / "app.py").read_text() + "# v2\n")
    web1.answer(lambda argv: argv[:3] == ("python3", "-c", program("health")) and web1.current != good, 1, "HTTP 502\n")
    monkeypatch.setattr("deployer.artifact.release.datetime", LaterClock)
    failed = proj.cli("deploy", "--no-verify", "--json")
    assert failed.exit_code == 1
    bad = json.loads(failed.stdout)["results"][0]["release"]
    result = proj.cli("releases")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "web1:"
    marks = {line.split()[1]: (line.split()[0], line.split()[2]) for line in lines[1:]}
    assert marks == {good: ("*", "deployed"), bad: ("!", "rolled-back")}
    assert lines[1].split()[1] == bad  # newest first


def test_unlock_removes_the_lock_and_says_who_held_it(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].lock = '{"holder": "ci@runner", "pid": 42}\n'
    result = proj.cli("unlock")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ['web1: released lock held by {"holder": "ci@runner", "pid": 42}',
                                          "web2: not locked"]
    assert proj.fleet["web1"].lock is None
    assert proj.fleet["web1"].sent(lambda argv: argv == ("rm", "-rf", "--", "/srv/hello/.deployer/lock"))


def test_unlock_lets_a_locked_deploy_through(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    proj.fleet["web1"].lock = '{"holder": "dead@ci"}\n'
    assert proj.cli("deploy", "--no-verify").exit_code == 3
    assert proj.cli("unlock").exit_code == 0
    assert proj.cli("deploy", "--no-verify").exit_code == 0
