"""``deployer logs``: which logs each stack has, the commands, parsing and merging by time."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import timezone
from pathlib import PurePosixPath

import pytest
from click.testing import CliRunner

from deployer.core import journal
from deployer.cli import main
from deployer.errors import UsageError
from deployer.run.logs import Follower
from deployer.secret import Secret
from tests.factories import app, host

T0 = 1_764_086_400_000_000  # 2025-11-25T16:00:00Z in microseconds


def entry(time: int, message, ident: str = "gunicorn", pid: str = "812") -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(time), "MESSAGE": message, "SYSLOG_IDENTIFIER": ident, "_PID": pid})


# -- sources and commands -----------------------------------------------------------


def test_gunicorn_host_reads_the_app_units_journal() -> None:
    sources, note = journal.host_sources(app(), host(server="gunicorn", proxy="nginx"), proxy=False)
    assert sources == (journal.Source("hello", units=("hello.service", "hello.socket")),)
    assert note is None


def test_proxy_adds_the_nginx_or_apache_error_log() -> None:
    sources, _ = journal.host_sources(app(), host(server="uwsgi", proxy="nginx"), proxy=True)
    assert sources[-1].file == PurePosixPath("/var/log/nginx/error.log")
    sources, _ = journal.host_sources(app(), host(server="gunicorn", proxy="apache"), proxy=True)
    assert sources[-1].file == PurePosixPath("/var/log/apache2/error.log")


def test_mod_wsgi_host_shows_apache_and_says_why() -> None:
    sources, note = journal.host_sources(app(), host(server="mod_wsgi", proxy="apache"), proxy=False)
    assert [s.units or s.file for s in sources] == [("apache2.service",), PurePosixPath("/var/log/apache2/error.log")]
    assert "inside apache2" in note
    with_proxy, _ = journal.host_sources(app(), host(server="mod_wsgi", proxy="apache"), proxy=True)
    assert with_proxy == sources  # the same error log, read once


def test_journal_command_is_an_argument_tuple() -> None:
    source = journal.Source("hello", units=("hello.service", "hello.socket"))
    argv = journal.read_command(source, 20, "1h ago", follow=True)
    assert argv == ("journalctl", "--no-pager", "--quiet", "--output=json", f"--output-fields={journal.JOURNAL_FIELDS}",
                    "--lines=20", "--unit=hello.service", "--unit=hello.socket", "--since=1h ago", "--follow")
    assert "--since" not in " ".join(journal.read_command(source, 20, None, follow=False))


def test_file_command_reads_the_offset_then_tails() -> None:
    source = journal.Source("nginx error.log", file=PurePosixPath("/var/log/nginx/error.log"))
    assert journal.read_command(source, 5, None, follow=False) == (
        "sh", "-c", 'date +%z && exec tail "$@"', "sh", "-n", "5", "--", "/var/log/nginx/error.log")
    assert "-F" in journal.read_command(source, 5, None, follow=True)


@pytest.mark.parametrize("since", ["today", "yesterday", "2026-01-31 12:00:00", "1h ago", "30 min ago", "@1764086400"])
def test_since_accepts_journalctl_times(since: str) -> None:
    assert journal.check_since(since) == since


@pytest.mark.parametrize("since", ["-1h", "--output=cat", "today; rm -rf /", "$(id)", "a\nb", "x" * 65, ""])
def test_since_refuses_options_and_shell(since: str) -> None:
    with pytest.raises(UsageError, match="--since"):
        journal.check_since(since)


def test_stop_on_close_ends_the_follower_when_stdin_closes() -> None:
    """The host-side guard, run here with /bin/sh: closing stdin leaves no process behind."""
    proc = subprocess.Popen(journal.stop_on_close(("sh", "-c", 'echo $$; exec sleep 600')),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    os.kill(child, 0)  # running
    proc.stdin.close()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the follower outlived its channel")


def test_stop_on_close_returns_when_the_follower_fails_by_itself() -> None:
    proc = subprocess.Popen(journal.stop_on_close(("sh", "-c", "echo bad >&2; exit 3")), stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.wait(timeout=10) == 3  # stdin still open: the channel has not closed
    assert proc.stderr.read() == "bad\n"
    proc.stdin.close()


# -- parsing ---------------------------------------------------------------------------


def test_journal_json_lines_parse_with_their_time_and_process() -> None:
    source = journal.Source("hello", units=("hello.service",))
    text = "\n".join([entry(T0, "Booting worker"), entry(T0 + 1500, "GET / 200", pid="813")])
    lines = journal.parse_output("lab1", source, text)
    assert [(l.time, l.source, l.text) for l in lines] == [(T0, "gunicorn[812]", "Booting worker"),
                                                           (T0 + 1500, "gunicorn[813]", "GET / 200")]


def test_binary_and_multiline_messages() -> None:
    source = journal.Source("hello", units=("hello.service",))
    lines = journal.parse_output("lab1", source, entry(T0, list(b"caf\xc3\xa9 \xff")) + "\n" + entry(T0 + 1, "a\nb"))
    assert [l.text for l in lines] == ["café \ufffd", "a", "b"]


def test_unparsable_output_is_kept_with_the_previous_time() -> None:
    source = journal.Source("hello", units=("hello.service",))
    lines = journal.parse_output("lab1", source, entry(T0, "first") + "\nnot json\n\n")
    assert [(l.time, l.text) for l in lines] == [(T0, "first"), (T0, "not json")]


def test_nginx_error_log_in_host_local_time() -> None:
    source = journal.Source("nginx error.log", file=PurePosixPath("/var/log/nginx/error.log"))
    text = "+0100\n2025/11/25 17:00:01 [error] 41#41: *7 connect() failed\n"
    [line] = journal.parse_output("lab2", source, text)
    assert line.time == T0 + 1_000_000  # 17:00:01 at +01:00 is 16:00:01Z
    assert (line.source, line.text) == ("nginx error.log", "[error] 41#41: *7 connect() failed")


def test_apache_error_log_with_microseconds_and_continuations() -> None:
    source = journal.Source("apache2 error.log", file=PurePosixPath("/var/log/apache2/error.log"))
    text = ("+0000\n"
            "[Tue Nov 25 16:00:02.250000 2025] [wsgi:error] [pid 9:tid 10] Traceback (most recent call last):\n"
            "  File \"app.py\", line 1\n")
    lines = journal.parse_output("lab3", source, text)
    assert [(l.time, l.text) for l in lines] == [
        (T0 + 2_250_000, "[wsgi:error] [pid 9:tid 10] Traceback (most recent call last):"),
        (T0 + 2_250_000, '  File "app.py", line 1'),
    ]


def test_offset_parsing() -> None:
    assert journal.parse_offset("+0000") == timezone.utc
    assert journal.parse_offset("-0530").utcoffset(None).total_seconds() == -(5 * 3600 + 30 * 60)
    assert journal.parse_offset("tail: cannot open") is None


# -- merging and formatting --------------------------------------------------------------


def test_merge_orders_by_time_across_hosts_and_keeps_ties_in_host_order() -> None:
    a = [journal.LogLine(T0, "lab1", "x", "a1"), journal.LogLine(T0 + 20, "lab1", "x", "a2")]
    b = [journal.LogLine(T0 + 10, "lab2", "x", "b1"), journal.LogLine(T0 + 20, "lab2", "x", "b2")]
    c = [journal.LogLine(T0, "lab3", "x", "c1")]
    assert [l.text for l in journal.merge([a, b, c])] == ["a1", "c1", "b1", "a2", "b2"]


def test_format_aligns_hosts_and_shows_utc_milliseconds() -> None:
    line = journal.LogLine(T0 + 1_234_567, "lab1", "gunicorn[812]", "GET /")
    assert journal.format_line(line, 6) == "lab1    2025-11-25T16:00:01.234Z  gunicorn[812]: GET /"
    untimed = journal.format_line(journal.LogLine(0, "web10", "nginx error.log", "tail: no file"), 6)
    assert untimed.index("nginx") == journal.format_line(line, 6).index("gunicorn")


def test_cli_refuses_bad_since_before_connecting(tmp_path) -> None:
    result = CliRunner().invoke(main, ["logs", "-i", str(tmp_path / "none.yml"), "--since", "--output=cat"])
    assert result.exit_code == 2 and "--since" in result.output


# -- following, over fake channels --------------------------------------------------------


class FakeChannel:
    """Hands out chunks the way paramiko's recv does, then b'' and an exit status."""

    def __init__(self, chunks: list[bytes], code: int = 0) -> None:
        self.chunks, self.code, self.closed = list(chunks), code, False

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def recv_exit_status(self) -> int:
        return self.code

    def close(self) -> None:
        self.closed = True


class FakeRemote:
    def __init__(self, name: str, channel: FakeChannel) -> None:
        self.host, self.secrets, self.channel = host(name), (Secret("s3cr3t"),), channel
        self.argv = None

    def open_stream(self, argv):
        self.argv = argv
        return self.channel


def test_follower_splits_chunks_into_lines_masks_and_reports_a_stop(capsys) -> None:
    text = entry(T0, "token=s3cr3t") + "\n" + entry(T0 + 1, "second")
    channel = FakeChannel([text[:30].encode(), text[30:].encode()], code=1)  # the last line has no newline
    remote = FakeRemote("web1", channel)
    follower = Follower(width=4)
    follower.start(remote, journal.Source("hello", units=("hello.service",)), 10, None)
    follower.run()
    follower.close()
    out, err = capsys.readouterr()
    assert out.splitlines() == ["web1  2025-11-25T16:00:00.000Z  gunicorn[812]: token=***",
                                "web1  2025-11-25T16:00:00.000Z  gunicorn[812]: second"]
    assert "web1: hello: stopped (exit 1)" in err and follower.failed and channel.closed
    assert remote.argv[:3] == ("sh", "-c", journal.STOP_ON_CLOSE) and "--follow" in remote.argv
