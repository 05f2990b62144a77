"""Issue 7: no run stopped by one file, no file moved unread, one meaning per exit code.

Each fault goes through the real command line (tsv_parser.py, in process with CliRunner, or as
a separate unprivileged process for permission faults) against the InfluxDB 2 stand-in, and
asserts the exact outcome: where each file is, what the report says, what was written, the exit
code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from powerview.cli.parse import main
from powerview.ingestion import lineprotocol

import faults
import samples

CLEAN_ENV = {k: None for k in os.environ if k.startswith(("INFLUXDB_", "TSV_", "POWERVIEW_"))}
ROWS = [samples.row(f"02/03/26 10:0{i}:00", 230.0 + i, 231.0, 232.0, 10.0 * i, 0, 1) for i in range(5)]
GOOD = samples.v002(["0201"] * 7, samples.TRI_LABELS, ROWS)
GOOD_V2 = samples.v002(["0201"] * 7, samples.TRI_LABELS, [r.replace("\t0\t", "\t7\t") for r in ROWS])
POINTS_PER_FILE = 5 * 6


def run_cli(*args, env_file: Path, env=None):
    return CliRunner().invoke(main, [*map(str, args), "--env-file", str(env_file)], env={**CLEAN_ENV, **(env or {})})


def report_of(tmp_path: Path) -> dict:
    reports = sorted((tmp_path / "reports").glob("tsv_parser_*.json"))
    assert reports, "no report written"
    return json.loads(reports[-1].read_text())


def by_name(report: dict) -> dict[str, dict]:
    return {Path(f["file"]).name: f for f in report["files"]}


def device(root: Path, company: str = "acme", campaign: str = "c1", sn: str = "0201") -> Path:
    return root / company / campaign / sn


# -- a file replaced or removed while it is ingested ----------------------------------------------


def test_a_file_replaced_during_ingestion_is_not_moved_unread(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "T302_x.tsv", GOOD)
    replaced = []

    def replace_once(bucket: str) -> None:
        if bucket == "acme" and not replaced:  # SFTP atomic upload: temporary name, then rename over
            tmp = target.with_name(".T302_x.tsv.part")
            tmp.write_text(GOOD_V2)
            os.rename(tmp, target)
            replaced.append(True)

    influx2.on_write = replace_once
    first = run_cli("--dataFolder", root, env_file=influx_env)
    influx2.on_write = None
    assert first.exit_code == 0, first.output
    entry = by_name(report_of(tmp_path))["T302_x.tsv"]
    assert entry["status"] == "success" and entry["nb_points"] == POINTS_PER_FILE
    # what moved is what was read; the new upload is still waiting at its path
    assert (target.parent / "parsed" / "T302_x.tsv").read_text() == GOOD
    assert target.read_text() == GOOD_V2
    assert entry["destination"] == str(target.parent / "parsed" / "T302_x.tsv")

    second = run_cli("--dataFolder", root, env_file=influx_env)
    assert second.exit_code == 0, second.output
    assert (target.parent / "parsed" / "T302_x.1.tsv").read_text() == GOOD_V2
    assert not target.exists()
    values = {p.fields["M0201_Ch2_W"] for p in influx2.points("acme") if "M0201_Ch2_W" in p.fields}
    assert values == {0.0, 7.0}  # both versions' points were written


def test_a_file_removed_during_ingestion_still_lands_in_parsed(influx2, influx_env, tmp_path):
    """What was read and written is kept: its bytes go to parsed/ from the open descriptor."""
    root = tmp_path / "data"
    doomed = samples.place(root, "acme", "c1", "0201", "a_doomed.tsv", GOOD)
    other = samples.place(root, "acme", "c1", "0201", "b_other.tsv", GOOD_V2)
    influx2.on_write = lambda bucket: doomed.unlink(missing_ok=True)
    result = run_cli("--dataFolder", root, env_file=influx_env)
    influx2.on_write = None
    assert result.exit_code == 0, result.output
    files = by_name(report_of(tmp_path))
    assert files["a_doomed.tsv"]["status"] == "success" and files["a_doomed.tsv"]["nb_points"] == POINTS_PER_FILE
    assert (doomed.parent / "parsed" / "a_doomed.tsv").read_text() == GOOD and not doomed.exists()
    assert files["b_other.tsv"]["status"] == "success"
    assert (other.parent / "parsed" / "b_other.tsv").exists()
    assert "Traceback" not in result.output


# -- folders that are not what they should be -----------------------------------------------------


@pytest.mark.parametrize("folder", ["parsed", "error"])
def test_a_symlinked_processed_folder_never_takes_a_file_out_of_the_tree(influx2, influx_env, tmp_path, folder):
    root = tmp_path / "data"
    content = GOOD if folder == "parsed" else "garbage\nnot a device file\n"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", content)
    outside = tmp_path / "outside"
    outside.mkdir()
    (target.parent / folder).symlink_to(outside, target_is_directory=True)
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 73, result.output
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["status"] == "error" and entry["fault"] == "environment"
    assert "symlink" in entry["error"] and entry["destination"] is None
    assert target.exists() and not any(outside.iterdir())


# -- InfluxDB refusing data, or not being an InfluxDB ----------------------------------------------


def test_data_influxdb_rejects_goes_to_error_with_influxdbs_message(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    influx2.fail_next_writes(
        422, count=1, body={"code": "unprocessable entity", "message": "partial write: field type conflict"}
    )
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 1, result.output
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["status"] == "error" and entry["fault"] == "file"
    assert "field type conflict" in entry["error"] and "HTTP 422" in entry["error"]
    assert entry["destination"] == str(target.parent / "error" / "f.tsv") and not target.exists()


def test_http_413_splits_the_batch_and_everything_is_written(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    influx2.max_batch_bytes = 1500  # a few lines per request
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 0, result.output
    assert len(influx2.points("acme")) == POINTS_PER_FILE
    writes = [r for r in influx2.requests if r.path == "/api/v2/write" and r.query.get("bucket") == "acme"]
    assert max(len(r.body) for r in writes if r.status == 204) <= 1500
    assert (target.parent / "parsed" / "f.tsv").exists()


def test_a_single_line_larger_than_the_server_accepts_is_a_fault_of_the_file(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    influx2.max_batch_bytes = 50  # smaller than any single line
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 1, result.output
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["fault"] == "file" and "single line" in entry["error"]
    assert (target.parent / "error" / "f.tsv").exists()


def test_a_web_server_that_is_not_influxdb_is_a_configuration_error(tmp_path):
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    env_file = tmp_path / "html.env"
    with faults.html_server() as url:
        env_file.write_text(
            f"INFLUXDB_HOST={url}\nINFLUXDB_ORG=o\nINFLUXDB_ADMIN_TOKEN=t\n"
            f"TSV_REPORT_DIR={tmp_path / 'reports'}\nTSV_INFLUX_RETRY_MAX_SECONDS=1\n"
        )
        result = run_cli("--dataFolder", root, env_file=env_file)
    assert result.exit_code == 2, result.output
    assert (
        "does not look like an InfluxDB" in result.output and "GET /ping answered HTTP 200 (text/html)" in result.output
    )
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["fault"] == "configuration" and entry["status"] == "error"
    assert target.exists() and not (target.parent / "error").exists() and not (target.parent / "parsed").exists()
    assert "Traceback" not in result.output


def test_a_server_without_the_buckets_api_is_a_configuration_error(victoria_metrics, tmp_path):
    """The real VictoriaMetrics answers 400 to GET /api/v2/buckets: not a fault of the file."""
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    env_file = tmp_path / "vm.env"
    env_file.write_text(
        f"INFLUXDB_HOST={victoria_metrics.url}\nINFLUXDB_ORG=o\nINFLUXDB_ADMIN_TOKEN=t\n"
        f"TSV_REPORT_DIR={tmp_path / 'reports'}\nTSV_INFLUX_RETRY_MAX_SECONDS=1\n"
        "TSV_INFLUX_CREATE_BUCKETS=true\n"
    )
    result = run_cli("--dataFolder", root, env_file=env_file)
    assert result.exit_code == 2, result.output
    assert "GET /api/v2/buckets" in result.output and "TSV_INFLUX_CREATE_BUCKETS=false" in result.output
    assert target.exists() and not (target.parent / "error").exists()


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("company", ["powerview_meta", "acme_1h", "acme_1d", "acme_1w"])
def test_a_company_folder_named_like_a_reserved_bucket_is_refused(influx2, influx_env, tmp_path, company):
    root = tmp_path / "data"
    target = samples.place(root, company, "c1", "0201", "f.tsv", GOOD)
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 1, result.output
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["fault"] == "file" and "not allowed" in entry["error"]
    assert (target.parent / "error" / "f.tsv").exists()
    assert not [p for b in influx2.buckets for p in influx2.points(b) if p.measurement == "electrical"]


def test_a_file_name_with_a_newline_is_refused_and_the_meta_summary_still_written(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    bad = samples.place(root, "acme", "c1", "0201", "evil\nname.tsv", GOOD)
    good = samples.place(root, "acme", "c1", "0201", "good.tsv", GOOD_V2)
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 1, result.output
    files = by_name(report_of(tmp_path))
    assert files["evil\nname.tsv"]["fault"] == "file" and "control character" in files["evil\nname.tsv"]["error"]
    assert (bad.parent / "error" / bad.name).exists()
    assert files["good.tsv"]["status"] == "success" and (good.parent / "parsed" / "good.tsv").exists()
    meta = influx2.points("powerview_meta")
    assert sorted(p.tags["file_name"] for p in meta if p.measurement == "tsv_parser_file") == [
        "evil?name.tsv",
        "good.tsv",
    ]


# -- a bug -----------------------------------------------------------------------------------------


def test_a_bug_is_exit_70_with_the_report_and_the_other_files_done(influx2, influx_env, tmp_path, monkeypatch):
    root = tmp_path / "data"
    first = samples.place(root, "acme", "c1", "0201", "a.tsv", GOOD)
    second = samples.place(root, "acme", "c1", "0201", "b.tsv", GOOD_V2)
    real = lineprotocol.batches
    calls = []

    def buggy(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("simulated bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(lineprotocol, "batches", buggy)
    result = run_cli("--dataFolder", root, env_file=influx_env)
    assert result.exit_code == 70, result.output
    files = by_name(report_of(tmp_path))
    assert files["a.tsv"]["fault"] == "bug" and "KeyError" in files["a.tsv"]["error"]
    assert first.exists()  # left in place
    assert files["b.tsv"]["status"] == "success" and (second.parent / "parsed" / "b.tsv").exists()


# -- permissions, as an unprivileged process -------------------------------------------------------


@pytest.fixture
def shared_root():
    root = faults.shared_dir()
    yield root
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def parser_env(influx2, reports: Path) -> dict[str, str]:
    return {
        "INFLUXDB_HOST": influx2.url,
        "INFLUXDB_ORG": "powerview",
        "INFLUXDB_ADMIN_TOKEN": influx2.admin_token,
        "TSV_REPORT_DIR": str(reports),
        "TSV_INFLUX_RETRY_MAX_SECONDS": "2",
    }


def test_permission_faults_leave_files_in_place_and_every_other_file_is_ingested(influx2, shared_root):
    data = shared_root / "data"
    reports = shared_root / "reports"
    unreadable = samples.place(data, "acme", "c1", "0201", "unreadable.tsv", GOOD)
    locked_in = samples.place(data, "acme", "c1", "0202", "locked_in.tsv", GOOD.replace("0201", "0202"))
    fine = samples.place(data, "acme", "c1", "0203", "fine.tsv", GOOD.replace("0201", "0203"))
    poison = samples.place(data, "acme", "c1", "0203", "poison.tsv", "no\theader\n")
    reports.mkdir()
    faults.hand_over(shared_root)
    faults.deny_read(unreadable)
    faults.deny_write(locked_in.parent)  # ingested, but cannot be moved out of its folder

    result = faults.run_parser(["--dataFolder", str(data)], parser_env(influx2, reports))
    assert result.returncode == 73, result.stderr
    assert "Traceback" not in result.stderr
    files = by_name(report_of(shared_root))
    assert files["unreadable.tsv"]["fault"] == "environment" and "Permission denied" in files["unreadable.tsv"]["error"]
    assert files["locked_in.tsv"]["fault"] == "environment" and "could not be moved" in files["locked_in.tsv"]["error"]
    assert files["locked_in.tsv"]["nb_points"] == POINTS_PER_FILE
    assert unreadable.exists() and locked_in.exists()
    assert files["fine.tsv"]["status"] == "success" and (fine.parent / "parsed" / "fine.tsv").exists()
    assert files["poison.tsv"]["fault"] == "file" and (poison.parent / "error" / "poison.tsv").exists()
    assert report_of(shared_root)["exit_code"] == 73


def test_an_unwritable_report_folder_is_exit_73_after_the_files_are_done(influx2, shared_root):
    data = shared_root / "data"
    reports = shared_root / "reports"
    target = samples.place(data, "acme", "c1", "0201", "f.tsv", GOOD)
    reports.mkdir()
    faults.hand_over(shared_root)
    faults.deny_write(reports)
    result = faults.run_parser(["--dataFolder", str(data)], parser_env(influx2, reports))
    assert result.returncode == 73, result.stderr
    assert "cannot write the report" in result.stderr
    assert (target.parent / "parsed" / "f.tsv").exists()
    assert not list(reports.iterdir())


def test_report_file_is_written_where_asked(influx2, influx_env, tmp_path):
    root = tmp_path / "data"
    samples.place(root, "acme", "c1", "0201", "f.tsv", GOOD)
    wanted = tmp_path / "elsewhere" / "run.json"
    result = run_cli("--dataFolder", root, "--report-file", wanted, env_file=influx_env)
    assert result.exit_code == 0, result.output
    report = json.loads(wanted.read_text())
    assert report["files"][0]["status"] == "success" and report["exit_code"] == 0
    assert report_of(tmp_path)["files"] == report["files"]  # the operators' copy as usual


@pytest.mark.parametrize("where", ["first row", "middle", "last line"])
def test_a_line_over_the_limit_is_refused_before_anything_is_written(influx2, influx_env, tmp_path, where):
    """Found by the fingerprint pass: no batch of such a file reaches InfluxDB."""
    from powerview.ingestion.formats.lines import MAX_LINE_CHARS

    rows = [samples.row(f"02/03/26 10:{i // 60:02d}:{i % 60:02d}", 230.0, 231.0, 232.0, 1, 2, 3) for i in range(3000)]
    long_row = samples.row("02/03/26 11:00:00", "1" * (MAX_LINE_CHARS + 10), 1, 1, 1, 1, 1)
    at = {"first row": 0, "middle": 1500, "last line": 3000}[where]
    rows.insert(at, long_row)
    root = tmp_path / "data"
    target = samples.place(root, "acme", "c1", "0201", "f.tsv", samples.v002(["0201"] * 7, samples.TRI_LABELS, rows))
    result = run_cli("--dataFolder", root, env={"TSV_BATCH_SIZE": "100"}, env_file=influx_env)
    assert result.exit_code == 1, result.output
    entry = by_name(report_of(tmp_path))["f.tsv"]
    assert entry["fault"] == "file" and f"line {at + 3}: line longer than" in entry["error"]
    assert "acme" not in influx2.buckets or not influx2.points("acme")
    assert (target.parent / "error" / "f.tsv").exists()


def test_one_run_over_good_files_and_every_poison_places_each_and_exits_73(influx2, shared_root):
    """Issue 7's acceptance: good files and every poison case in one run, as an unprivileged
    process: every good file ingested, each poison placed as specified, the report written, the
    documented exit code (73: an environment fault outranks the files' own faults), no traceback."""
    data, reports = shared_root / "data", shared_root / "reports"
    local = {"DataTimeSettings": "Local", "TimeZoneName": "Europe/Paris", "MasterType": "Tri"}

    def v3(header, rows, **kw):
        return samples.v003(["0201"] * 7, samples.TRI_LABELS, rows, header=header, **kw)

    row = samples.row
    fall_back = [
        row(f"25/10/26 {h}:{m:02d}:00", 230, 231, 232, 1, 2, 3)
        for h, m in [("01", 59), ("02", 0), ("02", 30), ("02", 59), ("02", 0), ("02", 30), ("02", 59), ("03", 0)]
    ]
    files = {
        ("acme", "good.tsv"): GOOD,
        ("acme", "huge_values.tsv"): samples.v002(
            ["0201"] * 7,
            samples.TRI_LABELS,
            [row("02/03/26 10:00:00", 1e308, 1e308, 1, 1, 1, 1), row("02/03/26 10:01:00", 1e308, 1e308, 1, 1, 1, 1)],
        ),
        ("acme", "dst_autumn.tsv"): v3(local, fall_back),
        ("acme", "after_end.tsv"): v3(None, ROWS[:2], end_data=False) + "END_DATA \n" + ROWS[2] + "\n",
        ("acme", "zone_is_a_folder.tsv"): v3({**local, "TimeZoneName": "Europe"}, ROWS),
        ("acme", "zone_too_long.tsv"): v3({**local, "TimeZoneName": "Z" * 300}, ROWS),
        ("acme", "brackets.tsv"): v3("[" * 200_000, ROWS),
        ("acme", "nan_header.tsv"): v3('{"DataTimeSettings": "UTC", "Gain": NaN}', ROWS),
        ("acme", "unicode_digits.tsv"): samples.v002(
            ["0201"] * 7, samples.TRI_LABELS, [row("02/03/26 10:00:00", "٣", "１２", 1, 1, 1, 1)]
        ),
        ("acme", "evil\nname.tsv"): GOOD,
        ("powerview_meta", "meta.tsv"): GOOD,
        ("acme", "unreadable.tsv"): GOOD,
    }
    paths = {}
    for (company, name), content in files.items():
        device = "0202" if name == "unreadable.tsv" else "0201"
        paths[name] = samples.place(data, company, "c1", device, name, content)
    symlinked = samples.place(data, "acme", "c1", "0203", "symlinked.tsv", GOOD.replace("0201", "0203"))
    (symlinked.parent / "parsed").symlink_to(shared_root, target_is_directory=True)
    reports.mkdir()
    faults.hand_over(shared_root)
    faults.deny_read(paths["unreadable.tsv"])

    result = faults.run_parser(["--dataFolder", str(data)], parser_env(influx2, reports))
    assert result.returncode == 73, result.stderr
    assert "Traceback" not in result.stderr
    report = report_of(shared_root)  # strict JSON: no NaN, no Infinity
    got = by_name(report)

    def where(name: str) -> str:
        path = paths.get(name, symlinked)
        for folder in ("parsed", "error"):
            if (path.parent / folder / name).exists() and not (path.parent / folder).is_symlink():
                return folder
        return "in place" if path.exists() else "gone"

    expected = {
        "good.tsv": "parsed",
        "huge_values.tsv": "parsed",
        "dst_autumn.tsv": "parsed",
        "after_end.tsv": "parsed",
        "unicode_digits.tsv": "parsed",
        "zone_is_a_folder.tsv": "error",
        "zone_too_long.tsv": "error",
        "brackets.tsv": "error",
        "nan_header.tsv": "error",
        "evil\nname.tsv": "error",
        "meta.tsv": "error",
        "unreadable.tsv": "in place",
        "symlinked.tsv": "in place",
    }
    assert {name: where(name) for name in expected} == expected
    assert {name: got[name]["fault"] for name in expected if expected[name] != "parsed"} == {
        name: "file" if place == "error" else "environment" for name, place in expected.items() if place != "parsed"
    }
    assert got["huge_values.tsv"]["channels"]["M0201_U1"]["mean"] is None  # the sum overflowed: no mean
    assert got["after_end.tsv"]["nb_rows_after_end"] == 1
    assert got["unicode_digits.tsv"]["nb_invalid_values"] == 2
    assert report["nb_files_total"] == len(expected) and report["exit_code"] == 73
    # the autumn hour: eight rows, eight distinct instants, in file order
    stamps = sorted(
        {
            p.time
            for p in influx2.points("acme")
            if "M0201_U1_V" in p.fields and p.fields["M0201_U1_V"] == 230.0 and p.tags.get("campaign") == "c1"
        }
    )
    fall = [t for t in stamps if 1792882740 * 10**9 <= t <= 1792893600 * 10**9]
    assert len(fall) == 8 and fall == sorted(fall)
