"""The built-in checks as one pytest test, parametrized with the checks that apply to the host.

The plugin (``deployer.verify.plugin``) supplies the check names in run
order and the fixtures; the judging is pure (``deployer.verify.checks``).
"""

from __future__ import annotations

import pytest

from deployer.core.outcomes import CheckOutcome
from deployer.verify.checks import verdict


def test_check(check: str, deployer_host: dict, deployer_probe: dict, deployer_outcomes: dict) -> None:
    outcome, reason = verdict(check, deployer_host, deployer_probe, deployer_outcomes)
    if outcome == CheckOutcome.SKIPPED:
        pytest.skip(reason)
    if outcome == CheckOutcome.FAILED:
        pytest.fail(reason, pytrace=False)
