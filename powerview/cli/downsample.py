"""The `powerview-downsample` command (click): backfill or repair the derived buckets
`<bucket>_1h/_1d/_1w` from the raw data, with the same exact computation as ingestion
(powerview.delivery.derived), chunked so that memory stays flat on years of data.

stdout carries the queries (--dry-run) and nothing else; progress and messages go to stderr.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import NoReturn

import click

from powerview.cli import common as commandline
from powerview.core.exitcodes import ExitCode
from powerview.core.names import bucket_name_problem, name_problem, raw_bucket_skip_reason, reserved_bucket_problem
from powerview.core.settings import ConfigError, load_influx_command, parse_levels
from powerview.delivery import derived, flux_tasks, windows
from powerview.delivery.influx import InfluxRejected, InfluxUnavailable
from powerview.delivery.influx_targets import open_query_client, open_writer
from powerview.delivery.influxql import QueryClient, quote_ident

log = logging.getLogger("powerview")
PROG = "powerview-downsample"

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = ExitCode.OK, ExitCode.USAGE, ExitCode.TEMPFAIL

EXIT_CODES = commandline.epilog(
    {
        ExitCode.OK: "done (or, with --dry-run, the queries printed)",
        ExitCode.USAGE: "usage or configuration error, or InfluxDB refused a query or a write (the message says which)",
        ExitCode.TEMPFAIL: "InfluxDB unavailable: run again later (windows are recomputed whole: nothing half-done)",
    },
    more="""
Settings (environment, then .env): INFLUXDB_VERSION (1, 2 or 3), INFLUXDB_HOST, and
INFLUXDB_ORG + INFLUXDB_ADMIN_TOKEN (2), INFLUXDB_ADMIN_TOKEN (3), INFLUXDB_V1_USER +
INFLUXDB_V1_PASSWORD (1, when auth is enabled).
\b
Examples:
  powerview-downsample --bucket companyX                    every level, 2017-01-01 to now
  powerview-downsample --all --start 2025-10-01 --levels 1h,1d
  powerview-downsample --bucket companyX --dry-run          the queries, nothing run
  powerview-downsample --pending                            the windows the parser recorded and
                                                            did not recompute yet (a killed run)

The switch-over from the deployed version (InfluxDB 2, docs/buckets-derives.md):
  powerview-downsample --all --disable-flux-tasks --dry-run   what would be done
  powerview-downsample --all --disable-flux-tasks             backfill, then set the deployed
                                 tasks downsample_<bucket>_<level> inactive, then recompute the
                                 last 8 days (what a task may have written meanwhile)
  powerview-downsample --all --enable-flux-tasks              rollback: set them active again
\b
One recompute at a time per bucket: the parser and this command share a lock per bucket
(<POWERVIEW_SPOOL_DIR>/locks/derived/), so that the one that read the newer raw data
always writes last.
""",
)


def _moment(value: str | None, option: str, default: datetime) -> int:
    if value is None:
        return int(default.timestamp())
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def raw_buckets(client: QueryClient, meta_bucket: str) -> list[str]:
    """The company buckets: every database but system ones, the meta bucket and derived ones."""
    names = []
    for series in client.series(None, "SHOW DATABASES"):
        names += [row[0] for row in series.get("values") or []]
    return sorted(n for n in names if raw_bucket_skip_reason(n, meta_bucket) is None)


def spans_of_bucket(client: QueryClient, bucket: str, start: int, end: int) -> list[windows.Span]:
    """One span per device of the bucket, with the device's fields (`M<device>_...`)."""
    measurement = quote_ident(windows.RAW_MEASUREMENT)
    devices = [
        row[-1]
        for series in client.series(bucket, f'SHOW TAG VALUES FROM {measurement} WITH KEY = "device_master_sn"')
        for row in series.get("values") or []
    ]
    fields = [
        row[0]
        for series in client.series(bucket, f"SHOW FIELD KEYS FROM {measurement}")
        for row in series.get("values") or []
    ]
    spans: list = []
    claimed: set[str] = set()
    for device in sorted(set(devices)):
        if name_problem("device", device):
            log.warning("bucket %s: device %r breaks the naming rules: skipped", bucket, device)
            continue
        own = tuple(sorted(f for f in fields if f.startswith(f"M{device}_")))
        claimed.update(own)
        if own:
            spans.append(windows.Span(bucket, None, device, start, end - 1, own))
    unclaimed = sorted(set(fields) - claimed)
    if unclaimed:
        log.warning(
            "bucket %s: %d field(s) belong to no device (%s...): skipped",
            bucket,
            len(unclaimed),
            ", ".join(unclaimed[:3]),
        )
    return spans


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option(
    "--bucket",
    "buckets",
    multiple=True,
    metavar="NAME",
    help="A company's raw bucket (repeatable); its derived buckets are <NAME>_1h, _1d, _1w.",
)
@click.option("--all", "all_buckets", is_flag=True, help="Every company bucket of the server.")
@click.option(
    "--pending",
    is_flag=True,
    help="Recompute the windows recorded in <POWERVIEW_SPOOL_DIR>/outbox/derived/ and not done yet "
    "(a parser killed mid-run); the worker runs this at the end of its pass.",
)
@click.option("--start", metavar="DATE", help="First instant (YYYY-MM-DD or ISO time, UTC; default 2017-01-01).")
@click.option("--end", metavar="DATE", help="Instant where to stop, excluded (default: now).")
@click.option(
    "--levels",
    "levels_text",
    multiple=True,
    metavar="1h,1d,1w",
    help="Levels to recompute, comma-separated or repeated (default: TSV_DOWNSAMPLE_LEVELS, "
    "else 1h,1d,1w). A coarser level is folded from the finer one when both are given.",
)
@click.option("--dry-run", is_flag=True, help="Print the InfluxQL queries (one per level and chunk), run none.")
@click.option(
    "--disable-flux-tasks",
    is_flag=True,
    help="InfluxDB 2: after the backfill, set the deployed tasks downsample_<bucket>_<level> inactive "
    "(they overwrite the exact values), then recompute the last 8 days.",
)
@click.option(
    "--enable-flux-tasks",
    is_flag=True,
    help="InfluxDB 2, rollback: set the deployed tasks downsample_<bucket>_<level> active again (no backfill).",
)
@commandline.env_file_option
@commandline.log_level_option
def main(
    buckets,
    all_buckets,
    pending,
    start,
    end,
    levels_text,
    dry_run,
    disable_flux_tasks,
    enable_flux_tasks,
    env_file,
    log_level,
):
    """Recompute the derived buckets <bucket>_1h/_1d/_1w (mean in `electrical`, `electrical_min`,
    `electrical_max`, `electrical_count`, stamped at each window's end) from the raw data."""
    if pending:
        if buckets or all_buckets or start or end or dry_run:
            commandline.fail(
                PROG, EXIT_USAGE, "--pending goes alone (with --levels, --env-file or --log-level at most)"
            )
        _pending(levels_text, env_file, log_level)
    if bool(buckets) == all_buckets:
        commandline.fail(PROG, EXIT_USAGE, "give --bucket NAME (repeatable) or --all (or --pending)")
    if disable_flux_tasks and enable_flux_tasks:
        commandline.fail(PROG, EXIT_USAGE, "give --disable-flux-tasks or --enable-flux-tasks, not both")
    for bucket in buckets:
        problem = bucket_name_problem(bucket)
        if problem:
            commandline.fail(PROG, EXIT_USAGE, problem)
    first = _moment(start, "--start", datetime(2017, 1, 1, tzinfo=UTC))
    last = _moment(end, "--end", datetime.now(UTC))
    if first >= last:
        commandline.fail(PROG, EXIT_USAGE, "--start must be before --end")
    commandline.check_env_file(PROG, env_file)
    with commandline.influx_failures(PROG):
        settings = load_influx_command(env_file)
        for bucket in buckets:  # the rule the parser applies to company folders (and powerview-catalogue)
            problem = reserved_bucket_problem(bucket, settings.meta_bucket)
            if problem:
                commandline.fail(PROG, EXIT_USAGE, problem.replace("company name", "bucket name", 1))
        levels = parse_levels(",".join(levels_text), "--levels") if levels_text else settings.downsample_levels
        if not levels:
            raise ConfigError("no level to recompute (--levels, or TSV_DOWNSAMPLE_LEVELS is empty)")
        commandline.configure_logging(PROG, log_level or settings.log_level)
        tasks_api = _tasks_api(settings.influx) if disable_flux_tasks or enable_flux_tasks else None
        client = open_query_client(settings.influx)
        targets = list(buckets) or raw_buckets(client, settings.meta_bucket)
        if tasks_api is not None and enable_flux_tasks:
            _switch_tasks(tasks_api, targets, levels, flux_tasks.ACTIVE, dry_run)
            sys.exit(EXIT_OK)
        spans = [span for bucket in targets for span in spans_of_bucket(client, bucket, first, last)]
        steps = [(span, step) for span in spans for step in windows.plan(span, levels)]
        log.info(
            "%d bucket(s), %d device(s), %d quer%s from %s to %s",
            len(targets),
            len(spans),
            len(steps),
            "y" if len(steps) == 1 else "ies",
            windows.iso_z(first),
            windows.iso_z(last),
        )
        if dry_run:
            for span, (level, database, query, _, _) in steps:
                click.echo(f"-- read {database}, write {windows.derived_bucket(span.bucket, level)}")
                click.echo(query + ";")
            if tasks_api is not None:
                _switch_tasks(tasks_api, targets, levels, flux_tasks.INACTIVE, dry_run)
            sys.exit(EXIT_OK)
        writer = open_writer(settings.influx, settings.meta_bucket)
        try:
            locks = derived.BucketLocks(settings.spool_dir)
            _run(spans, levels, client, writer, settings.batch_lines, len(steps), locks)
            if tasks_api is not None:
                # a task run during the backfill overwrote at most its last window: recompute
                # what it may have touched, once no task runs any more
                _switch_tasks(tasks_api, targets, levels, flux_tasks.INACTIVE, dry_run)
                since = max(first, int(datetime.now(UTC).timestamp()) - RECENT_AFTER_TASKS_S)
                now = int(datetime.now(UTC).timestamp()) + 1
                recent = [span for bucket in targets for span in spans_of_bucket(client, bucket, since, now)]
                log.info("recomputing from %s, after the tasks were stopped", windows.iso_z(since))
                _run(recent, levels, client, writer, settings.batch_lines, 0, locks)
        finally:
            writer.close()
            client.close()
    sys.exit(EXIT_OK)


# a 1w task covers the last week, plus the offset and a clock's slack
RECENT_AFTER_TASKS_S = 8 * 86400


def _tasks_api(influx) -> flux_tasks.TasksAPI:
    if influx.version != 2:
        raise ConfigError(
            "--disable-flux-tasks/--enable-flux-tasks: the deployed downsampling tasks exist on InfluxDB 2 only "
            f"(INFLUXDB_VERSION is {influx.version})"
        )
    influx.require()
    return flux_tasks.TasksAPI(
        influx.url or "", influx.org or "", influx.token or "", influx.timeout_s, influx.retry_max_s
    )


def _switch_tasks(api: flux_tasks.TasksAPI, buckets: list[str], levels, status: str, dry_run: bool) -> None:
    for change in flux_tasks.switch(api, buckets, tuple(levels), status, dry_run):
        click.echo(change.line(dry_run), err=True)


def _pending(levels_text, env_file, log_level) -> NoReturn:
    """--pending: the derived outbox's records, as the parser's next run would do them."""
    commandline.check_env_file(PROG, env_file)
    try:
        settings = load_influx_command(env_file)
        levels = parse_levels(",".join(levels_text), "--levels") if levels_text else settings.downsample_levels
        if not levels:
            raise ConfigError("no level to recompute (--levels, or TSV_DOWNSAMPLE_LEVELS is empty)")
        commandline.configure_logging(PROG, log_level or settings.log_level)
        outbox = derived.Outbox(settings.spool_dir)
        waiting = outbox.pending()
        log.info("%d record(s) waiting in %s", len(waiting), outbox.dir)
        if not waiting:
            sys.exit(EXIT_OK)
        client = open_query_client(settings.influx)
        writer = open_writer(settings.influx, settings.meta_bucket)
        try:
            done = derived.process_pending(
                outbox, levels, client, writer, settings.batch_lines, derived.BucketLocks(settings.spool_dir)
            )
        finally:
            writer.close()
            client.close()
    except ConfigError as exc:
        commandline.fail(PROG, EXIT_USAGE, str(exc))
    except (InfluxUnavailable, InfluxRejected) as exc:  # process_pending keeps them: only from opening
        commandline.fail(PROG, EXIT_UNAVAILABLE, str(exc))
    left = len(outbox.pending())
    log.info("%d record(s) done, %d left", len(done), left)
    sys.exit(EXIT_UNAVAILABLE if left else EXIT_OK)


def _run(spans, levels, client, writer, batch_lines: int, nb_steps: int, lock) -> None:
    total = 0
    if sys.stderr.isatty() and nb_steps:
        with click.progressbar(length=nb_steps, label="windows", file=sys.stderr) as bar:
            for span in spans:
                total += derived.recompute(
                    span, levels, client, writer, batch_lines, on_chunk=lambda: bar.update(1), lock=lock
                )
    else:
        for span in spans:
            total += derived.recompute(span, levels, client, writer, batch_lines, lock=lock)
            log.info("%s / %s: done", span.bucket, span.device_master_sn)
    log.info("%d line(s) written to the derived buckets", total)


if __name__ == "__main__":  # pragma: no cover
    main()
