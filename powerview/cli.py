"""The `tsv_parser.py` command line (click)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__, derived, ingest, layout, report
from .formats import RowRules
from .influx import DiscardWriter, InfluxWriter
from .influx_targets import open_writer
from .settings import DEFAULT_ENV_FILE, ConfigError, load

log = logging.getLogger("powerview")

EXIT_CODES = """\b
Exit codes:
  0   every file ingested (moved to <device>/parsed/)
  1   at least one file rejected (moved to <device>/error/, reason in the report)
  2   usage or configuration error (nothing touched)
  75  InfluxDB unavailable (the affected files are left in place: run again later)
"""

PROGRESS_MIN_FILES = 10


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    ours = logging.getLogger("powerview")  # in case an embedding program gave it handlers of its own
    ours.handlers.clear()
    ours.propagate = True
    ours.setLevel(logging.NOTSET)
    for noisy in ("influxdb_client", "urllib3", "reactivex"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> None:
    click.echo(f"tsv_parser: error: {message}", err=True)
    sys.exit(2)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXIT_CODES)
@click.option("--dataFolder", "--data-folder", "data_folder", type=click.Path(path_type=Path),
              help="Root of the SFTP data: <dataFolder>/<company>/<campaign>/<device>/<file>.tsv "
                   "(env TSV_DATA_FOLDER).")
@click.option("--tsvFile", "--tsv-file", "tsv_files", multiple=True, type=click.Path(path_type=Path),
              help="Only this file (repeatable); it must lie at <company>/<campaign>/<device>/ depth "
                   "under the data folder. Default: every *.tsv found there.")
@click.option("--dry-run", is_flag=True,
              help="Read and check everything; write nothing to InfluxDB, move nothing, write no report "
                   "file; print the report as JSON on stdout. Needs no InfluxDB settings.")
@click.option("--report-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where the JSON run report goes (env TSV_REPORT_DIR; default <dataFolder>/../logs/reports).")
@click.option("--env-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"Settings file (default: {DEFAULT_ENV_FILE.name} next to tsv_parser.py); "
                   "the environment wins over it.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Log verbosity on stderr (env TSV_LOG_LEVEL, default INFO).")
@click.version_option(__version__, prog_name="tsv_parser.py")
def main(data_folder, tsv_files, dry_run, report_dir, env_file, log_level):
    """Ingest T302 logger files (MV_T302_V002, MV_T302_V003) into InfluxDB 2: one bucket per
    company, measurement `electrical`; each file then moves to parsed/ or error/ beside it."""
    if env_file is not None and not env_file.is_file():
        fail(f"--env-file {env_file}: no such file")
    try:
        settings = load(env_file)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging((log_level or settings.log_level).upper())

    data_folder = data_folder or settings.data_folder
    if data_folder is None:
        fail("missing option --dataFolder (or TSV_DATA_FOLDER)")
    if not data_folder.is_dir():
        fail(f"--dataFolder {data_folder}: not a directory")
    data_root = data_folder.resolve()

    already_done: list[layout.Location] = []
    try:
        if tsv_files:
            locations = []
            for path in tsv_files:
                loc = layout.locate(data_root, path)
                if loc.path.is_file():
                    locations.append(loc)
                elif layout.processed_copy(loc.path):
                    already_done.append(loc)  # another run took it meanwhile (two hooks)
                else:
                    raise layout.LayoutError(f"{loc.path}: no such file")
        else:
            locations = [layout.locate(data_root, path) for path in layout.discover(data_root)]
    except layout.LayoutError as exc:
        fail(f"{exc}; nothing was processed")

    if dry_run:
        writer = DiscardWriter()
    else:
        try:
            writer = open_writer(settings)  # INFLUXDB_VERSION 1, 2 or 3
        except ConfigError as exc:
            fail(str(exc))

    options = ingest.RunOptions(
        data_root=data_root,
        rules=RowRules.for_now(settings.min_valid_date, settings.v002_timezone),
        batch_lines=settings.influx_batch_lines,
        dry_run=dry_run,
    )
    started = report.utcnow()
    log.info("%s %d file(s) under %s", "checking (dry run)" if dry_run else "ingesting", len(locations), data_root)
    try:
        entries, config_error = ingest.run(locations, options, writer, progress=_progress(len(locations)))
        if not dry_run:  # derived buckets <company>_1h/_1d/_1w; never changes an entry's status
            derived.after_ingest(settings, writer, entries)
        entries += [ingest.skipped_entry(loc, f"already processed: {layout.processed_copy(loc.path)}")
                    for loc in already_done]
        result = report.build(started, report.utcnow(), dry_run, data_root, entries)
        if not dry_run and config_error is None and not result["nb_files_retry"]:
            # (after an outage the summary would only wait out another retry budget)
            _write_meta(writer, settings.meta_bucket, result)
    finally:
        writer.close()

    if config_error is not None:
        log.error("configuration error: %s", config_error)
    if dry_run:
        click.echo(report.to_json(result))
    else:
        target_dir = report_dir or settings.report_dir or (data_root.parent / "logs" / "reports")
        try:
            path = report.write(target_dir, result, started)
            log.info("report written to %s", path)
        except OSError as exc:
            log.error("cannot write the report in %s: %s", target_dir, exc)
    log.info("done%s: %d file(s), %d %s, %d rejected, %d to retry, %d skipped, %d points",
             " (dry run)" if dry_run else "", result["nb_files_total"], result["nb_files_success"],
             "valid" if dry_run else "ingested", result["nb_files_failed"], result["nb_files_retry"],
             result["nb_files_skipped"], result["nb_points_total"])
    sys.exit(report.exit_code(result, config_error is not None))


def _progress(total: int):
    if total < PROGRESS_MIN_FILES or not sys.stderr.isatty():
        return lambda items: items

    def wrap(items):
        with click.progressbar(items, label="files", file=sys.stderr) as bar:
            yield from bar

    return wrap


def _write_meta(writer: InfluxWriter, meta_bucket: str, result: dict) -> None:
    try:
        writer.write(meta_bucket, ingest.meta_lines(result, int(report.utcnow().timestamp())))
    except Exception as exc:  # the data is in; only the run summary is lost
        log.warning("run summary not written to the meta bucket %s: %s", meta_bucket, exc)
