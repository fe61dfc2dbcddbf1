"""``deployer deploy``, ``plan`` and ``rollback`` in-process against fake hosts: output, exit codes, --json, masking.

The fake host interprets what the deploy sends (``deployer.remote.fake``), so
these follow a rollout from a cold host to a converged one and back; the lab
tests prove the same commands on real hosts.
"""

from __future__ import annotations

import json

from deployer.hostside import program
from deployer.verify.checks import settings
from tests.fakehosts import SECRET, LaterClock, host_doc, project
from tests.unit.test_verify_checks import good_probe


def release_of(result) -> str:  # noqa: ANN001
    return json.loads(result.stdout)["results"][0]["release"]


def is_health(argv) -> bool:  # noqa: ANN001
    return argv[:3] == ("python3", "-c", program("health"))


def test_deploy_to_cold_hosts_converges_them_and_a_second_deploy_changes_nothing(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    first = proj.cli("deploy", "--no-verify")
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].split() == ["HOST", "STATUS", "RELEASE", "SECONDS", "ERROR"]
    assert [line.split()[:2] for line in lines[1:]] == [["web1", "deployed"], ["web2", "deployed"]]
    assert "web1: switching to" in first.stderr and "web2: health check http://web2.lab.example:80/healthz" in first.stderr
    web1 = proj.fleet["web1"]
    assert web1.current and web1.lock is None and web1.running["hello.service"] == web1.current
    assert web1.files["/etc/hello/env"].mode == 0o640 and SECRET in web1.files["/etc/hello/env"].content
    assert json.loads(web1.log[-1])["result"] == "deployed"

    again = proj.cli("deploy", "--no-verify", "--json")
    assert again.exit_code == 0
    doc = json.loads(again.stdout)
    assert [(r["host"], r["status"], r["release"]) for r in doc["results"]] == [
        ("web1", "unchanged", web1.current), ("web2", "unchanged", proj.fleet["web2"].current)]
    assert set(doc["results"][0]) == {"host", "status", "release", "previous", "seconds", "error", "cause", "log"}


def test_deploy_json_prints_only_the_document_on_stdout(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    result = proj.cli("deploy", "--no-verify", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["results"][1]["status"] == "deployed"
    assert "web1: deployed" in result.stderr  # progress stays on stderr


def test_failed_health_rolls_back_to_the_previous_release_and_exits_1_with_secrets_masked(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    assert proj.cli("deploy", "--no-verify").exit_code == 0
    good = proj.fleet["web1"].current
    (tmp_path / "app" / "app.py").write_text((tmp_path / "app" / "app.py").read_text() + "# v2\n")
    web1_state = proj.fleet["web1"]
    web1_state.answer(lambda argv: is_health(argv) and web1_state.current != good, 1, f"HTTP 500 leaked {SECRET}\n")

    result = proj.cli("deploy", "--no-verify", "--json")
    assert result.exit_code == 1
    web1, web2 = json.loads(result.stdout)["results"]
    assert web1["status"] == "rolled-back" and web1["previous"] == good
    assert web1["error"].startswith("health: /healthz did not answer 2xx")
    assert SECRET not in result.stdout + result.stderr and "***" in web1["error"]
    assert proj.fleet["web1"].current == good
    bad = proj.fleet["web1"].releases[web1["release"]]
    assert bad.bad
    assert web2["status"] == "deployed"


def test_a_rejected_config_fails_before_anything_live(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].answer(lambda argv: argv[:2] == ("nginx", "-t"), 1, "", "nginx: [emerg] unknown directive")
    result = proj.cli("deploy", "--no-verify", "--limit", "web1")
    assert result.exit_code == 1
    assert "failed" in result.stdout and "validate: nginx -t -q exited 1: nginx: [emerg] unknown directive" in result.stdout
    web1 = proj.fleet["web1"]
    assert web1.current is None and "/etc/nginx/sites-available/hello.conf" not in web1.files
    assert not web1.sent(lambda argv: argv[:2] == ("systemctl", "restart"))


def test_a_locked_host_exits_3_and_keeps_the_lock(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web2"].lock = '{"holder": "ci@runner", "pid": 7}\n'
    result = proj.cli("deploy", "--no-verify")
    assert result.exit_code == 3
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "deployed" in rows["web1"]
    assert "locked" in rows["web2"] and 'locked by another deploy: {"holder": "ci@runner", "pid": 7}' in rows["web2"]
    assert proj.fleet["web2"].lock and proj.fleet["web2"].current is None


def test_an_unreachable_host_fails_alone(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].unreachable = "Connection refused"
    result = proj.cli("deploy", "--no-verify", "--json")
    assert result.exit_code == 1
    web1, web2 = json.loads(result.stdout)["results"]
    assert web1 == {"host": "web1", "status": "failed", "release": None, "previous": None, "seconds": 0.0,
                    "error": "web1: cannot connect to 198.18.1.2:22: Connection refused", "cause": None, "log": None}
    assert web2["status"] == "deployed"


def test_serial_stops_after_a_failed_batch(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].answer(lambda argv: argv[0] == "systemd-analyze", 1, "", "bad unit")
    result = proj.cli("deploy", "--no-verify", "--serial", "1", "--json")
    assert result.exit_code == 1
    assert [(r["host"], r["status"], r["error"] if r["status"] == "skipped" else "") for r in
            json.loads(result.stdout)["results"]] == [("web1", "failed", ""), ("web2", "skipped", "an earlier batch failed")]
    assert proj.fleet["web2"].calls == [] or not proj.fleet["web2"].sent(lambda argv: "switch" in " ".join(argv))


def test_deploy_verifies_each_host_over_its_connection(tmp_path, monkeypatch) -> None:
    from deployer.config.inventory import load_inventory

    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    inv = load_inventory(proj.inventory)
    probe = good_probe(settings(inv, inv.hosts[0]))
    probe["env_file"]["mode"] = 0o644  # world-readable secrets
    proj.fleet["web1"].probe = probe
    result = proj.cli("deploy", "--json")
    assert result.exit_code == 1
    (web1,) = json.loads(result.stdout)["results"]
    assert web1["status"] == "failed"  # a first deploy has no release to go back to: the units are stopped
    assert web1["error"].startswith("verify: env-file:")
    assert proj.fleet["web1"].current is None and proj.fleet["web1"].units["hello.service"]["active"] == "inactive"

    probe["env_file"]["mode"] = 0o640
    assert proj.cli("deploy").exit_code == 0
    assert proj.fleet["web1"].sent(lambda argv: argv[:3] == ("python3", "-c", program("probe")))


def test_plan_shows_steps_and_masked_diffs_and_changes_nothing(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    result = proj.cli("plan")
    assert result.exit_code == 0, result.stderr
    assert "== web1 (198.18.1.2): would change" in result.stdout
    install = next(line for line in result.stdout.splitlines() if line.startswith("  - install configs: "))
    assert "create /etc/hello/env" in install and install.endswith("[live]")  # a step, then its argv on the next line
    assert "/etc/hello/env: new (secret, " in result.stdout and "+++ /etc/hello/env" not in result.stdout
    assert "APP_SECRET_KEY" not in result.stdout  # a secret file's diff shows its size, not even masked lines
    assert SECRET not in result.stdout
    assert all(argv[0] == "python3" for argv in proj.fleet["web1"].calls)  # the facts program only: read-only
    assert proj.fleet["web1"].current is None

    assert proj.cli("deploy", "--no-verify").exit_code == 0
    converged = proj.cli("plan")
    assert "== web1 (198.18.1.2): unchanged" in converged.stdout and "  - " not in converged.stdout


def two_releases(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    first = release_of(proj.cli("deploy", "--no-verify", "--json"))
    (tmp_path / "app" / "app.py").write_text((tmp_path / "app" / "app.py").read_text() + "# v2\n")
    monkeypatch.setattr("deployer.artifact.release.datetime", LaterClock)
    second = release_of(proj.cli("deploy", "--no-verify", "--json"))
    assert first != second and proj.fleet["web1"].current == second
    return proj, first, second


def test_rollback_returns_to_the_previous_release_with_its_configs(tmp_path, monkeypatch) -> None:
    proj, first, second = two_releases(tmp_path, monkeypatch)
    proj.fleet["web1"].files["/etc/hello/env"].content += "TAMPERED=1\n"
    result = proj.cli("rollback", "--json")
    assert result.exit_code == 0, result.stderr
    (web1,) = json.loads(result.stdout)["results"]
    assert (web1["status"], web1["release"], web1["previous"]) == ("rolled-back-to", first, second)
    assert proj.fleet["web1"].current == first
    assert "TAMPERED" not in proj.fleet["web1"].files["/etc/hello/env"].content
    assert f"rolling back {second} -> {first}" in result.stderr


def test_rollback_without_an_earlier_release_or_to_an_unknown_one_exits_1(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    assert proj.cli("deploy", "--no-verify").exit_code == 0
    alone = proj.cli("rollback")
    assert alone.exit_code == 1 and "no earlier good release to roll back to" in alone.stdout
    unknown = proj.cli("rollback", "--to", "20200101T000000Z-000000000000")
    assert unknown.exit_code == 1 and f"no release 20200101T000000Z-000000000000 (have: {proj.fleet['web1'].current})" in unknown.stdout


def test_rollback_of_a_locked_host_exits_3(tmp_path, monkeypatch) -> None:
    proj, first, _ = two_releases(tmp_path, monkeypatch)
    proj.fleet["web1"].lock = '{"holder": "ci@runner"}\n'
    result = proj.cli("rollback")
    assert result.exit_code == 3 and "locked" in result.stdout
    assert proj.fleet["web1"].current != first


def test_every_stack_converges_on_a_fake_host(tmp_path, monkeypatch) -> None:
    hosts = {"a": host_doc("a", 1, server="gunicorn", proxy="apache"), "b": host_doc("b", 2, server="uwsgi", proxy="apache"),
             "c": host_doc("c", 3, server="mod_wsgi", proxy="apache"), "d": host_doc("d", 4, server="uwsgi")}
    proj = project(tmp_path, monkeypatch, hosts=hosts)
    first = proj.cli("deploy", "--no-verify", "--json")
    assert first.exit_code == 0, first.stdout
    assert {r["status"] for r in json.loads(first.stdout)["results"]} == {"deployed"}
    assert proj.fleet["c"].links["/etc/apache2/mods-enabled/wsgi.load"] == "../mods-available/wsgi.load"
    again = proj.cli("deploy", "--no-verify", "--json")
    assert {r["status"] for r in json.loads(again.stdout)["results"]} == {"unchanged"}

    (tmp_path / "app" / "app.py").write_text((tmp_path / "app" / "app.py").read_text() + "# v2\n")
    sent_before = len(proj.fleet["c"].calls)
    code_change = proj.cli("deploy", "--no-verify", "--json")
    assert {r["status"] for r in json.loads(code_change.stdout)["results"]} == {"deployed"}
    mod_wsgi = proj.fleet["c"].calls[sent_before:]
    assert any(argv[:3] == ("python3", "-c", program("restart")) for argv in mod_wsgi)
    assert not any(argv[:2] == ("systemctl", "reload-or-restart") for argv in mod_wsgi)  # no 503s from a reload


def test_an_injected_directive_never_reaches_a_host(tmp_path, monkeypatch) -> None:
    """Issue 11 finding 2: a zone id carried `CustomLog "|cmd"` into Apache's config, which ran it as root."""
    payload = '::1%0\n    CustomLog "|touch pwned" common\n#'  # no "/": ipaddress takes all of it as a zone id
    hosts = {"web1": host_doc("web1", 1, proxy="apache", server="mod_wsgi", server_name=[payload])}
    proj = project(tmp_path, monkeypatch, hosts=hosts)
    for command in ("deploy", "plan", "rollback"):
        result = proj.cli(command)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "inventory.yml:" in result.stderr and "server_name" in result.stderr and "Traceback" not in result.stderr
    assert proj.fleet.states == {}  # no host was connected to, so nothing was written or run
