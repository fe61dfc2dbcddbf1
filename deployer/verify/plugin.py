"""The pytest plugin of one host's verify run (loaded with ``-p deployer.verify.plugin``).

The runner starts one pytest process per host (pytest is not thread-safe in
one process) with ``--deployer-spec FILE``: the host's ``HostView`` (its
connection and resolved settings) and the built-in checks that apply to it.
This plugin gives tests the ``host`` fixture (testinfra, over deployer's
connection), the ``deployer_host`` fixture (the settings) and the
one-round-trip probe, and writes one result per check (name, outcome, one-line reason) to the results
file the runner reads.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
import testinfra.host

from deployer.remote.ssh import Remote
from deployer.errors import DeployerError
from deployer.core.hostview import HostView
from deployer.core.outcomes import CheckOutcome
from deployer.verify.backend import RemoteBackend
from deployer.verify.checks import probe_query
from deployer.verify.probe import probe_command

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--deployer-spec", dest="deployer_spec", help="deployer verify: this host's spec (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("deployer_spec")
    if path:
        spec = json.loads(Path(path).read_text())
        config.pluginmanager.register(Recorder(spec, config.rootpath), "deployer-verify-recorder")


def recorder(config: pytest.Config) -> "Recorder":
    found = config.pluginmanager.get_plugin("deployer-verify-recorder")
    if found is None:
        raise pytest.UsageError("deployer.verify.plugin needs --deployer-spec")
    return found


def one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    for prefix in ("Failed: ", "Skipped: "):
        line = line.removeprefix(prefix)
    return line  # whole: the runner masks secrets first, then shortens


def last_line(text: str) -> str:
    return one_line((text.strip().splitlines() or [""])[-1])


def reason_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, message)
        return one_line(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return one_line(crash.message)
    text = str(longrepr)  # a collection error: a formatted traceback whose "E " lines say what went wrong
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return one_line(errors[-1] if errors else text)


class Recorder:
    """Collects one outcome per check and writes them when the session ends."""

    def __init__(self, spec: dict, rootpath: Path) -> None:
        self.spec = spec
        self.view = HostView.from_json(spec["host"])
        self.rootpath = rootpath
        self.results: dict[str, dict] = {}
        self.error: str | None = None
        self.tests_dir = Path(spec["tests_dir"]) if spec["tests_dir"] else None

    def name_of(self, item: pytest.Item) -> str:
        if getattr(getattr(item, "module", None), "__name__", "") == "deployer.verify.suite":
            return item.callspec.id
        return f"{self.relative(item.path)}::{item.name}"

    def relative(self, path: Path) -> str:
        """A user test's file as the user sees it: relative to their tests directory."""
        return os.path.relpath(path, self.tests_dir or self.rootpath)

    def outcomes(self) -> dict[str, str]:
        return {name: r["outcome"] for name, r in self.results.items()}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.module.__name__ == "deployer.verify.suite" and "check" in metafunc.fixturenames:
            metafunc.parametrize("check", self.spec["checks"], ids=self.spec["checks"])

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector):
        report = yield
        if report.failed:  # a user test file that does not import: a failed check, not a crash
            name = f"{self.relative(collector.path)} (collect)"
            self.results[name] = {"outcome": CheckOutcome.FAILED, "reason": reason_of(report), "seconds": 0.0}
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        report.deployer_check = self.name_of(item)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One outcome per test: its call, or the setup that kept it from running, or a failed teardown."""
        name = report.deployer_check
        if report.passed and report.when != "call":
            return
        if report.when == "teardown" and self.results.get(name, {}).get("outcome") == CheckOutcome.FAILED:
            return  # the first failure is the reason
        outcome = (CheckOutcome.FAILED if report.failed else CheckOutcome.SKIPPED if report.skipped
                   else CheckOutcome.PASSED)
        reason = reason_of(report) if outcome != CheckOutcome.PASSED else ""
        if report.failed and report.when != "call":
            reason = f"error in {report.when}: {reason}"
        self.results[name] = {"outcome": outcome, "reason": reason, "seconds": round(report.duration, 3)}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        doc = {"error": self.error, "checks": [dict(name=name, **r) for name, r in self.results.items()]}
        Path(self.spec["results"]).write_text(json.dumps(doc))


@pytest.fixture(scope="session")
def deployer_host(request: pytest.FixtureRequest) -> dict:
    """The host's resolved settings (server, proxy, names, ports, app, layout...): plain data, no secrets."""
    return recorder(request.config).view.settings()


@pytest.fixture(scope="session")
def host(request: pytest.FixtureRequest) -> testinfra.host.Host:
    """testinfra's Host, connected the way deploy connects (see deployer.verify.backend)."""
    rec = recorder(request.config)
    remote = Remote(rec.view.host)
    try:
        remote.open()
    except DeployerError as exc:
        rec.error = str(exc)
        pytest.exit(str(exc), returncode=3)
    request.addfinalizer(remote.close)
    return testinfra.host.Host(RemoteBackend(remote))


@pytest.fixture(scope="session")
def deployer_probe(host: testinfra.host.Host, deployer_host: dict) -> dict:
    """Every fact the built-in checks judge, from one command on the host."""
    result = host.run(shlex.join(probe_command(probe_query(deployer_host))))
    if result.rc != 0:
        raise RuntimeError(f"the probe failed on the host (exit {result.rc}): {last_line(result.stderr or result.stdout)}")
    return json.loads(result.stdout)


@pytest.fixture
def deployer_outcomes(request: pytest.FixtureRequest) -> dict[str, str]:
    """Outcomes so far on this host, by check name (for prerequisites)."""
    return recorder(request.config).outcomes()
