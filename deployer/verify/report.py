"""Verify results per check per host, and the three ways to show them. Pure.

A per-host table for people, JUnit XML for CI (one testcase per check per
host, one testsuite per host), and one JSON document for scripts. Exit 0 only
when no check failed and every host was reached.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from deployer.core.outcomes import CheckOutcome
from deployer.errors import EXIT_FAILED, EXIT_OK

OUTCOMES = tuple(CheckOutcome)


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: CheckOutcome
    reason: str = ""
    seconds: float = 0.0


@dataclass
class HostReport:
    host: str
    checks: list[CheckResult] = field(default_factory=list)
    error: str | None = None  # the host could not be verified at all (connection, crash)
    seconds: float = 0.0

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome == CheckOutcome.FAILED]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def failure(self) -> str | None:
        """One line saying why the host failed verify, or None (for a deploy's error)."""
        if self.error:
            return self.error
        if not self.failed:
            return None
        return "; ".join(f"{c.name}: {c.reason}" for c in self.failed)

    def counts(self) -> dict[str, int]:
        return {o: sum(c.outcome == o for c in self.checks) for o in OUTCOMES}

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "ok": self.ok, "error": self.error, "seconds": round(self.seconds, 2),
                "counts": self.counts(),
                "checks": [{"name": c.name, "outcome": c.outcome, "reason": c.reason, "seconds": round(c.seconds, 3)}
                           for c in self.checks]}


def exit_code(reports: list[HostReport]) -> int:
    return EXIT_OK if reports and all(r.ok for r in reports) else EXIT_FAILED


def render_table(reports: list[HostReport]) -> str:
    lines = []
    for report in reports:
        counts = report.counts()
        summary = report.error and f"error: {report.error}" or ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        lines.append(f"{report.host}: {summary or 'no checks'} ({report.seconds:.1f}s)")
        width = max([len(c.name) for c in report.checks] + [5])
        for check in report.checks:
            lines.append(f"  {check.name:<{width}}  {check.outcome:<7}  {check.reason}".rstrip())
    failed = [r.host for r in reports if not r.ok]
    lines.append(f"verify failed on {', '.join(failed)}" if failed else f"verify passed on {len(reports)} host(s)")
    return "\n".join(lines)


def render_json(reports: list[HostReport]) -> str:
    return json.dumps({"ok": exit_code(reports) == EXIT_OK, "hosts": [r.as_dict() for r in reports]}, indent=2)


def render_junit(reports: list[HostReport]) -> str:
    root = ET.Element("testsuites", name="deployer verify")
    for report in reports:
        cases = report.checks + ([CheckResult("host", CheckOutcome.FAILED, report.error)] if report.error else [])
        counts = {o: sum(c.outcome == o for c in cases) for o in OUTCOMES}
        suite = ET.SubElement(root, "testsuite", name=report.host, tests=str(len(cases)), failures=str(counts[CheckOutcome.FAILED]),
                              errors="0", skipped=str(counts[CheckOutcome.SKIPPED]), time=f"{report.seconds:.3f}")
        for check in cases:
            case = ET.SubElement(suite, "testcase", classname=f"verify.{report.host}", name=check.name,
                                 time=f"{check.seconds:.3f}")
            if check.outcome == CheckOutcome.FAILED:
                ET.SubElement(case, "failure", message=check.reason).text = check.reason
            elif check.outcome == CheckOutcome.SKIPPED:
                ET.SubElement(case, "skipped", message=check.reason)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
