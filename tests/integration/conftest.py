"""The ``lab`` fixture: three real Debian hosts for the whole test session.

Skipped with a reason where the lab cannot run (not root, no nspawn or
debootstrap), except under CI=true, where that is a failure: CI must never go
green by silently skipping the tests that deploy for real.
"""

from __future__ import annotations

import os
import shutil

import pytest

from deployer.lab import Lab, LabError

HOSTS = 3


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: needs root and the lab (real Debian hosts booted with systemd-nspawn)")


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool, pkg in (("systemd-nspawn", "systemd-container"), ("debootstrap", "debootstrap")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install -y {pkg})"
    return None


def _cannot(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the lab cannot start: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def lab():
    """A Lab with lab1..lab3 up (cheap if they already are); all down at the end."""
    why = lab_unavailable()
    if why:
        _cannot(why)
    the_lab = Lab()
    try:
        the_lab.up(HOSTS)
    except LabError as e:
        pytest.fail(f"deployer lab up failed: {e}", pytrace=False)
    yield the_lab
    the_lab.down()
