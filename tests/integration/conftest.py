"""The ``lab`` fixture: three real Debian hosts for the whole test session.

Skipped with a reason where the lab cannot run (not root, no nspawn or
debootstrap), except under CI=true, where that is a failure: CI must never go
green by silently skipping the tests that deploy for real.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from deployer.lab import Lab, LabError

HOSTS = 3
SESSION_WAIT = 1800.0  # another test session may hold the lab for its whole run


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
def lab_session():
    """The lab, ours for the whole session; all hosts down at the end."""
    why = lab_unavailable()
    if why:
        _cannot(why)
    the_lab = Lab()
    try:
        with the_lab.session(SESSION_WAIT, say=lambda msg: print(f"\n{msg}", file=sys.stderr)):
            yield the_lab
            the_lab.down()
    except LabError as e:  # still held by another session after SESSION_WAIT
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def lab(lab_session):
    """lab1..lab3 booted fresh for each test module (about 2 s).

    What one module deployed must not decide what the next one sees: a rollback
    target, a release marked bad, a hook's leftovers. `down` drops each host's
    overlay, so every module starts from the base image.
    """
    try:
        lab_session.down()
        lab_session.up(HOSTS)
    except LabError as e:
        pytest.fail(f"deployer lab up failed: {e}", pytrace=False)
    return lab_session
