"""``deployer exec`` and ``deployer logs`` in-process against fake hosts: output per host, masking, exit codes."""

from __future__ import annotations

from deployer.remote.fake import FakeFile
from tests.fakehosts import SECRET, host_doc, journal_line, project

T0 = 1_764_684_000_000_000  # 2025-12-02T14:00:00Z in microseconds


def deployed(tmp_path, monkeypatch, hosts=None):  # noqa: ANN001, ANN201
    proj = project(tmp_path, monkeypatch, hosts=hosts)
    assert proj.cli("deploy", "--no-verify").exit_code == 0
    return proj


# -- exec ---------------------------------------------------------------------


def test_exec_prints_each_line_with_its_host_and_masks_secrets(tmp_path, monkeypatch) -> None:
    proj = deployed(tmp_path, monkeypatch)
    seen = []
    for name in ("web1", "web2"):
        proj.fleet[name].in_release = lambda argv, name=name: (seen.append(argv) or 0, f"{name} says {SECRET}\nbye\n")
    result = proj.cli("exec", "--", "flask", "--app", "app", "shell", "-c", "print($HOME)")
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["web1: bye", "web1: web1 says ***", "web2: bye", "web2: web2 says ***"]
    assert result.stderr.splitlines() == ["web1: exit 0", "web2: exit 0"]
    assert seen[0] == ("flask", "--app", "app", "shell", "-c", "print($HOME)")  # argv as written, $ not expanded
    sent = proj.fleet["web1"].sent(lambda argv: "systemd-run" in argv)[0]
    assert "User=hello" in sent and "EnvironmentFile=/etc/hello/env" in sent and "print($$HOME)" in sent


def test_exec_exits_1_when_the_command_fails_on_one_host(tmp_path, monkeypatch) -> None:
    proj = deployed(tmp_path, monkeypatch)
    proj.fleet["web2"].in_release = lambda argv: (3, "no such table\n")
    result = proj.cli("exec", "--", "flask", "migrate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["web1: exit 0", "web2: exit 3"]
    assert result.stdout == "web2: no such table\n"


def test_exec_before_any_deploy_says_deploy_first(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    result = proj.cli("exec", "--", "true")
    assert result.exit_code == 1
    assert result.stderr == "web1: error: /srv/hello/current does not exist (deploy first)\n"
    assert not proj.fleet["web1"].sent(lambda argv: "systemd-run" in argv)


def test_exec_needs_a_command(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    assert proj.cli("exec").exit_code == 2


# -- logs ---------------------------------------------------------------------


def test_logs_merge_every_host_by_time_and_mask_secrets(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].journal["hello.service"] = (journal_line("first", T0) + journal_line(f"key={SECRET}", T0 + 2_000_000))
    proj.fleet["web2"].journal["hello.service"] = journal_line("second", T0 + 1_000_000)
    result = proj.cli("logs", "-n", "5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "web1  2025-12-02T14:00:00.000Z  gunicorn: first",
        "web2  2025-12-02T14:00:01.000Z  gunicorn: second",
        "web1  2025-12-02T14:00:02.000Z  gunicorn: key=***",
    ]
    journalctl = proj.fleet["web1"].sent(lambda argv: argv[0] == "journalctl")[0]
    assert "--lines=5" in journalctl and "--unit=hello.service" in journalctl and "--unit=hello.socket" in journalctl


def test_logs_with_proxy_reads_the_error_log_and_reports_a_missing_one(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web1"].files["/var/log/nginx/error.log"] = FakeFile("2025/12/02 14:00:05 [error] 12#12: upstream gone\n")
    result = proj.cli("logs", "--proxy", "--since", "1h ago")
    assert result.exit_code == 1  # web2 has no error.log
    assert "web1  2025-12-02T14:00:05.000Z  nginx error.log: [error] 12#12: upstream gone" in result.stdout
    assert "web2: error: nginx error.log: " in result.stderr and "No such file or directory" in result.stderr
    assert "--since=1h ago" in proj.fleet["web1"].sent(lambda argv: argv[0] == "journalctl")[0]


def test_logs_of_mod_wsgi_hosts_read_apache_and_say_so(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web3": host_doc("web3", 3, proxy="apache", server="mod_wsgi")})
    proj.fleet["web3"].journal["apache2.service"] = journal_line("started", T0, "apache2.service")
    proj.fleet["web3"].files["/var/log/apache2/error.log"] = FakeFile("")
    result = proj.cli("logs")
    assert result.exit_code == 0, result.stderr
    assert "web3: server mod_wsgi runs hello inside apache2" in result.stderr
    assert result.stdout == "web3  2025-12-02T14:00:00.000Z  gunicorn: started\n"


def test_logs_bad_since_is_bad_input(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch)
    result = proj.cli("logs", "--since", "-1h")
    assert result.exit_code == 2 and "write a relative time as '1h ago'" in result.stderr
    assert proj.fleet["web1"].calls == []


def test_logs_follow_prints_lines_until_the_streams_end(tmp_path, monkeypatch) -> None:
    proj = project(tmp_path, monkeypatch, hosts={"web1": host_doc("web1", 1)})
    proj.fleet["web1"].journal["hello.service"] = journal_line(f"live {SECRET}", T0)
    result = proj.cli("logs", "--follow", "-n", "0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "web1  2025-12-02T14:00:00.000Z  gunicorn: live ***\n"
    assert "web1: hello: stopped (exit 0)" in result.stderr
    followed = proj.fleet["web1"].calls[-1]
    assert followed[:2] == ("sh", "-c") and "--follow" in followed
