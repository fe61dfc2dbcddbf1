"""The built-in checks as one pytest test, parametrized with the checks that apply to the host.

The plugin (``deployer.verify.plugin``) supplies the check names in run
order and the fixtures; the judging is pure (``deployer.verify.checks``).
"""

from __future__ import annotations

import pytest

from deployer.verify.checks import blocked_by, judge


def test_check(check: str, deployer_host: dict, deployer_probe: dict, deployer_outcomes: dict) -> None:
    blocked = blocked_by(check, deployer_outcomes)
    if blocked:
        pytest.skip(f"not checked: {', '.join(blocked)} failed")
    reason = judge(check, deployer_host, deployer_probe)
    if reason:
        pytest.fail(reason, pytrace=False)
