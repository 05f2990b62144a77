"""docker-compose.yml, parsed by a real compose implementation (Debian's docker-compose: its
`config` command needs no engine). The names checked here are those of the deployed file: a
change orphans the data of an existing installation."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from samples import PROJECT_DIR, missing

# the variable names of the deployed .env, with its values' shapes (no INFLUXDB_ADMIN_PASSWORD)
DEPLOYED_ENV = """\
INFLUXDB_URL='http://influxdb:8086'
INFLUXDB_HOST='http://localhost:8086'
INFLUXDB_USERNAME=influxdb_user
INFLUXDB_PASSWORD='secret-pw'
INFLUXDB_ORG=powerview
INFLUXDB_BUCKET=powerview
INFLUXDB_ADMIN_TOKEN='secret-token'
GRAFANA_URL='http://localhost:8088'
GRAFANA_USERNAME='admin'
GRAFANA_PASSWORD='grafana-pw'
"""

PLUGINS = ("influxdb-adecwatts-datasource", "adecwatts-series-config-panel")


def compose_config(folder: Path, env_text: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        missing("docker-compose (Debian package docker-compose) is not installed")
    shutil.copy(PROJECT_DIR / "docker-compose.yml", folder / "docker-compose.yml")
    (folder / ".env").write_text(env_text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), **(extra_env or {})}
    return subprocess.run(
        [binary, "--project-directory", str(folder), "-f", str(folder / "docker-compose.yml"), "config"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def parsed(folder: Path, env_text: str, extra_env: dict | None = None) -> dict:
    done = compose_config(folder, env_text, extra_env)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def volume_sources(service: dict) -> dict[str, tuple[str, str]]:
    """container path → (source, mode) from the short syntax docker-compose prints."""
    found = {}
    for spec in service["volumes"]:
        source, target, mode = spec.rsplit(":", 2) if spec.count(":") >= 2 else (*spec.split(":"), "rw")
        found[target] = (source, mode)
    return found


@pytest.mark.parametrize("source", ["example", "deployed"])
def test_compose_keeps_every_deployed_name(tmp_path, source):
    env_text = (PROJECT_DIR / ".env.example").read_text() if source == "example" else DEPLOYED_ENV
    config = parsed(tmp_path, env_text)
    services = config["services"]

    assert set(services) == {"influxdb2", "grafana", "powerview-config-api"}
    assert set(config["volumes"]) == {"influxdb2-data", "influxdb2-config", "grafana-data", "config-api-data"}
    assert services["influxdb2"]["container_name"] == "influxdb"
    assert services["grafana"]["container_name"] == "grafana"
    assert services["powerview-config-api"]["container_name"] == "powerview-config-api"

    assert services["grafana"]["image"] == "grafana/grafana-enterprise"
    assert services["influxdb2"]["image"] == "influxdb:2"
    from powerview import __version__

    assert services["powerview-config-api"]["image"] == f"powerview-config-api:{__version__}"
    assert services["powerview-config-api"]["build"]["dockerfile"] == "powerview_config_api/Dockerfile"
    assert services["powerview-config-api"]["pull_policy"] == "build"
    assert Path(services["powerview-config-api"]["build"]["context"]).resolve() == tmp_path.resolve()

    assert services["influxdb2"]["ports"] == ["0.0.0.0:8086:8086/tcp"]
    assert services["grafana"]["ports"] == ["0.0.0.0:8088:3000/tcp"]
    assert services["powerview-config-api"]["ports"] == ["0.0.0.0:8000:8000/tcp"]

    influx_volumes = volume_sources(services["influxdb2"])
    assert influx_volumes["/var/lib/influxdb2"][0] == "influxdb2-data"
    assert influx_volumes["/etc/influxdb2"][0] == "influxdb2-config"
    assert volume_sources(services["powerview-config-api"])["/data"][0] == "config-api-data"
    grafana_volumes = volume_sources(services["grafana"])
    assert grafana_volumes["/var/lib/grafana"][0] == "grafana-data"
    for plugin in PLUGINS:
        assert grafana_volumes[f"/var/lib/grafana/plugins/{plugin}"] == (f"/srv/grafana-plugins/{plugin}", "ro")
    # the deployed /srv/powerview/{provisioning,dashboards} sat inside the checkout, which the guide's
    # safe update moves aside: they now default outside it (powerview-relocate moves them there)
    assert grafana_volumes["/etc/grafana/provisioning"] == ("/srv/powerview-data/provisioning", "ro")
    assert grafana_volumes["/var/lib/grafana/dashboards/powerview"] == ("/srv/powerview-data/dashboards", "ro")

    grafana_env = services["grafana"]["environment"]
    assert grafana_env["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"].split(",") == list(PLUGINS)
    assert grafana_env["GRAFANA_URL"] == "http://localhost:8088"  # env_file .env reaches the service
    assert services["grafana"]["user"] == "1000"
    if source == "deployed":  # an unchanged deployed .env keeps the deployed public address
        assert grafana_env["GF_SERVER_ROOT_URL"] == "%(protocol)s://powerview.adecwatts.fr/"
        assert grafana_env["GF_SERVER_DOMAIN"] == "powerview.adecwatts.fr"

    influx_env = services["influxdb2"]["environment"]
    expected_user = "admin" if source == "example" else "influxdb_user"
    assert influx_env["DOCKER_INFLUXDB_INIT_USERNAME"] == expected_user
    assert influx_env["DOCKER_INFLUXDB_INIT_BUCKET"] == "powerview"
    assert influx_env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == ("change-me" if source == "example" else "secret-token")

    for name in services:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["influxdb2"]["healthcheck"]["test"][1:3] == ["influx", "ping"]
    assert services["grafana"]["healthcheck"]["test"][-1] == "http://localhost:3000/api/health"
    assert "http://127.0.0.1:8000/health" in services["powerview-config-api"]["healthcheck"]["test"][-1]
    assert services["grafana"]["depends_on"]["influxdb2"] == {"condition": "service_healthy"}
    assert services["grafana"]["depends_on"]["powerview-config-api"] == {"condition": "service_started"}


def test_compose_loopback_only_and_overrides(tmp_path):
    env_text = DEPLOYED_ENV + (
        "POWERVIEW_BIND_ADDRESS=127.0.0.1\nGRAFANA_IMAGE=grafana/grafana:11.3.0\n"
        "GRAFANA_PROVISIONING_DIR=/opt/prov\nCONFIG_API_TOKEN=t0ken\n"
    )
    services = parsed(tmp_path, env_text)["services"]
    assert services["influxdb2"]["ports"] == ["127.0.0.1:8086:8086/tcp"]
    assert services["grafana"]["ports"] == ["127.0.0.1:8088:3000/tcp"]
    assert services["powerview-config-api"]["ports"] == ["127.0.0.1:8000:8000/tcp"]
    assert services["grafana"]["image"] == "grafana/grafana:11.3.0"
    assert volume_sources(services["grafana"])["/etc/grafana/provisioning"] == ("/opt/prov", "ro")
    api_env = services["powerview-config-api"]["environment"]
    assert api_env == {
        "PYTHONUNBUFFERED": "1",
        "CONFIG_API_DB": "/data/powerview-2/config-api.sqlite3",
        "CONFIG_API_TOKEN": "t0ken",
    }


@pytest.mark.parametrize("name", ["INFLUXDB_PASSWORD", "INFLUXDB_ADMIN_TOKEN", "GRAFANA_PASSWORD"])
def test_compose_names_a_missing_required_variable(tmp_path, name):
    env_text = "".join(line + "\n" for line in DEPLOYED_ENV.splitlines() if not line.startswith(name + "="))
    done = compose_config(tmp_path, env_text)
    assert done.returncode != 0
    assert f"set {name} in .env" in done.stderr


def test_the_config_api_image_follows_the_project_version():
    """After an update, `compose up -d` must meet a missing image (so it builds the new code):
    the tag is the version, written once in the file, with no variable that could pin it."""
    from powerview import __version__

    text = (PROJECT_DIR / "docker-compose.yml").read_text()
    images = [line.split("image:", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("image:")]
    assert f"powerview-config-api:{__version__}" in images
    assert not any("powerview-config-api" in image and "$" in image for image in images)
    # podman-compose skips in `pull` a service with a build section whose image has no "/"
    # (is_local); Docker's registry would answer "pull access denied" for it otherwise
    assert "/" not in f"powerview-config-api:{__version__}"


def test_compose_public_address_and_images_are_variables(tmp_path):
    env_text = DEPLOYED_ENV + (
        "GRAFANA_ROOT_URL=https://grafana.example.org/\nGRAFANA_DOMAIN=grafana.example.org\n"
        "INFLUXDB_IMAGE=influxdb:2.7.11\nGRAFANA_IMAGE=grafana/grafana-enterprise:11.3.0\n"
    )
    services = parsed(tmp_path, env_text)["services"]
    assert services["grafana"]["environment"]["GF_SERVER_ROOT_URL"] == "https://grafana.example.org/"
    assert services["grafana"]["environment"]["GF_SERVER_DOMAIN"] == "grafana.example.org"
    assert services["influxdb2"]["image"] == "influxdb:2.7.11"
    assert services["grafana"]["image"] == "grafana/grafana-enterprise:11.3.0"


def test_every_bind_mount_source_exists_after_the_documented_steps(tmp_path):
    """A deployed installation (its .env, its old checkout holding provisioning/ and dashboards/,
    the production plugins under their folder) after the guide's steps (docs/setup-composants.md):
    `powerview-relocate` moves the folders out of the checkout and creates the mount sources;
    every bind-mount source that `docker-compose config` then names exists before `up`."""
    from samples import require_venv

    require_venv()
    relocate = PROJECT_DIR / "envs" / "powerview" / "bin" / "powerview-relocate"
    old = tmp_path / "old-checkout"
    (old / "provisioning" / "datasources").mkdir(parents=True)
    (old / "provisioning" / "datasources" / "json.yaml").write_text("apiVersion: 1\n")
    (old / "dashboards").mkdir()
    for plugin in PLUGINS:
        (tmp_path / "plugins" / plugin).mkdir(parents=True)
    env_text = DEPLOYED_ENV + (
        f"POWERVIEW_SECRETS_DIR={tmp_path}/data/secrets\n"
        f"GRAFANA_PROVISIONING_DIR={tmp_path}/data/provisioning\n"
        f"GRAFANA_DASHBOARDS_DIR={tmp_path}/data/dashboards\n"
        f"GRAFANA_DATASOURCE_PLUGIN_DIR={tmp_path}/plugins/{PLUGINS[0]}\n"
        f"GRAFANA_PANEL_PLUGIN_DIR={tmp_path}/plugins/{PLUGINS[1]}\n"
    )
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".env").write_text(env_text)
    done = subprocess.run(
        [str(relocate), "--env-file", str(folder / ".env"), "--from", str(old)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"]},
    )
    assert done.returncode == 0, done.stderr
    config = parsed(folder, env_text)
    binds = [
        source
        for service in config["services"].values()
        for source, _ in volume_sources(service).values()
        if source.startswith("/")
    ]
    assert len(binds) == 4, binds
    assert [source for source in binds if not Path(source).is_dir()] == []
    assert (tmp_path / "data" / "provisioning" / "datasources" / "json.yaml").is_file()
