"""Every program's command line, by one toolkit (powerview.cli.common), and one settings reader
(powerview.core.settings.Env): -h, the exit codes of the help generated from ExitCode, no internal
class name in a help text, POWERVIEW_ENV_FILE honoured everywhere, the project folder found
without an editable install, the parser's settings read once."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from powerview.cli import acceptance, relocate, tenancy, worker
from powerview.cli import catalogue as catalogue_cli
from powerview.cli import common as commandline
from powerview.cli import downsample as downsample_cli
from powerview.cli import parse as cli
from powerview.cli import tokens as tokens_cli
from powerview.core import envfile
from powerview.core.exitcodes import ExitCode
from powerview.core.settings import ConfigError
from powerview.onboarding.grafana import settings as grafana_settings

from samples import PROJECT_DIR, TRI_LABELS, place, row, v002

CLICK_PROGRAMS = {
    "tsv_parser": cli.main,
    "powerview-worker": worker.cli,
    "manage_influx_tokens": tokens_cli.main,
    "powerview-catalogue": catalogue_cli.main,
    "powerview-downsample": downsample_cli.main,
    "powerview-grafana-tenancy": tenancy.main,
    "powerview-acceptance": acceptance.main,
    "powerview-relocate": relocate.main,
}
# a CamelCase word such as WorkerSettings or ParserRun: an internal name, not the operator's
INTERNAL_NAME = re.compile(r"\b(?!PowerView\b)[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")


def _clean_env(**more: str | None) -> dict[str, str | None]:
    """Nothing of the developer's environment: no settings, no POWERVIEW_ENV_FILE."""
    clean: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("INFLUXDB_", "TSV_", "POWERVIEW_", "GRAFANA_", "CONFIG_API_"))
    }
    return {**clean, **more}


def _exit_code_lines(text: str) -> list[int]:
    section = text.split("Exit codes", 1)[1]
    return [int(code) for code in re.findall(r"^\s+(\d+)\s{2,}\S", section, re.M)]


@pytest.mark.parametrize("name", sorted(CLICK_PROGRAMS))
def test_every_click_program_takes_h_and_lists_its_exit_codes(name):
    program = CLICK_PROGRAMS[name]
    short = CliRunner().invoke(program, ["-h"], env=_clean_env())
    assert short.exit_code == 0, short.output
    assert short.output == CliRunner().invoke(program, ["--help"], env=_clean_env()).output
    codes = _exit_code_lines(short.output)
    assert 0 in codes and all(code in set(ExitCode) for code in codes), short.output
    assert "--env-file" in short.output and "POWERVIEW_ENV_FILE" in short.output
    assert not INTERNAL_NAME.findall(short.output), INTERNAL_NAME.findall(short.output)


def test_the_worker_subcommands_take_h_too():
    for sub in ("run", "start", "list", "retry", "purge", "scan"):
        result = CliRunner().invoke(worker.cli, [sub, "-h"], env=_clean_env())
        assert result.exit_code == 0 and "Usage:" in result.output, (sub, result.output)
    assert "WorkerSettings" not in CliRunner().invoke(worker.cli, ["-h"]).output


@pytest.mark.parametrize("argv", [["-h"], ["import", "-h"]])
def test_the_config_api_takes_h_and_lists_its_exit_codes(argv, capsys):
    from powerview_config_api.__main__ import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    out = capsys.readouterr().out
    codes = _exit_code_lines(out)
    assert codes[0] == 0 and ExitCode.USAGE in codes and all(code in set(ExitCode) for code in codes)
    assert not INTERNAL_NAME.findall(out)


def test_the_parser_epilog_follows_the_precedence_of_exitcodes():
    from powerview.core.exitcodes import PRECEDENCE

    text = CliRunner().invoke(cli.main, ["-h"]).output
    assert _exit_code_lines(text) == [int(code) for code in PRECEDENCE]
    assert f"  75  {ExitCode.TEMPFAIL.meaning}" in text


@pytest.mark.parametrize(
    "name,args",
    [
        ("tsv_parser", ["--dataFolder", "/tmp", "--dry-run"]),
        ("manage_influx_tokens", ["--bucket", "acme"]),
        ("powerview-catalogue", ["--deliver-outbox"]),
        ("powerview-downsample", ["--bucket", "acme"]),
        ("powerview-grafana-tenancy", ["to-org", "--all"]),
        ("powerview-acceptance", []),
        ("powerview-relocate", ["--dry-run"]),
    ],
)
def test_powerview_env_file_is_honoured_by_every_program(name, args, tmp_path):
    """A POWERVIEW_ENV_FILE naming a missing file is a usage error that names it: the variable is read."""
    missing = tmp_path / "nowhere.env"
    result = CliRunner().invoke(CLICK_PROGRAMS[name], args, env=_clean_env(POWERVIEW_ENV_FILE=str(missing)))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"--env-file {missing}: no such file" in result.output


def test_powerview_env_file_feeds_the_parser_the_worker_and_the_grafana_reader(tmp_path, data_root):
    place(data_root, "acme", "camp", "02001283", "good.tsv", GOOD)
    settings = tmp_path / "elsewhere.env"
    settings.write_text(
        f"POWERVIEW_DATA_DIR={data_root}\nPOWERVIEW_SPOOL_DIR={tmp_path}/spool-from-file\n"
        "GRAFANA_URL=http://grafana.example:3000\nGRAFANA_API_TOKEN=t\n"
    )
    env = _clean_env(POWERVIEW_ENV_FILE=str(settings))
    parsed = CliRunner().invoke(cli.main, ["--dry-run"], env=env)  # no --dataFolder: the file gives it
    assert parsed.exit_code == 0, parsed.output
    listed = CliRunner().invoke(worker.cli, ["list"], env={**env, "POWERVIEW_LOG_DIR": str(tmp_path)})
    assert f"{tmp_path}/spool-from-file" in listed.output
    # the Ansible module's reader (grafana.settings.load, no argument) and the hook's
    assert grafana_settings.load(environ={"POWERVIEW_ENV_FILE": str(settings)}).url == "http://grafana.example:3000"
    assert envfile.env_file_path(None, {"POWERVIEW_ENV_FILE": str(settings)}) == settings
    assert (
        envfile.env_file_path(tmp_path / "given.env", {"POWERVIEW_ENV_FILE": str(settings)}) == tmp_path / "given.env"
    )


def test_the_config_api_import_honours_powerview_env_file(tmp_path, monkeypatch, capsys):
    from powerview_config_api.importer import main

    monkeypatch.setenv("POWERVIEW_ENV_FILE", str(tmp_path / "nowhere.env"))
    with pytest.raises(SystemExit) as done:
        main(["--from", "http://old:8000"])
    assert done.value.code == ExitCode.USAGE
    assert "nowhere.env: no such file" in capsys.readouterr().err


def test_one_configuration_error_and_the_grafana_reader_knows_the_aliases(tmp_path):
    assert not hasattr(grafana_settings, "SettingsError")  # one ConfigError, no second class or alias
    base = {"GRAFANA_API_TOKEN": "t"}
    none = tmp_path / "none.env"
    assert grafana_settings.load(none, {**base, "TSV_DATA_FOLDER": "/old/data"}).data_dir == Path("/old/data")
    both = {**base, "TSV_DATA_FOLDER": "/old", "POWERVIEW_DATA_DIR": "/new"}
    assert grafana_settings.load(none, both).data_dir == Path("/new")
    with pytest.raises(ConfigError, match="GRAFANA_URL must be a URL such as http://localhost:3000"):
        grafana_settings.load(none, {**base, "GRAFANA_URL": "http://a b"})


def test_the_core_settings_do_not_import_the_onboarding():
    code = "import sys, powerview.core.settings; print(sorted(m for m in sys.modules if m.startswith('powerview.onboarding.grafana')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_DIR)
    assert done.stdout.strip() == "[]"


GOOD = v002(["02001283"] * 7, TRI_LABELS, [row("02/03/26 10:00:00", 230.1, 231, 229.5, 10, 0, -1.5)])


def test_the_parser_reads_its_settings_once_catalogue_included(tmp_path, data_root, monkeypatch):
    import powerview.core.settings

    place(data_root, "acme", "camp", "02001283", "good.tsv", GOOD)
    settings = tmp_path / "s.env"
    settings.write_text(f"CONFIG_API_URL=http://127.0.0.1:9\nPOWERVIEW_SPOOL_DIR={tmp_path}/spool\n")
    reads = []
    real = powerview.core.settings.read_environment
    monkeypatch.setattr(powerview.core.settings, "read_environment", lambda *a, **k: reads.append(a) or real(*a, **k))
    result = CliRunner().invoke(cli.main, ["-d", str(data_root), "--dry-run", "--env-file", str(settings)])
    assert result.exit_code == 0, result.output
    assert len(reads) == 1, reads


def test_a_wrong_catalogue_setting_never_stops_the_parser(tmp_path, data_root):
    place(data_root, "acme", "camp", "02001283", "good.tsv", GOOD)
    settings = tmp_path / "s.env"
    settings.write_text("CONFIG_API_URL=not-a-url\n")
    result = CliRunner().invoke(cli.main, ["-d", str(data_root), "--dry-run", "--env-file", str(settings)])
    assert result.exit_code == 0, result.output
    assert "channel catalogue not published: CONFIG_API_URL must be a URL" in result.stderr


def test_one_logging_setup_escapes_controls_and_masks_url_credentials():
    stream = io.StringIO()
    commandline.configure_logging("prog", "INFO", stream=stream)
    logging.getLogger("powerview.x").info("file %s at %s", "a\nFORGED b", "https://user:secret@proxy/x")
    logging.getLogger("powerview.x").debug("not shown")
    assert stream.getvalue() == "prog: INFO file a\\nFORGED b at https://***@proxy/x\n"
    stream = io.StringIO()
    commandline.configure_logging(None, "warning", stream=stream)
    logging.getLogger("powerview").warning("w")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} WARNING w\n", stream.getvalue())


# -- the project folder ------------------------------------------------------------------------------


def test_the_project_folder_rule(tmp_path, monkeypatch):
    project = tmp_path / "srv" / "powerview"
    (project / "grafana-automation").mkdir(parents=True)
    site = tmp_path / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(envfile, "_PACKAGE_PARENT", site)  # a non-editable install
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    find = envfile.find_project_dir
    assert find({"POWERVIEW_PROJECT_DIR": str(elsewhere)}, script="", prefix="") == elsewhere
    assert find({}, script=str(project / "envs" / "powerview" / "bin" / "powerview-parse"), prefix="") == project
    assert find({}, script=str(project / "tsv_parser.py"), prefix="") == project
    assert find({}, script="-c", prefix=str(project / "envs" / "powerview")) == project
    monkeypatch.chdir(project / "grafana-automation")
    assert find({}, script="-c", prefix="/") == project
    monkeypatch.chdir(elsewhere)
    assert find({}, script="-c", prefix="/") == site  # nothing found: the package's parent, as before


def test_a_non_editable_install_in_the_projects_virtualenv_reads_the_projects_env(tmp_path):
    """The package copied into a site-packages folder (what `pip install .` does), run by a console
    script in <project>/envs/powerview/bin, from another folder: the project's .env is read."""
    project = tmp_path / "powerview"
    (project / "grafana-automation").mkdir(parents=True)
    (project / ".env").write_text("TSV_META_BUCKET=from_the_project_env\n")
    site = tmp_path / "site-packages"
    shutil.copytree(PROJECT_DIR / "powerview", site / "powerview", ignore=shutil.ignore_patterns("__pycache__"))
    libraries = [p for p in sys.path if p.endswith("site-packages")]
    script = project / "envs" / "powerview" / "bin" / "powerview-parse"
    script.parent.mkdir(parents=True)
    script.write_text(
        f"import sys\nsys.path[:0] = [{str(site)!r}] + {libraries!r}\n"
        "import powerview.core.envfile as e, powerview.core.settings as s\n"
        "print(e.PROJECT_DIR, s.load_parser().meta_bucket, e.__file__, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, cwd="/", timeout=60
    )
    assert done.returncode == 0, done.stderr
    found, bucket, module = done.stdout.strip().split("|")
    assert module.startswith(str(site)) and found == str(project) and bucket == "from_the_project_env"


def test_dev_null_is_an_empty_settings_file_and_a_folder_is_refused(tmp_path, data_root):
    place(data_root, "acme", "camp", "02001283", "good.tsv", GOOD)
    empty = CliRunner().invoke(
        cli.main, ["-d", str(data_root), "--dry-run"], env=_clean_env(POWERVIEW_ENV_FILE="/dev/null")
    )
    assert empty.exit_code == 0, empty.output
    folder = CliRunner().invoke(cli.main, ["-d", str(data_root), "--dry-run", "--env-file", str(tmp_path)])
    assert folder.exit_code == ExitCode.USAGE
