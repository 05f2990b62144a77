"""`powerview-acceptance` (`python -m powerview.cli.acceptance`): the acceptance check of a live
deployment: the automatable parts of the plan A1-A9.

    powerview-acceptance [--project /srv/powerview] [--env-file FILE] [--timeout 300] [--keep]

It plays a new client company the way SFTPGo would: it creates `<data>/pvaccept_<random>/` and a
campaign folder, calls the real `on-upload.sh` with `env -i SFTPGO_ACTION=...` as SFTPGo does,
writes small generated T302 files into device folders and calls the hook again for each upload;
then it waits (bounded) for the worker and checks the outcome through the public interfaces only:
Grafana's HTTP API, InfluxDB's v2 API, the JSON reports, `parsed/` and `error/`, the marker
`.company.created`, `uploads.log` and the config API. At the end it removes the test company
(delete_grafana_resources.yml, the data folder, the bucket and its token, the config API client)
— only names matching `pvaccept_<8 hex digits>` that this run created.

One line per check on stdout: `PASS|FAIL|SKIP A<n> <what> — <why>`. A0 is the deployment itself
(reachable, then cleaned up). Exit 0 when no check failed, 1 when one did, 2 for a usage or
configuration error. The plan and each check are described in docs/acceptance.md; the checks are in
powerview/acceptance/ (`plan`: the order, then one module per group).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from powerview.acceptance.context import FAIL, PASS, SKIP, Check
from powerview.acceptance.plan import exit_code, run_checks
from powerview.acceptance.settings import load_acceptance
from powerview.cli import common as commandline
from powerview.core.envfile import PROJECT_DIR
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError

EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "no check failed",
        ExitCode.REJECTED: "a check failed (its FAIL line says why), or the run was interrupted",
        ExitCode.USAGE: "usage or configuration error",
    }
)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=PROJECT_DIR,
    show_default=True,
    help="The deployed project folder: on-upload.sh, grafana-automation/, .env.",
)
@commandline.env_file_option
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Longest wait, in seconds, for each job of the worker (provisioning, each upload).",
)
@click.option("--keep", is_flag=True, help="Leave the test company in place (to inspect it); remove it by hand.")
def main(project: Path, env_file: Path | None, timeout_s: float, keep: bool) -> None:
    """Acceptance check of a live PowerView deployment (plan A1-A9, docs/acceptance.md).

    Creates a test company pvaccept_<random>, plays SFTPGo's calls, checks every outcome, then
    removes the test company. Prints PASS/FAIL/SKIP lines.
    """
    project = project.resolve()
    commandline.check_env_file("powerview-acceptance", env_file)
    env_file = env_file or project / ".env"
    try:
        settings = load_acceptance(env_file if env_file.is_file() else None)
    except ConfigError as exc:
        click.echo(f"FAIL A0 settings — {exc}")
        sys.exit(ExitCode.USAGE)

    def emit(check: Check) -> None:
        click.echo(check.line())
        sys.stdout.flush()  # each line as it happens, also through a pipe (tee)

    try:
        checks = run_checks(settings, project, env_file if env_file.is_file() else None, timeout_s, keep, emit)
    except KeyboardInterrupt:  # the cleanup ran (Plan.run's finally); its lines are printed
        click.echo("FAIL A0 run — interrupted", err=True)
        sys.exit(ExitCode.REJECTED)
    counts = {r: sum(1 for c in checks if c.result == r) for r in (PASS, FAIL, SKIP)}
    click.echo(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped", err=True)
    sys.exit(exit_code(checks))


if __name__ == "__main__":
    main()
