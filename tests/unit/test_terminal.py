"""What a remote says reaches the terminal with its control characters shown, not obeyed (issue 11, finding 10).

Human output passes through ``printable``; ``--json`` keeps the text as data.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import main
from deployer.core import journal
from deployer.core.terminal import printable
from deployer.run.apply import HostResult
from tests import factories as f

TITLE = "\x1b]0;pwned\x07"  # curl -A $'\e]0;pwned\a' ends up in the access log
CLEAR = "\x1b[2J\x1b[H"
BIDI = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI", "LRM", "RLM", "ALM"}


@pytest.mark.parametrize("raw, shown", [
    (TITLE, "\\x1b]0;pwned\\x07"),
    ("ok\rweb2: deployed", "ok\\x0dweb2: deployed"),
    ("\x9b31m", "\\x9b31m"),  # the 8-bit CSI
    ("a\x00b\x7fc\x08", "a\\x00b\\x7fc\\x08"),
    ("evil\u202etxt.exe\u2066", "evil\\u202etxt.exe\\u2066"),
    ("one\u2028two", "one\\u2028two"),
])
def test_printable_makes_control_characters_visible(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_keeps_text_newlines_and_tabs() -> None:
    text = "Grüße\t日本語 🚀\nnext line \\x1b stays as typed"
    assert printable(text) == text


def test_printed_text_has_no_control_character_left() -> None:
    every = "".join(map(chr, range(0x0, 0x3000)))
    out = printable(every)
    left = {c for c in out if unicodedata.category(c) in ("Cc", "Zl", "Zp") or unicodedata.bidirectional(c) in BIDI}
    assert left == {"\n", "\t"}


def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(f"app:\n  name: hello\n  source: {f.EXAMPLE_APP}\n  wsgi: app:app\n"
                    "hosts:\n  web1: {address: 198.18.0.11, server_name: web1.example}\n")
    return path


def fake_deploy(*args, progress, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    progress("web1", "after_switch> " + CLEAR + "all good")
    return [HostResult("web1", "rolled-back", None, error="health: /healthz answered: " + TITLE)]


def test_deploy_human_output_is_printable_and_json_keeps_the_data(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from deployer.run import rollout

    monkeypatch.setattr(rollout, "deploy", fake_deploy)
    human = CliRunner().invoke(main, ["deploy", "-i", str(inventory_file(tmp_path)), "--no-verify"])
    assert "\x1b" not in human.stdout + human.stderr and "\x07" not in human.stdout
    assert "answered: \\x1b]0;pwned\\x07" in human.stdout and "after_switch> \\x1b[2J" in human.stderr
    as_json = CliRunner().invoke(main, ["deploy", "-i", str(inventory_file(tmp_path)), "--json",
                                                        "--no-verify"])
    assert "\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout)["results"][0]["error"].endswith(TITLE)


def test_errors_are_printable(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from deployer.cli import state
    from deployer.errors import DeployerError

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise DeployerError("web1: cannot read host state: exit 1: " + TITLE)

    monkeypatch.setattr(state, "read_hosts", fail)
    result = CliRunner().invoke(main, ["releases", "-i", str(inventory_file(tmp_path))])
    assert result.exit_code == 1 and "\x1b" not in result.stderr and "exit 1: \\x1b]0;pwned" in result.stderr


def test_logs_and_exec_lines_are_printable(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from deployer.run import exec_command, logs

    line = journal.LogLine(1_764_086_400_000, "web1", "nginx access.log", 'GET / "' + TITLE + '"')

    class Remote:
        secrets = ()

    class Session:
        remotes = {"web1": Remote()}

    logs.show(logs.Collected(lines={"web1": [line]}, errors={"web1": ["tail: " + CLEAR]}), Session(), (f.host(),))
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and '"\\x1b]0;pwned\\x07"' in out and "\\x1b[2J" in err

    def fake_exec_all(inventory, hosts, argv, timeout, emit, connect=None):  # noqa: ANN001, ANN202
        emit("web1", "printed " + TITLE)
        return [exec_command.HostExec("web1", 0)]

    monkeypatch.setattr(exec_command, "exec_all", fake_exec_all)
    result = CliRunner().invoke(main, ["exec", "-i", str(inventory_file(tmp_path)), "--", "true"])
    assert result.exit_code == 0 and "\x1b" not in result.output and "web1: printed \\x1b]0;pwned" in result.output


def test_verify_table_is_printable_and_json_keeps_the_data(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from deployer.verify import runner
    from deployer.verify.report import CheckResult, HostReport

    monkeypatch.setattr(runner, "verify_all",
                        lambda *a, **k: [HostReport("web1", [CheckResult("health", "failed", "body: " + TITLE)])])
    human = CliRunner().invoke(main, ["verify", "-i", str(inventory_file(tmp_path))])
    assert "\x1b" not in human.output and "body: \\x1b]0;pwned" in human.output
    as_json = CliRunner().invoke(main, ["verify", "-i", str(inventory_file(tmp_path)), "--json"])
    assert json.loads(as_json.output)["hosts"][0]["checks"][0]["reason"] == "body: " + TITLE
