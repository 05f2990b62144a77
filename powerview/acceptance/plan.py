"""The acceptance plan of a live deployment, A0 to A9 (docs/acceptance.md): `Plan` runs each group
of checks (a module each in this package) then the cleanup; `powerview-acceptance`
(powerview.cli.acceptance) prints its lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from powerview.acceptance.access import Access
from powerview.acceptance.cleanup import Cleanup
from powerview.acceptance.context import FAIL, SKIP, TEST_COMPANY, Aborted, Check, Context
from powerview.acceptance.deployment import Deployment
from powerview.acceptance.logtail import LogTail, parse_log_line
from powerview.acceptance.provisioning import Provisioning
from powerview.acceptance.samples import Sample, samples
from powerview.acceptance.settings import AcceptanceSettings
from powerview.acceptance.story import Story
from powerview.acceptance.uploads import Uploads
from powerview.core.exitcodes import ExitCode

__all__ = [
    "TEST_COMPANY",
    "Check",
    "Context",
    "LogTail",
    "Plan",
    "Sample",
    "exit_code",
    "parse_log_line",
    "run_checks",
    "samples",
]


class Plan(Deployment, Provisioning, Uploads, Access, Story, Cleanup):
    """The plan, A0 to A9, then the cleanup; each group of checks is in powerview/acceptance/."""

    def run(self, keep: bool = False) -> None:
        plan = [self.preconditions, self.a1, self.a2, self.uploads, self.a3_to_a7, self.a8, self.a9]
        try:
            for step in plan:
                step()
        except Aborted as exc:
            if not any(c.id == "A1" for c in self.checks):
                self.a1()
            for id_ in ("A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"):
                if not any(c.id == id_ for c in self.checks):
                    self.record(SKIP, id_, "not run", str(exc))
        finally:
            if keep:
                self.record(SKIP, "A0", f"cleanup of {self.company}", "--keep: the test company is left in place")
            else:
                self.cleanup()


def run_checks(
    settings: AcceptanceSettings,
    project: Path,
    env_file: Path | None,
    timeout_s: float,
    keep: bool = False,
    emit: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Run the whole plan against the deployment; returns the checks (each also given to `emit`)."""
    plan = Plan(settings, project, env_file, timeout_s, emit or (lambda check: None))
    plan.run(keep=keep)
    return plan.checks


def exit_code(checks: list[Check]) -> ExitCode:
    return ExitCode.REJECTED if any(c.result == FAIL for c in checks) else ExitCode.OK
