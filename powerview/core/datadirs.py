"""Where the operators' folders live by default: outside the checkout, so that an update which
moves the checkout aside and clones it again (docs/setup-composants.md) keeps them.
`powerview-relocate` (powerview/cli/relocate.py, powerview/operations/relocate.py) moves the deployed ones there."""

from pathlib import Path

DATA_ROOT = Path("/srv/powerview-data")
DEFAULT_SECRETS_DIR = DATA_ROOT / "secrets"  # POWERVIEW_SECRETS_DIR
DEFAULT_PROVISIONING_DIR = DATA_ROOT / "provisioning"  # GRAFANA_PROVISIONING_DIR (docker-compose.yml)
DEFAULT_DASHBOARDS_DIR = DATA_ROOT / "dashboards"  # GRAFANA_DASHBOARDS_DIR (docker-compose.yml)
