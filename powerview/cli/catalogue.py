"""powerview-catalogue: rebuild the config API's channel catalogue from InfluxDB, or deliver the
publications the parser kept in its outbox."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import NoReturn

import click

from powerview.cli import common as commandline
from powerview.core.exitcodes import ExitCode, worst
from powerview.core.names import raw_bucket_skip_reason
from powerview.core.settings import ConfigError, Env, InfluxCommandSettings, load_env, load_influx_command, log_level_of
from powerview.delivery import catalogue
from powerview.delivery.catalogue import ConfigAPIClient
from powerview.delivery.catalogue_rebuild import bodies_of, bucket_names, campaigns_of
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influx_targets import open_query_client
from powerview.delivery.influxql import QueryClient
from powerview.delivery.outbox import Outbox, Refused

log = logging.getLogger("powerview")
# every refusal or outage of InfluxDB is a "try again later" here (75), as it always was
INFLUX_ERRORS = (InfluxUnavailable, InfluxRejected, ConfigError)
PROG = "powerview-catalogue"

EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "done",
        ExitCode.USAGE: "usage or configuration error (a publication refused, a token refused)",
        ExitCode.TEMPFAIL: "InfluxDB or the config API unavailable (run again later)",
    }
)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option("--bucket", "buckets", multiple=True, help="A company bucket to rebuild (repeatable).")
@click.option(
    "--all",
    "all_buckets",
    is_flag=True,
    help="Every company bucket (not _* system buckets, the meta bucket, *_1h/_1d/_1w).",
)
@click.option("--dry-run", is_flag=True, help="Read InfluxDB and print what would be published; publish nothing.")
@click.option("--deliver-outbox", is_flag=True, help="Only deliver what the parser kept in its outbox.")
@commandline.env_file_option
@commandline.log_level_option
def main(buckets, all_buckets, dry_run, deliver_outbox, env_file, log_level):
    """Publish every channel InfluxDB holds to {CONFIG_API_URL}/buckets/<bucket>/channels
    (InfluxQL SHOW SERIES on /query; works with InfluxDB 1.x and 2.x)."""
    commandline.check_env_file(PROG, env_file)
    if deliver_outbox == bool(buckets or all_buckets) or (buckets and all_buckets):
        _usage("give --bucket NAME (repeatable), --all, or --deliver-outbox")
    env = load_env(env_file)  # read once, for the config API's settings and InfluxDB's
    api_settings, client = _config_api(env, dry_run, log_level)
    if deliver_outbox:
        sys.exit(_deliver(api_settings, client))
    try:
        settings = load_influx_command(env)
        settings.influx.require()
    except ConfigError as exc:
        _usage(str(exc))
    # SHOW SERIES of a large bucket may take long: at least the 300 s a request always had here
    influx = open_query_client(replace(settings.influx, timeout_s=max(settings.influx.timeout_s, 300.0)))
    failures: list[ExitCode] = []
    for bucket in _targets(influx, settings, buckets, all_buckets):
        failures += _rebuild(influx, client, bucket, dry_run)
    sys.exit(worst(failures))


def _config_api(
    env: Env, dry_run: bool, log_level: str | None
) -> tuple[catalogue.CatalogueSettings, ConfigAPIClient | None]:
    """The config API's settings and client (none in a dry run without CONFIG_API_URL); the logging."""
    try:
        commandline.configure_logging(PROG, log_level or log_level_of(env))
        api_settings = catalogue.CatalogueSettings.load(env)
        if not api_settings.url and not dry_run:
            raise ConfigError("missing setting CONFIG_API_URL (environment or .env)")
        client = catalogue.ConfigAPIClient(api_settings) if api_settings.url else None
    except ConfigError as exc:
        _usage(str(exc))
    return api_settings, client


def _targets(
    influx: QueryClient, settings: InfluxCommandSettings, buckets: tuple[str, ...], all_buckets: bool
) -> list[str]:
    """The buckets to rebuild: those given (a reserved name is a usage error), or every company bucket."""
    if not all_buckets:
        for name in buckets:
            reason = raw_bucket_skip_reason(name, settings.meta_bucket)
            if reason:
                _usage(f"--bucket {name}: {reason}")
        return list(buckets)
    try:
        names = bucket_names(influx, settings.influx.org)
    except INFLUX_ERRORS as exc:
        commandline.fail(PROG, ExitCode.TEMPFAIL, f"cannot list the buckets: {exc}")
    targets = []
    for name in names:
        reason = raw_bucket_skip_reason(name, settings.meta_bucket)
        if reason:
            click.echo(f"{name}: skipped ({reason})")
        else:
            targets.append(name)
    return targets


def _rebuild(influx: QueryClient, client: ConfigAPIClient | None, bucket: str, dry_run: bool) -> list[ExitCode]:
    """Publish (or, in a dry run, count) the channels of each campaign of `bucket`: the failures' codes."""
    try:
        campaigns = campaigns_of(influx, bucket)
    except INFLUX_ERRORS as exc:
        click.echo(f"{bucket}: error: {exc}", err=True)
        return [ExitCode.TEMPFAIL]
    if not campaigns:
        click.echo(f"{bucket}: no series in measurement electrical")
    failures = []
    for name in sorted(campaigns):
        bodies = bodies_of(campaigns[name])
        nb = sum(len(b["channels"]) for b in bodies)
        if dry_run or client is None:
            click.echo(f"{bucket}/{name}: {nb} channel(s) (dry run: nothing published)")
            continue
        try:
            counts = [client.post_channels(bucket, body) for body in bodies]
        except (Refused, catalogue.CatalogueUnavailable) as exc:
            click.echo(f"{bucket}/{name}: error: {exc}", err=True)
            # an answer that will never change (refused, 401/403) is configuration; the rest, later
            auth = " HTTP 401" in str(exc) or " HTTP 403" in str(exc)
            failures.append(ExitCode.USAGE if isinstance(exc, Refused) or auth else ExitCode.TEMPFAIL)
            continue
        click.echo(
            f"{bucket}/{name}: {nb} channel(s), inserted {sum(c['inserted'] for c in counts)}, "
            f"updated {sum(c['updated'] for c in counts)}"
        )
    return failures


def _deliver(api_settings: catalogue.CatalogueSettings, client: ConfigAPIClient | None) -> int:
    if client is None:  # --deliver-outbox --dry-run without CONFIG_API_URL
        _usage("missing setting CONFIG_API_URL (environment or .env): nowhere to deliver")
    outbox = Outbox(api_settings.outbox_dir)
    with outbox.locked():
        delivered, failure = outbox.deliver(client.send)
    click.echo(f"{len(delivered)} publication(s) delivered, {len(outbox.waiting())} waiting in {outbox.folder}")
    if failure is not None:
        click.echo(f"{PROG}: error: {failure}", err=True)
        return ExitCode.TEMPFAIL
    return ExitCode.OK


def _usage(message: str) -> NoReturn:
    commandline.fail(PROG, ExitCode.USAGE, message)
