"""Every status word deployer writes, as StrEnums: the values are what JSON, logs and tables show.

A member is a ``str`` equal to its value, so ``--json`` output, ``releases.log``
records and verify's results files read exactly as the bare strings did.
"""

from __future__ import annotations

from enum import StrEnum


class DeployStatus(StrEnum):
    """A host's outcome of ``deploy`` or ``rollback`` (``HostResult.status``)."""

    DEPLOYED = "deployed"
    UNCHANGED = "unchanged"  # already ran this release with these configs: nothing was touched
    FAILED = "failed"  # and not rolled back: nothing was live yet, or the rollback was unhealthy
    ROLLED_BACK = "rolled-back"  # the deploy failed and the previous release serves again
    LOCKED = "locked"  # another deploy holds the host's lock
    SKIPPED = "skipped"  # not tried: an earlier batch failed
    ROLLED_BACK_TO = "rolled-back-to"  # ``deployer rollback`` succeeded on the host


# A deploy that ends so on any host exits EXIT_FAILED (LOCKED alone exits EXIT_LOCKED).
DEPLOY_FAILURES = frozenset({DeployStatus.FAILED, DeployStatus.ROLLED_BACK, DeployStatus.SKIPPED})
# A batch whose hosts all end so lets the next batch start.
DEPLOY_SUCCESSES = frozenset({DeployStatus.DEPLOYED, DeployStatus.UNCHANGED})


class LogResult(StrEnum):
    """The ``result`` of a record in a host's ``releases.log``."""

    DEPLOYED = "deployed"  # also a successful rollback: the release it went to now serves
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_UNHEALTHY = "rollback-unhealthy"  # back on the previous release, which failed its health check


class CheckOutcome(StrEnum):
    """One verify check's outcome on one host."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # does not apply, or a prerequisite failed
