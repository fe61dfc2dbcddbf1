"""Every command that reaches hosts, with one host unreachable: that host's error, the others still served."""

from __future__ import annotations

import pytest

from tests.fakehosts import project

ERROR = "web2: cannot connect to 198.18.2.2:22: No route to host"

# command and options; its exit code; where web2's error is shown; what shows web1 was still served
COMMANDS = [
    (("deploy", "--no-verify"), 1, "stdout", "web1  deployed"),
    (("plan",), 1, "stdout", "== web1 (198.18.1.2): would change"),
    (("rollback",), 1, "stdout", "no earlier good release"),
    (("status",), 1, "stdout", "web1: current -"),
    (("releases",), 0, "stdout", "web1:\n"),  # as it always did: releases lists what it could read, exit 0
    (("unlock",), 1, "stderr", "web1: not locked"),
    (("exec", "--", "true"), 1, "stderr", "web1: error: /srv/hello/current does not exist"),
    (("logs",), 1, "stderr", None),
]


@pytest.mark.parametrize(("argv", "code", "stream", "served"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_an_unreachable_host_is_reported_and_the_others_still_served(tmp_path, monkeypatch, argv, code,  # noqa: ANN001
                                                                     stream, served) -> None:
    proj = project(tmp_path, monkeypatch)
    proj.fleet["web2"].unreachable = "No route to host"
    result = proj.cli(*argv)
    assert result.exit_code == code
    assert ERROR in getattr(result, stream)
    if served:
        assert served in result.stdout + result.stderr
    assert proj.fleet["web1"].calls  # web1 was talked to all the same
    assert proj.fleet["web2"].calls == []
