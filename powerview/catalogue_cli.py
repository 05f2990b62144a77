"""powerview-catalogue: rebuild the config API's channel catalogue from InfluxDB, or deliver the
publications the parser kept in its outbox."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import catalogue
from .catalogue_rebuild import InfluxQL, InfluxQueryError, bodies_of, campaigns_of
from .exitcodes import ExitCode, worst
from .names import raw_bucket_skip_reason
from .outbox import Outbox, Refused
from .settings import ConfigError, load_influx_command

log = logging.getLogger("powerview")


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 done, 2 usage or configuration (a publication refused, a token refused), "
    "75 InfluxDB or the config API unavailable (run again later).",
)
@click.option("--bucket", "buckets", multiple=True, help="A company bucket to rebuild (repeatable).")
@click.option(
    "--all",
    "all_buckets",
    is_flag=True,
    help="Every company bucket (not _* system buckets, the meta bucket, *_1h/_1d/_1w).",
)
@click.option("--dry-run", is_flag=True, help="Read InfluxDB and print what would be published; publish nothing.")
@click.option("--deliver-outbox", is_flag=True, help="Only deliver what the parser kept in its outbox.")
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file (default: .env of the project); the environment wins over it.",
)
def main(buckets, all_buckets, dry_run, deliver_outbox, env_file):
    """Publish every channel InfluxDB holds to {CONFIG_API_URL}/buckets/<bucket>/channels
    (InfluxQL SHOW SERIES on /query; works with InfluxDB 1.x and 2.x)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if env_file is not None and not env_file.is_file():
        _usage(f"--env-file {env_file}: no such file")
    if deliver_outbox == bool(buckets or all_buckets) or (buckets and all_buckets):
        _usage("give --bucket NAME (repeatable), --all, or --deliver-outbox")
    try:
        api_settings = catalogue.CatalogueSettings.load(env_file)
        if not api_settings.url and not dry_run:
            raise ConfigError("missing setting CONFIG_API_URL (environment or .env)")
        client = catalogue.ConfigAPIClient(api_settings) if api_settings.url else None
    except ConfigError as exc:
        _usage(str(exc))
    if deliver_outbox:
        sys.exit(_deliver(api_settings, client))

    try:
        settings = load_influx_command(env_file)
        settings.influx.require()
    except ConfigError as exc:
        _usage(str(exc))
    influx = InfluxQL(settings.influx.url, settings.influx.token)
    failures: list[ExitCode] = []
    if all_buckets:
        try:
            names = influx.buckets(settings.influx.org)
        except InfluxQueryError as exc:
            click.echo(f"powerview-catalogue: error: cannot list the buckets: {exc}", err=True)
            sys.exit(ExitCode.TEMPFAIL)
        targets = []
        for name in names:
            reason = raw_bucket_skip_reason(name, settings.meta_bucket)
            if reason:
                click.echo(f"{name}: skipped ({reason})")
            else:
                targets.append(name)
    else:
        targets = list(buckets)
        for name in targets:
            reason = raw_bucket_skip_reason(name, settings.meta_bucket)
            if reason:
                _usage(f"--bucket {name}: {reason}")

    for bucket in targets:
        try:
            campaigns = campaigns_of(influx, bucket)
        except InfluxQueryError as exc:
            click.echo(f"{bucket}: error: {exc}", err=True)
            failures.append(ExitCode.TEMPFAIL)
            continue
        if not campaigns:
            click.echo(f"{bucket}: no series in measurement electrical")
        for name in sorted(campaigns):
            bodies = bodies_of(campaigns[name])
            nb = sum(len(b["channels"]) for b in bodies)
            if dry_run:
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
    sys.exit(worst(failures))


def _deliver(api_settings: catalogue.CatalogueSettings, client) -> int:
    outbox = Outbox(api_settings.outbox_dir)
    with outbox.locked():
        delivered, failure = outbox.deliver(client.send)
    click.echo(f"{len(delivered)} publication(s) delivered, {len(outbox.waiting())} waiting in {outbox.folder}")
    if failure is not None:
        click.echo(f"powerview-catalogue: error: {failure}", err=True)
        return ExitCode.TEMPFAIL
    return ExitCode.OK


def _usage(message: str) -> None:
    click.echo(f"powerview-catalogue: error: {message}", err=True)
    sys.exit(ExitCode.USAGE)
