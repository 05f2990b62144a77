"""The `tsv_parser.py` command line (click)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__
from .envfile import DEFAULT_ENV_FILE
from .exitcodes import PRECEDENCE, ExitCode

if TYPE_CHECKING:  # the modules below are imported where a run needs them: --help stays fast
    from .influx import Writer
    from .outcome import RunReport
    from .settings import ConfigError

log = logging.getLogger("powerview")

EXIT_CODES = (
    "\b\nExit codes (the most urgent wins when several apply):\n"
    + "\n".join(f"  {int(code):<3} {code.meaning}" for code in PRECEDENCE)
    + "\n"
)

PROGRESS_MIN_FILES = 10


class _TerminalHandler(logging.StreamHandler):
    """Log lines on stderr; while a progress bar is drawn there, each line first clears the
    bar's line (the bar redraws itself on its next step)."""

    bar_active = False

    def emit(self, record: logging.LogRecord) -> None:
        if _TerminalHandler.bar_active:
            self.stream.write("\r\x1b[K")
        super().emit(record)


def configure_logging(level: str) -> None:
    from . import logsafe

    handler = _TerminalHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    logsafe.protect(handler)  # a file name with a newline cannot forge a line
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    ours = logging.getLogger("powerview")  # in case an embedding program gave it handlers of its own
    ours.handlers.clear()
    ours.propagate = True
    ours.setLevel(logging.NOTSET)
    for noisy in ("influxdb_client", "urllib3", "reactivex"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> NoReturn:
    click.echo(f"tsv_parser: error: {message}", err=True)
    sys.exit(ExitCode.USAGE)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_CODES)
@click.option(
    "-d",
    "--dataFolder",
    "--data-folder",
    "data_folder",
    type=click.Path(path_type=Path),
    help="Root of the SFTP data: <dataFolder>/<company>/<campaign>/<device>/<file>.tsv (env TSV_DATA_FOLDER).",
)
@click.option(
    "-t",
    "--tsvFile",
    "--tsv-file",
    "tsv_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Only this file (repeatable); it must lie at <company>/<campaign>/<device>/ depth "
    "under the data folder. Default: every *.tsv found there.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check everything; write nothing to InfluxDB, move nothing, write no report "
    "file; print the report as JSON on stdout. Needs no InfluxDB settings.",
)
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the JSON run report goes (env TSV_REPORT_DIR; default <dataFolder>/../logs/reports).",
)
@click.option(
    "--report-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the JSON run report at exactly this path (replaced if it exists); "
    "the worker reads each file's outcome there.",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Settings file (default: {DEFAULT_ENV_FILE.name} next to tsv_parser.py); the environment wins over it.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log verbosity on stderr (env TSV_LOG_LEVEL, default INFO).",
)
@click.version_option(__version__, prog_name="tsv_parser.py")
def main(data_folder, tsv_files, dry_run, report_dir, report_file, env_file, log_level):
    """Ingest T302 logger files (MV_T302_V002, MV_T302_V003) into InfluxDB 2: one bucket per
    company, measurement `electrical`; each file then moves to parsed/ or error/ beside it."""
    from . import catalogue, derived, ingest, layout, layout_change, report
    from .formats import RowRules
    from .influx import DiscardWriter
    from .influx_targets import open_writer
    from .settings import ConfigError, load_parser

    if env_file is not None and not env_file.is_file():
        fail(f"--env-file {env_file}: no such file")
    try:
        settings = load_parser(env_file)
    except ConfigError as exc:
        fail(str(exc))
    configure_logging((log_level or settings.log_level).upper())

    data_folder = data_folder or settings.data_folder
    if data_folder is None:
        fail("missing option --dataFolder (or POWERVIEW_DATA_DIR)")
    if not data_folder.is_dir():
        fail(f"--dataFolder {data_folder}: not a directory")
    data_root = data_folder.resolve()

    already_done: list[tuple[layout.Location, str]] = []
    try:
        if tsv_files:
            locations = []
            for path in tsv_files:
                loc = layout.locate(data_root, path)
                if loc.path.is_file():
                    locations.append(loc)
                elif copy := layout.processed_copy(loc.path):
                    already_done.append((loc, f"already processed: {copy}"))  # another run took it meanwhile
                else:
                    already_done.append((loc, "no such file (removed, or taken by another process)"))
            if (
                not locations
                and len(already_done) == len(tsv_files)
                and all(reason.startswith("no such") for _, reason in already_done)
            ):
                raise layout.LayoutError(", ".join(f"{loc.path}: no such file" for loc, _ in already_done))
        else:
            locations = [layout.locate(data_root, path) for path in layout.discover(data_root)]
    except layout.LayoutError as exc:
        fail(f"{exc}; nothing was processed")

    if dry_run:
        writer = DiscardWriter()
    else:
        try:
            writer = open_writer(settings.influx, settings.meta_bucket)  # INFLUXDB_VERSION 1, 2 or 3
        except ConfigError as exc:
            fail(str(exc))

    # each file's follow-up work, recorded durably before it moves to parsed/ (a kill loses none)
    derived_recorder = derived.Recorder(settings)
    catalogue_recorder = catalogue.Recorder(env_file)
    layout_checker = layout_change.Checker(settings.influx)

    def before_move(entry) -> None:
        derived_recorder(entry)
        catalogue_recorder(entry)
        layout_checker(entry)

    options = ingest.RunOptions(
        data_root=data_root,
        rules=RowRules.for_now(settings.min_valid_date, settings.v002_timezone),
        batch_lines=settings.batch_lines,
        dry_run=dry_run,
        meta_bucket=settings.meta_bucket,
        before_move=before_move,
    )
    started = report.utcnow()
    log.info("%s %d file(s) under %s", "checking (dry run)" if dry_run else "ingesting", len(locations), data_root)
    outcomes: list = []
    crashed = False
    try:
        outcomes, config_error = ingest.run(locations, options, writer, progress=_progress(len(locations)))
        layout_checker.close()
        _count_back(settings, outcomes, dry_run, config_error)  # never changes an outcome
        if not dry_run and config_error is None:  # derived buckets <company>_1h/_1d/_1w; never changes an outcome
            derived.after_ingest(settings, writer, outcomes, recorder=derived_recorder)
        outcomes += [ingest.skipped_outcome(loc, reason) for loc, reason in already_done]
    except Exception:  # noqa: BLE001 - report what was done, exit 70
        log.exception("internal error: the run stopped")
        crashed, config_error = True, None
    catalogue.publish_entries(outcomes, env_file=env_file, dry_run=dry_run, recorder=catalogue_recorder)  # never raises
    result = report.build(started, report.utcnow(), dry_run, data_root, outcomes)
    try:
        if not dry_run and not crashed and config_error is None and not result["nb_files_retry"]:
            # (after an outage the summary would only wait out another retry budget)
            _write_meta(writer, settings.meta_bucket, result)
    finally:
        writer.close()

    if config_error is not None:
        log.error("configuration error: %s", config_error)
    extra = [ExitCode.SOFTWARE] if crashed else []
    if dry_run and report_file is None:
        click.echo(report.to_json(result))
    if not dry_run and not _write_report(
        result, started, None, report_dir or settings.report_dir or (data_root.parent / "logs" / "reports")
    ):
        extra.append(ExitCode.CANTCREAT)
    if report_file is not None and not _write_report(result, started, report_file, report_file.parent):
        extra.append(ExitCode.CANTCREAT)
    code = report.exit_code(outcomes, *extra)
    log.info(
        "done%s: %d file(s), %d %s, %d rejected, %d to retry, %d skipped, %d points; exit %d (%s)",
        " (dry run)" if dry_run else "",
        result["nb_files_total"],
        result["nb_files_success"],
        "valid" if dry_run else "ingested",
        result["nb_files_failed"],
        result["nb_files_retry"],
        result["nb_files_skipped"],
        result["nb_points_total"],
        code,
        code.meaning,
    )
    sys.exit(code)


def _write_report(result: RunReport, started, report_file: Path | None, report_dir: Path) -> bool:
    from . import report

    try:
        path = report.write_file(report_file, result) if report_file else report.write(report_dir, result, started)
    except OSError as exc:
        log.error("cannot write the report %s: %s", report_file or f"in {report_dir}", exc)
        return False
    log.info("report written to %s", path)
    return True


def _progress(total: int):
    if total < PROGRESS_MIN_FILES or not sys.stderr.isatty():
        return lambda items: items

    def wrap(items):
        with click.progressbar(items, label="files", file=sys.stderr) as bar:
            _TerminalHandler.bar_active = True
            try:
                yield from bar
            finally:
                _TerminalHandler.bar_active = False

    return wrap


def _count_back(settings, outcomes: list, dry_run: bool, config_error: ConfigError | None) -> None:
    """Count each written file's points back from InfluxDB (the deployed parser's check); a dry run
    or a run stopped by a configuration error fills the expected figures and leaves the count null."""
    from . import countback
    from .influx_targets import open_query_client
    from .settings import ConfigError

    if dry_run or config_error is not None:
        countback.prepare(outcomes)
        return
    try:
        client = open_query_client(settings.influx)
    except ConfigError as exc:
        for out in countback.prepare(outcomes):
            out.warnings.append(f"points written but not counted back from InfluxDB: {exc}")
        return
    client.budget_s = min(client.budget_s, countback.COUNT_BUDGET_S)
    try:
        countback.count_back(outcomes, client)
    except Exception as exc:  # noqa: BLE001 - the points are written: the count is only a check
        log.exception("counting points back from InfluxDB failed: %s", exc)
    finally:
        client.close()


def _write_meta(writer: Writer, meta_bucket: str, result: RunReport) -> None:
    from . import ingest, report

    try:
        writer.write(meta_bucket, ingest.meta_lines(result, int(report.utcnow().timestamp())))
    except Exception as exc:  # the data is in; only the run summary is lost
        log.warning("run summary not written to the meta bucket %s: %s", meta_bucket, exc)


if __name__ == "__main__":  # python -m powerview.cli (how the worker runs the parser)
    main()
