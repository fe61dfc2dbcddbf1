"""Status words are StrEnums whose values are what scripts read: JSON, releases.log, verify results."""

from __future__ import annotations

import json

from deployer.cli.common import exit_code_for
from deployer.core.outcomes import CheckOutcome, DeployStatus, LogResult
from deployer.errors import EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from deployer.run.apply import HostResult
from deployer.verify.report import CheckResult, HostReport


def test_the_words_are_the_ones_scripts_already_read() -> None:
    assert [s.value for s in DeployStatus] == [
        "deployed", "unchanged", "failed", "rolled-back", "locked", "skipped", "rolled-back-to"]
    assert [r.value for r in LogResult] == ["deployed", "failed", "rolled-back", "rollback-unhealthy"]
    assert [o.value for o in CheckOutcome] == ["passed", "failed", "skipped"]


def test_json_and_tables_show_the_bare_value() -> None:
    result = HostResult("web1", DeployStatus.ROLLED_BACK, "r2", 1.234, "boom", "r1")
    assert json.dumps(result.as_dict()) == (
        '{"host": "web1", "status": "rolled-back", "release": "r2", "previous": "r1", "seconds": 1.23, "error": "boom", '
        '"cause": null, "log": null}')
    assert f"{result.status:<12}|" == "rolled-back |"
    report = HostReport("web1", [CheckResult("health", CheckOutcome.SKIPPED, "not checked")])
    assert '"outcome": "skipped"' in json.dumps(report.as_dict())


def test_exit_codes_follow_the_statuses() -> None:
    def code(*statuses: DeployStatus) -> int:
        return exit_code_for([HostResult(f"h{i}", s, None) for i, s in enumerate(statuses)])

    assert code(DeployStatus.DEPLOYED, DeployStatus.UNCHANGED) == EXIT_OK
    assert code(DeployStatus.DEPLOYED, DeployStatus.LOCKED) == EXIT_LOCKED
    assert code(DeployStatus.LOCKED, DeployStatus.SKIPPED) == EXIT_FAILED
    assert code(DeployStatus.ROLLED_BACK) == EXIT_FAILED
