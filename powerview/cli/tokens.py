"""The `manage_influx_tokens.py` command line (click): per-bucket InfluxDB tokens for Grafana.

stdout carries the result alone (the token, or the JSON asked for with --json, or the listing);
everything else goes to stderr. Token values are never logged.
"""

from __future__ import annotations

import json
import logging
import sys

import click

from powerview.cli import common as commandline
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import Env, load_env, load_tokens
from powerview.onboarding.influx_tokens import TokenManager, description_for, manager_for

log = logging.getLogger("powerview")
PROG = "manage_influx_tokens"

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = ExitCode.OK, ExitCode.USAGE, ExitCode.TEMPFAIL

EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "done (the token, the listing or the JSON is on stdout)",
        ExitCode.USAGE: "usage or configuration error: a missing or wrong setting (named), a bad bucket name,\n"
        "      a token InfluxDB refuses, an unknown organization, an operation InfluxDB refuses",
        ExitCode.SOFTWARE: "internal error",
        ExitCode.TEMPFAIL: "InfluxDB unavailable (connection refused, 5xx, timeouts): nothing done, run again later",
    },
    more="""
Settings (environment, then .env): INFLUXDB_HOST, INFLUXDB_ORG, INFLUXDB_ADMIN_TOKEN.
\b
Examples:
  manage_influx_tokens.py --bucket companyX            read-only token of bucket companyX
  manage_influx_tokens.py --bucket companyX --list     its tokens, without their values
  manage_influx_tokens.py --bucket companyX --rotate   a new read-only token into the company's
                                                       Grafana data sources, then the old ones deleted
  manage_influx_tokens.py --bucket companyX --revoke   delete the bucket's PowerView tokens
  powerview-tokens --migrate --bucket companyX --dry-run   what the migration would do
  powerview-tokens --migrate --all                     migrate every company with a deployed token
\b
--migrate (docs/migration.md): per company, the read-only token (adopted if an earlier run made it),
put into the company's Grafana data sources and read back, then the deployed read+write token
deleted. A company not done keeps its deployed token. Exit code: 0 every company done (or nothing
to do); 75 Grafana or InfluxDB unavailable for one (run again later); 2 one needs the operator
(no data source, a refusal, a bad name). One line per company on stdout (JSON with --json).
Settings: also GRAFANA_URL and GRAFANA_API_TOKEN or GRAFANA_USERNAME/GRAFANA_PASSWORD, GRAFANA_TENANCY.
""",
)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option(
    "--bucket",
    metavar="NAME",
    help="The company's bucket (the company folder name); created when missing (required but with --migrate --all).",
)
@click.option(
    "--write", "write", is_flag=True, help="Read AND write on the bucket (default: read only, all Grafana needs)."
)
@click.option(
    "--list", "do_list", is_flag=True, help="List the bucket's tokens (id, status, permissions), never their values."
)
@click.option("--revoke", is_flag=True, help="Delete every token described for this bucket.")
@click.option(
    "--rotate",
    is_flag=True,
    help="A new token, then the old ones with the same permissions deleted. Read-only: the new one is "
    "first put into the company's Grafana data sources and read back (as --migrate; old tokens kept "
    "if Grafana fails); with --write: printed, as the token alone.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"bucket", "id", "token", "created", "rotated", "changed", ...} instead of the '
    "bare token (with --list or --revoke: JSON too).",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be done (JSON with --json), change nothing, print no token."
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Replace the deployed read+write token of --bucket (or of --all companies) by the read-only "
    "one, in InfluxDB and in the company's Grafana data sources (docs/migration.md).",
)
@click.option("--all", "all_buckets", is_flag=True, help="With --migrate: every company that has a deployed token.")
@commandline.env_file_option
@commandline.log_level_option
def main(bucket, write, do_list, revoke, rotate, as_json, dry_run, migrate, all_buckets, env_file, log_level):
    """Per-company InfluxDB tokens for Grafana: a token that can read the company's bucket and its
    derived buckets <bucket>_1h/_1d/_1w (TSV_DOWNSAMPLE_LEVELS) and nothing else (described
    powerview_token_for_bucket_<bucket>), reused while it is valid; an older token reading the
    company bucket alone is rotated (never widened). InfluxDB 2 only (INFLUXDB_VERSION=2).

    The token alone goes to stdout (what the Grafana playbook reads); messages go to stderr."""
    if sum((do_list, revoke, rotate, migrate)) > 1:
        commandline.fail(PROG, EXIT_USAGE, "--list, --revoke, --rotate and --migrate exclude each other")
    if all_buckets and not migrate:
        commandline.fail(PROG, EXIT_USAGE, "--all goes with --migrate only")
    if migrate and write:
        commandline.fail(PROG, EXIT_USAGE, "--migrate makes read-only tokens: --write does not apply")
    if migrate and all_buckets and bucket:
        commandline.fail(PROG, EXIT_USAGE, "--migrate takes --bucket NAME or --all, not both")
    if not bucket and not (migrate and all_buckets):
        commandline.fail(PROG, EXIT_USAGE, "Missing option '--bucket'" + (" (or --all)" if migrate else ""))
    commandline.check_env_file(PROG, env_file)
    with commandline.influx_failures(PROG, "InfluxDB refused the operation", internal=True):
        env = load_env(env_file)  # read once: the Grafana settings of --migrate come from it too
        settings = load_tokens(env)
        commandline.configure_logging(PROG, log_level or settings.log_level)
        manager = manager_for(settings)
        if migrate or (rotate and not write):  # a read-only token lives in Grafana's data sources
            sys.exit(_migrate(manager, env, bucket, as_json, dry_run, rotate=rotate))
        if do_list:
            _list(manager, bucket, as_json)
        elif revoke:
            _revoke(manager, bucket, as_json, dry_run)
        elif dry_run:
            plan = manager.plan(bucket, write)
            if rotate:
                plan = {**plan, "action": "rotate", "id": None, "changed": True}
            click.echo(
                json.dumps(plan)
                if as_json
                else f"bucket {bucket}: would {plan['action']}"
                + ("" if plan["bucket_exists"] else " (and create the bucket)")
            )
        else:
            outcome = manager.rotate(bucket, write) if rotate else manager.ensure(bucket, write)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "bucket": outcome.bucket,
                            "id": outcome.id,
                            "token": outcome.token,
                            "created": outcome.created,
                            "rotated": outcome.rotated,
                            "bucket_created": outcome.bucket_created,
                            "deleted": outcome.deleted,
                            "changed": outcome.changed,
                            "action": "create" if outcome.created else "reuse",
                            "bucket_exists": True,
                        }
                    )
                )
            else:
                click.echo(outcome.token)
    sys.exit(EXIT_OK)


def _list(manager: TokenManager, bucket: str, as_json: bool) -> None:
    tokens = manager.list(bucket)
    if as_json:
        click.echo(json.dumps([t.__dict__ | {"permissions": list(t.permissions)} for t in tokens]))
        return
    if not tokens:
        log.info("no token for bucket %s", bucket)
    for t in tokens:
        click.echo(
            "\t".join(
                (
                    t.id,
                    t.status,
                    t.description,
                    ",".join(t.permissions),
                    t.created_at,
                    "value-visible" if t.token_visible else "value-hidden",
                )
            )
        )


def _revoke(manager: TokenManager, bucket: str, as_json: bool, dry_run: bool) -> None:
    if dry_run:
        ids = [t.id for t in manager.list(bucket) if t.description == description_for(bucket)]
        click.echo(
            json.dumps({"bucket": bucket, "would_delete": ids})
            if as_json
            else f"bucket {bucket}: would delete {len(ids)} token(s)"
        )
        return
    deleted = manager.revoke(bucket)
    log.info("bucket %s: %d token(s) deleted", bucket, len(deleted))
    if as_json:
        click.echo(json.dumps({"bucket": bucket, "deleted": deleted}))


def _migrate(
    manager: TokenManager, env: Env, bucket: str | None, as_json: bool, dry_run: bool, rotate: bool = False
) -> int:
    """--migrate (one company or all) and --rotate of a read-only token: returns the exit code (the
    worst company's)."""
    from powerview.onboarding.grafana import settings as grafana_settings
    from powerview.onboarding.grafana.client import Grafana, GrafanaError
    from powerview.onboarding.token_migration import Migrator, overall

    gsettings = grafana_settings.load(env)  # a ConfigError, as every setting's
    grafana = Grafana(gsettings)
    try:
        grafana.check_connection()
    except GrafanaError as exc:
        code = EXIT_UNAVAILABLE if exc.status == 0 or exc.status >= 500 else EXIT_USAGE
        commandline.fail(PROG, code, f"Grafana: {exc}; nothing done")
    migrator = Migrator(manager, gsettings, grafana, dry_run=dry_run)
    buckets = [bucket] if bucket else migrator.companies()
    if not buckets:
        log.info("no company has a deployed read+write token: nothing to migrate")
    results = []
    for name in buckets:
        result = migrator.migrate(name, rotate=rotate)
        results.append(result)
        if not as_json:
            click.echo(result.line())
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results]))
    done = [r.bucket for r in results if r.done]
    not_done = [r.bucket for r in results if not r.done]
    log.info(
        "%s: %d company(ies) done%s, %d not done%s",
        "dry run" if dry_run else ("rotation" if rotate else "migration"),
        len(done),
        f" ({', '.join(done)})" if done else "",
        len(not_done),
        f" ({', '.join(not_done)}): run again once the cause is fixed" if not_done else "",
    )
    return int(overall(results))
