"""`powerview-grafana-tenancy`: move PowerView companies between the two Grafana tenancies
(powerview.onboarding.grafana.tenancy: what moves, and in which order).

    powerview-grafana-tenancy to-org --company acme [--company beta] [--dry-run]
    powerview-grafana-tenancy to-team --all [--dry-run]
"""

from __future__ import annotations

import sys

import click

from powerview.cli import common as commandline
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError
from powerview.onboarding.grafana import settings as grafana_settings
from powerview.onboarding.grafana.client import Grafana
from powerview.onboarding.grafana.company import Run
from powerview.onboarding.grafana.tenancy import FAILURES, BucketTokens, companies_in, migrate

PROG = "powerview-grafana-tenancy"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = ExitCode.OK, ExitCode.REJECTED, ExitCode.USAGE
EXIT_CODES = commandline.epilog(
    {
        EXIT_OK: "every company moved (or nothing to do)",
        EXIT_FAILED: "a company could not be moved, or Grafana failed (the message names the call); "
        "run again once fixed: what was done is kept",
        EXIT_USAGE: "usage or configuration error",
    }
)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.argument("direction", type=click.Choice(["to-org", "to-team"]))
@click.option("--company", "companies", multiple=True, help="A company to move (repeatable).")
@click.option("--all", "move_all", is_flag=True, help="Every PowerView company found in the other tenancy.")
@click.option("--dry-run", is_flag=True, help="Read only: print what would be done.")
@commandline.env_file_option
def main(direction, companies, move_all, dry_run, env_file):
    """Move PowerView companies between GRAFANA_TENANCY=team and GRAFANA_TENANCY=org.

    Set GRAFANA_TENANCY to the new value in .env once every company is moved."""
    if bool(companies) == bool(move_all):
        commandline.fail(PROG, EXIT_USAGE, "give --company NAME (repeatable) or --all")
    commandline.check_env_file(PROG, env_file)
    target = "org" if direction == "to-org" else "team"
    try:
        s = grafana_settings.load(env_file)
        if not s.has_admin:
            raise ConfigError("the migration needs GRAFANA_USERNAME and GRAFANA_PASSWORD (a Grafana server admin)")
        grafana = Grafana(s)
        grafana.check_connection()
        names = list(companies) or companies_in(Run(grafana), s, "team" if target == "org" else "org")
    except FAILURES as exc:
        commandline.fail(PROG, EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED, str(exc))
    status = EXIT_OK
    prefix = "would " if dry_run else ""
    tokens = BucketTokens(env_file)
    for name in names:
        run = Run(grafana, check=dry_run)
        try:
            result = migrate(run, s, name, target, tokens)
        except FAILURES as exc:
            click.echo(f"{name}: FAILED: {exc}", err=True)
            status = EXIT_FAILED
            continue
        for line in result["changes"]:
            click.echo(f"{name}: {prefix}{line}")
        for note in result["notes"]:
            click.echo(note)
        click.echo(
            f"{name}: {'would be moved' if dry_run else 'moved'} to {target} tenancy"
            + ("" if result["changes"] else " (nothing to do)")
        )
    sys.exit(status)


if __name__ == "__main__":
    main()
