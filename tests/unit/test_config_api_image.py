"""What powerview_config_api/Dockerfile copies is enough to run the API (no engine runs here:
the image's file set is rebuilt in a folder and started as the image starts it)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from samples import PROJECT_DIR

DOCKERFILE = PROJECT_DIR / "powerview_config_api" / "Dockerfile"


def test_the_pinned_requirements_the_image_installs():
    grep = re.search(r"grep -E '(.+?)' /tmp/requirements.txt", DOCKERFILE.read_text()).group(1)
    lines = [line for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines() if re.match(grep, line)]
    assert [line.split("==")[0] for line in lines] == ["fastapi", "uvicorn", "pydantic"]
    assert all(re.fullmatch(r"[a-z]+==[0-9.]+", line) for line in lines)


def test_the_copied_files_are_enough_to_serve(tmp_path):
    app = tmp_path / "app"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "requirements.txt" not in line:
            *sources, target = line.split()[1:]
            destination = app / target.removeprefix("/app/").rstrip("/")
            for source in sources:
                path = PROJECT_DIR / source
                if path.is_dir():
                    shutil.copytree(path, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, destination)
    assert sorted(str(p.relative_to(app / "powerview")) for p in (app / "powerview").rglob("*.py")) == [
        "__init__.py",
        "core/__init__.py",
        "core/exitcodes.py",
        "core/names.py",
        "core/schema.py",
    ]
    # -I: no PYTHONPATH, no current folder; -S keeps site-packages out, so add only the venv's
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = (
        f"import sys; sys.path[:0] = [{str(app)!r}] + {site!r}; import powerview, powerview_config_api.app as a, "
        "powerview_config_api.store as s, powerview_config_api.__main__ as m; "
        f"assert powerview.__file__.startswith({str(app)!r}); "
        f"a.create_app(s.Store({str(tmp_path / 'db.sqlite3')!r}), None); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_database_path_is_in_a_subfolder_of_its_own():
    """The deployed API 0.3.2 left its own files at the top of the config-api-data volume (/data):
    ours lives in a subfolder that image never had, and the three places that name it agree."""
    from powerview_config_api.__main__ import DEFAULT_DB

    assert DEFAULT_DB == "/data/powerview-2/config-api.sqlite3"
    assert f"CONFIG_API_DB={DEFAULT_DB}" in DOCKERFILE.read_text()
    assert f"CONFIG_API_DB: ${{CONFIG_API_DB:-{DEFAULT_DB}}}" in (PROJECT_DIR / "docker-compose.yml").read_text()
