"""Run the checks: one pytest process per host, the hosts in parallel threads.

pytest keeps global state and is not thread-safe in one process, so each host
gets its own ``python -m pytest`` with only deployer's plugin loaded (no
plugin autoload: faster, and no other plugin changes the run). The process
reads a spec file and writes a results file; everything it reports is masked
here, since user tests may print what they read on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deployer.errors import UsageError
from deployer.config.model import Host, Inventory
from deployer.core.hostview import HostView
from deployer.core.outcomes import CheckOutcome
from deployer.remote.connector import Connector, ConnectorFactory
from deployer.remote.fanout import fan_out
from deployer.run.rollout import read_tls, secrets_of
from deployer.secret import Secret, mask_text
from deployer.verify import suite
from deployer.verify.checks import applicable, judge_all, probe_query, settings
from deployer.verify.probe import probe_command
from deployer.verify.report import CheckResult, HostReport

HOST_TIMEOUT = 300.0
REASON_LIMIT = 300
PYTEST_USAGE_ERROR = 4


def pytest_argv(spec_path: Path, ini: Path, rootdir: Path, *, builtin: bool, tests_dir: Path | None,
                keyword: str | None) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "deployer.verify.plugin", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(rootdir), "-vv", "--no-header", "-rN",
            "--continue-on-collection-errors", "--deployer-spec", str(spec_path)]
    if builtin:
        argv.append(suite.__file__)
    if tests_dir is not None:
        argv.append(str(tests_dir))
    if keyword:
        argv += ["-k", keyword]
    return argv


def verify_host(inventory: Inventory, host: Host, *, tests_dir: Path | None = None, keyword: str | None = None,
                builtin: bool = True) -> HostReport:
    """Every applicable built-in check and the user's tests on one host."""
    started = time.monotonic()
    tests_dir = tests_dir.absolute() if tests_dir is not None else None  # the run's cwd is a temp dir
    secrets = secrets_of(inventory) + tuple(tls.key for tls in [read_tls(host)] if tls)
    view = HostView.of(inventory, host)
    checks = applicable(view.settings()) if builtin else ()
    with tempfile.TemporaryDirectory(prefix="deployer-verify-") as tmp:
        work = Path(tmp)
        spec = {"host": view.to_json(), "checks": list(checks),
                "tests_dir": str(tests_dir) if tests_dir else None, "results": str(work / "results.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        (work / "pytest.ini").write_text("[pytest]\n")
        argv = pytest_argv(work / "spec.json", work / "pytest.ini", work, builtin=bool(checks),
                           tests_dir=tests_dir, keyword=keyword)
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTEST_ADDOPTS="", PYTHONDONTWRITEBYTECODE="1")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=HOST_TIMEOUT, env=env, cwd=work)
        except subprocess.TimeoutExpired:
            return HostReport(host.name, error=f"verify took longer than {HOST_TIMEOUT:.0f}s",
                              seconds=time.monotonic() - started)
        if proc.returncode == PYTEST_USAGE_ERROR:
            raise UsageError(masked(_last_line(proc.stderr or proc.stdout), secrets))
        results = work / "results.json"
        doc = json.loads(results.read_text()) if results.exists() else None
    seconds = time.monotonic() - started
    if doc is None:
        crash = f"pytest exited {proc.returncode}: {_last_line(proc.stderr or proc.stdout)}"
        return HostReport(host.name, error=masked(crash, secrets), seconds=seconds)
    return parse_results(host.name, doc, secrets, seconds)


def parse_results(host: str, doc: dict, secrets: tuple[Secret, ...], seconds: float) -> HostReport:
    checks = [CheckResult(c["name"], CheckOutcome(c["outcome"]), masked(c["reason"], secrets), c["seconds"]) for c in doc["checks"]]
    error = masked(doc["error"], secrets) if doc.get("error") else None
    return HostReport(host, checks, error, seconds)


def masked(text: str, secrets: tuple[Secret, ...]) -> str:
    """Secrets masked, also as an assertion's repr shows them (escaped), then cut to one short line.

    pytest runs with -vv so it shows whole values: a secret cut in half could not be masked.
    """
    variants = secrets + tuple(Secret(repr(s.reveal())[1:-1]) for s in secrets)
    text = mask_text(text, variants)
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 3] + "..."


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def verify_all(inventory: Inventory, hosts: tuple[Host, ...], *, tests_dir: Path | None = None,
               keyword: str | None = None) -> list[HostReport]:
    return [o.value for o in fan_out(hosts, lambda h: verify_host(inventory, h, tests_dir=tests_dir, keyword=keyword),
                                     catch=())]


def builtin_over(remote: Connector, inventory: Inventory) -> HostReport:
    """The built-in checks over an open connection, judged here: one probe round trip, no pytest.

    The same probe and judges as the pytest suite of ``deployer verify``; a deploy
    already holds the connection, and a pytest process per host costs ~0.7 s of
    controller CPU, which 8 hosts at once feel.
    """
    started = time.monotonic()
    host_settings = settings(inventory, remote.host)
    result = remote.run(probe_command(probe_query(host_settings)), check=False, timeout=HOST_TIMEOUT)
    if not result.ok:
        return HostReport(remote.host.name, error=f"the probe failed on the host (exit {result.code}): "
                          f"{_last_line(result.stderr or result.stdout)}", seconds=time.monotonic() - started)
    probe = json.loads(result.stdout)
    checks = [CheckResult(name, outcome, reason) for name, outcome, reason
              in judge_all(host_settings, probe, applicable(host_settings))]
    return HostReport(remote.host.name, checks, seconds=time.monotonic() - started)


def deploy_verifier(inventory: Inventory) -> Callable[[Connector], str | None]:
    """For ``deploy``: verify one host after its health gate; the reason it failed, or None.

    Built-in checks first, over the deploy's own connection; the user's tests
    (``verify.tests``) then run in a pytest process as ``deployer verify`` runs them.
    """
    def verify(remote: Connector) -> str | None:
        failure = builtin_over(remote, inventory).failure()
        if failure is None and inventory.verify_tests is not None:
            failure = verify_host(inventory, remote.host, tests_dir=inventory.verify_tests, builtin=False).failure()
        return failure
    return verify


def builtin_all(inventory: Inventory, hosts: tuple[Host, ...], connect: ConnectorFactory) -> list[HostReport]:
    """The built-in checks of every host judged in this process over ``connect``'s connections.

    No pytest process and no user tests: what ``deploy`` runs after its health gate,
    for hosts reached another way than SSH (the in-memory fake of the CLI tests).
    """
    from deployer.run.rollout import Session

    with Session(inventory, hosts, connect) as session:
        reports = {name: (o.value if o.ok else HostReport(name, error=o.message))
                   for name, o in session.each(lambda remote: builtin_over(remote, inventory)).items()}
        reports.update({name: HostReport(name, error=error) for name, error in session.errors.items()})
    return [reports[h.name] for h in hosts]
