"""The units of app.processes and app.timers pass systemd-analyze verify, security and calendar.

Rendered for every stack; nothing is started and nothing outside tmp_path is written.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from deployer.config.model import Process, Timer
from deployer.core import jobs
from deployer.core.render import render_host
from tests import factories as f
from tests.checkers.conftest import need, run

EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)")
PROCESSES = (Process("worker", ("python", "-c", "import os; print('$HOME %n \"q\" \\\\')")),)
TIMERS = (Timer("cleanup", ("flask", "cleanup"), "*:*:0/10"), Timer("nightly", ("flask", "nightly"), "Mon..Fri *-*-* 03:00:00"))


def write_units(server: str, proxy: str, root: Path) -> Path:
    host = f.host(server=server, proxy=proxy, deploy_root=PurePosixPath(root / "srv"))
    inv = f.inventory(host, app_=f.app(processes=PROCESSES, timers=TIMERS))
    units = root / "units"
    units.mkdir()
    names = set(jobs.units_of("hello", render_host(inv, host)).all)
    assert len(names) == 5
    for file in render_host(inv, host, reveal_secrets=True):
        if file.path.name in names:
            (units / file.path.name).write_text(file.content)
    return units


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_job_units_verify_cleanly(server: str, proxy: str, tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    units = write_units(server, proxy, tmp_path)
    result = run(analyze, "verify", *sorted(units.iterdir()))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys and bad values are only warnings: none allowed


def test_process_unit_is_as_hardened_as_the_app(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    units = write_units("mod_wsgi", "apache", tmp_path)
    for name in ("hello-worker.service", "hello-cleanup.service"):
        result = run(analyze, "security", "--offline=true", "--threshold=19", units / name)
        match = EXPOSURE.search(result.stdout)
        assert match, result.stdout + result.stderr
        assert float(match.group(1)) < 2.0 and match.group(2) == "OK", result.stdout


def test_what_the_allowlist_passes_the_deploy_checks_with_systemd_analyze_calendar() -> None:
    """The schema allows the syntax; `systemd-analyze calendar` (run by deploy's validate step) decides."""
    analyze = need("systemd-analyze")
    from deployer.config.schema import calendar_spec

    for good in ("daily", "*:*:0/10", "Mon..Fri *-*-* 03:00:00", "hourly", "*-*-01 04:00"):
        assert calendar_spec(good) == good
        assert run(analyze, "calendar", "--", good).returncode == 0, good
    assert calendar_spec("dialy") == "dialy"  # a typo passes the allowlist ...
    assert run(analyze, "calendar", "--", "dialy").returncode != 0  # ... and fails the checker before anything runs
