"""The `tsv_parser.py` command line (click): choose the files, ingest them, finish the run
(report, run summary, exit code)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from powerview import __version__
from powerview.cli import common as commandline
from powerview.core.exitcodes import PRECEDENCE, ExitCode

if TYPE_CHECKING:  # the modules below are imported where a run needs them: --help stays fast
    from powerview.core.outcome import RunReport
    from powerview.core.settings import ConfigError, ParserSettings
    from powerview.core.sink import Writer
    from powerview.delivery.catalogue import Recorder as CatalogueRecorder
    from powerview.ingestion.layout import Location

log = logging.getLogger("powerview")
PROG = "tsv_parser"

EXIT_CODES = commandline.epilog(PRECEDENCE, "Exit codes (the most urgent wins when several apply)")

PROGRESS_MIN_FILES = 10


def fail(message: str) -> NoReturn:
    commandline.fail(PROG, ExitCode.USAGE, message)


@click.command(context_settings=commandline.CONTEXT_SETTINGS, epilog=EXIT_CODES)
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
@commandline.env_file_option
@commandline.log_level_option
@click.version_option(__version__, prog_name="tsv_parser.py")
def main(data_folder, tsv_files, dry_run, report_dir, report_file, env_file, log_level):
    """Ingest T302 logger files (MV_T302_V002, MV_T302_V003) into InfluxDB 2: one bucket per
    company, measurement `electrical`; each file then moves to parsed/ or error/ beside it."""
    settings, recorder = _load(env_file, log_level)
    data_root = _data_root(data_folder or settings.data_folder)
    locations, already_done = choose_files(data_root, tsv_files)
    run = ParserRun(settings, data_root, dry_run, _writer(settings, dry_run), recorder)
    run.ingest(locations, already_done)
    sys.exit(run.finish(report_dir, report_file))


def _load(env_file: Path | None, log_level: str | None) -> tuple[ParserSettings, CatalogueRecorder]:
    """The run's settings, read once (the catalogue's from the same read), then the logging."""
    from powerview.core.settings import ConfigError, load_env, load_parser
    from powerview.delivery.catalogue import Recorder

    commandline.check_env_file(PROG, env_file)
    try:
        env = load_env(env_file)
        settings = load_parser(env)
    except ConfigError as exc:
        fail(str(exc))
    commandline.configure_logging(None, log_level or settings.log_level)
    return settings, Recorder.load(env)  # a wrong catalogue setting is logged, never stops the run


def _data_root(data_folder: Path | None) -> Path:
    if data_folder is None:
        fail("missing option --dataFolder (or POWERVIEW_DATA_DIR)")
    if not data_folder.is_dir():
        fail(f"--dataFolder {data_folder}: not a directory")
    return data_folder.resolve()


def choose_files(data_root: Path, tsv_files: tuple[Path, ...]) -> tuple[list[Location], list[tuple[Location, str]]]:
    """(the files to ingest, the files given with --tsvFile that are gone and why). Every *.tsv
    under `data_root` without --tsvFile. A layout fault, or only missing files, stops the run."""
    from powerview.ingestion import layout

    already_done: list[tuple[layout.Location, str]] = []
    try:
        if not tsv_files:
            return [layout.locate(data_root, path) for path in layout.discover(data_root)], already_done
        locations = []
        for path in tsv_files:
            loc = layout.locate(data_root, path)
            if loc.path.is_file():
                locations.append(loc)
            elif copy := layout.processed_copy(loc.path):
                already_done.append((loc, f"already processed: {copy}"))  # another run took it meanwhile
            else:
                already_done.append((loc, "no such file (removed, or taken by another process)"))
        if not locations and all(reason.startswith("no such") for _, reason in already_done):
            raise layout.LayoutError(", ".join(f"{loc.path}: no such file" for loc, _ in already_done))
    except layout.LayoutError as exc:
        fail(f"{exc}; nothing was processed")
    return locations, already_done


def _writer(settings: ParserSettings, dry_run: bool) -> Writer:
    from powerview.core.settings import ConfigError
    from powerview.delivery.influx import DiscardWriter
    from powerview.delivery.influx_targets import open_writer

    if dry_run:
        return DiscardWriter()
    try:
        return open_writer(settings.influx, settings.meta_bucket)  # INFLUXDB_VERSION 1, 2 or 3
    except ConfigError as exc:
        fail(str(exc))


@dataclass
class ParserRun:
    """One run of the parser over the chosen files: ingest(), then finish()."""

    settings: ParserSettings
    data_root: Path
    dry_run: bool
    writer: Writer
    catalogue_recorder: CatalogueRecorder

    def __post_init__(self) -> None:
        from powerview.ingestion import report

        self.started = report.utcnow()
        self.outcomes: list = []
        self.config_error: ConfigError | None = None
        self.crashed = False

    def ingest(self, locations: list[Location], already_done: list[tuple[Location, str]]) -> None:
        """Ingest the files; then the follow-up work (count back, derived buckets, catalogue).
        Never raises: an internal error is logged and makes the run exit 70."""
        from powerview.delivery import catalogue, derived, layout_change
        from powerview.ingestion import ingest
        from powerview.ingestion.formats import RowRules

        settings, dry_run = self.settings, self.dry_run
        # each file's follow-up work, recorded durably before it moves to parsed/ (a kill loses none)
        derived_recorder = derived.Recorder(settings)
        layout_checker = layout_change.Checker(settings.influx)

        def before_move(entry) -> None:
            derived_recorder(entry)
            self.catalogue_recorder(entry)
            layout_checker(entry)

        options = ingest.RunOptions(
            data_root=self.data_root,
            rules=RowRules.for_now(settings.min_valid_date, settings.v002_timezone),
            batch_lines=settings.batch_lines,
            dry_run=dry_run,
            meta_bucket=settings.meta_bucket,
            before_move=before_move,
        )
        log.info(
            "%s %d file(s) under %s", "checking (dry run)" if dry_run else "ingesting", len(locations), self.data_root
        )
        try:
            self.outcomes, self.config_error = ingest.run(
                locations, options, self.writer, progress=_progress(len(locations))
            )
            layout_checker.close()
            _count_back(settings, self.outcomes, dry_run, self.config_error)  # never changes an outcome
            if not dry_run and self.config_error is None:  # derived buckets <company>_1h/_1d/_1w; idem
                derived.after_ingest(settings, self.writer, self.outcomes, recorder=derived_recorder)
            self.outcomes += [ingest.skipped_outcome(loc, reason) for loc, reason in already_done]
        except Exception:  # noqa: BLE001 - report what was done, exit 70
            log.exception("internal error: the run stopped")
            self.crashed, self.config_error = True, None
        # never raises
        catalogue.publish_entries(self.outcomes, self.catalogue_recorder, dry_run=dry_run)

    def finish(self, report_dir: Path | None, report_file: Path | None) -> ExitCode:
        """The run summary into the meta bucket, the report(s), the closing log line: the exit code."""
        from powerview.ingestion import report

        settings, dry_run = self.settings, self.dry_run
        result = report.build(self.started, report.utcnow(), dry_run, self.data_root, self.outcomes)
        try:
            if not dry_run and not self.crashed and self.config_error is None and not result["nb_files_retry"]:
                # (after an outage the summary would only wait out another retry budget)
                _write_meta(self.writer, settings.meta_bucket, result)
        finally:
            self.writer.close()

        if self.config_error is not None:
            log.error("configuration error: %s", self.config_error)
        extra = [ExitCode.SOFTWARE] if self.crashed else []
        if dry_run and report_file is None:
            click.echo(report.to_json(result))
        default_dir = settings.report_dir or (self.data_root.parent / "logs" / "reports")
        if not dry_run and not _write_report(result, self.started, None, report_dir or default_dir):
            extra.append(ExitCode.CANTCREAT)
        if report_file is not None and not _write_report(result, self.started, report_file, report_file.parent):
            extra.append(ExitCode.CANTCREAT)
        code = report.exit_code(self.outcomes, *extra)
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
        return code


def _write_report(result: RunReport, started, report_file: Path | None, report_dir: Path) -> bool:
    from powerview.ingestion import report

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
            commandline.StderrHandler.bar_active = True
            try:
                yield from bar
            finally:
                commandline.StderrHandler.bar_active = False

    return wrap


def _count_back(settings, outcomes: list, dry_run: bool, config_error: ConfigError | None) -> None:
    """Count each written file's points back from InfluxDB (the deployed parser's check); a dry run
    or a run stopped by a configuration error fills the expected figures and leaves the count null."""
    from powerview.core.settings import ConfigError
    from powerview.delivery import countback
    from powerview.delivery.influx_targets import open_query_client

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
    from powerview.ingestion import ingest, report

    try:
        writer.write(meta_bucket, ingest.meta_lines(result, int(report.utcnow().timestamp())))
    except Exception as exc:  # the data is in; only the run summary is lost
        log.warning("run summary not written to the meta bucket %s: %s", meta_bucket, exc)


if __name__ == "__main__":  # python -m powerview.cli.parse (how the worker runs the parser)
    main()
