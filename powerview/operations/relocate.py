"""Move the operators' folders out of the checkout (docs/setup-composants.md, "Mise à jour"); the
command is `powerview-relocate` (powerview.cli.relocate).

The deployed layout kept the default users' passwords (secrets/), Grafana's provisioning
(provisioning/) and its dashboards (dashboards/) inside the checkout, /srv/powerview: a "safe"
update (move the checkout aside, clone again) left them behind. They now default to
/srv/powerview-data/{secrets,provisioning,dashboards} (POWERVIEW_SECRETS_DIR,
GRAFANA_PROVISIONING_DIR, GRAFANA_DASHBOARDS_DIR). This command moves what the old checkout
(--from; default: this project folder) holds there, file by file, and creates every target
folder (the bind-mount sources of docker-compose.yml), so it runs before `podman compose up`.

Idempotent: a file already at its target with the same bytes is only removed from the old place;
a file whose target differs is left where it is and reported (a conflict). Nothing is overwritten.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from powerview.core.datadirs import DEFAULT_DASHBOARDS_DIR, DEFAULT_PROVISIONING_DIR, DEFAULT_SECRETS_DIR
from powerview.core.settings import ConfigError, Env


@dataclass(frozen=True)
class Folder:
    name: str  # its name in the old checkout
    variable: str
    default: Path
    mode: int  # of the folder when it is created without an old one to copy


FOLDERS = (
    Folder("secrets", "POWERVIEW_SECRETS_DIR", DEFAULT_SECRETS_DIR, 0o700),
    Folder("provisioning", "GRAFANA_PROVISIONING_DIR", DEFAULT_PROVISIONING_DIR, 0o755),
    Folder("dashboards", "GRAFANA_DASHBOARDS_DIR", DEFAULT_DASHBOARDS_DIR, 0o755),
)


def _print(text: str, to_stderr: bool = False) -> None:
    print(text, file=sys.stderr if to_stderr else sys.stdout, flush=True)


class Relocation:
    """The moves of one run: each step said (`echo(text, to_stderr)`), conflicts counted."""

    def __init__(self, dry_run: bool, owner: tuple[int, int] | None, echo: Callable[[str, bool], None] = _print):
        self.dry_run = dry_run
        self.owner = owner
        self.echo = echo
        self.conflicts = 0

    def say(self, text: str) -> None:
        self.echo(("would " if self.dry_run else "") + text, False)

    def make_dir(self, target: Path, like: Path | None, mode: int) -> None:
        if target.is_dir():
            return
        self.say(f"create {target}")
        if self.dry_run:
            return
        target.mkdir(parents=True, exist_ok=True)
        if like is not None:
            st = like.stat()
            os.chmod(target, st.st_mode & 0o7777)
            self._chown(target, (st.st_uid, st.st_gid))
        else:
            os.chmod(target, mode)
            if self.owner is not None:
                self._chown(target, self.owner)

    @staticmethod
    def _chown(path: Path, owner: tuple[int, int]) -> None:
        try:
            os.chown(path, *owner, follow_symlinks=False)
        except PermissionError:
            pass  # not root: the folder stays the caller's

    def move_file(self, source: Path, target: Path) -> None:
        if target.exists() or target.is_symlink():
            if not source.is_symlink() and target.is_file() and filecmp.cmp(source, target, shallow=False):
                self.say(f"remove {source} (the same file is already at {target})")
                if not self.dry_run:
                    source.unlink()
            else:
                self.conflicts += 1
                self.echo(f"conflict: {source} and {target} differ: both left as they are; merge by hand", True)
            return
        self.say(f"move {source} -> {target}")
        if self.dry_run:
            return
        try:
            os.rename(source, target)
        except OSError:  # another file system: copy (bytes, mode, times, owner), then remove
            st = source.lstat()
            shutil.copy2(source, target, follow_symlinks=False)
            self._chown(target, (st.st_uid, st.st_gid))
            source.unlink()

    def move_tree(self, old: Path, new: Path, mode: int) -> None:
        if old.is_symlink() or not old.is_dir():
            self.make_dir(new, None, mode)
            return
        if old.resolve() == new.resolve():
            self.echo(
                f"warning: {new} is inside the checkout: an update that moves the checkout aside leaves it behind",
                False,
            )
            return
        self.make_dir(new, old, mode)
        for folder, dirs, files in os.walk(old):
            here = Path(folder)
            target_dir = new / here.relative_to(old)
            self.make_dir(target_dir, here, mode)
            for name in sorted(files) + sorted(d for d in dirs if (here / d).is_symlink()):
                self.move_file(here / name, target_dir / name)
        if not self.dry_run:
            for folder, _dirs, _files in sorted(os.walk(old), key=lambda entry: -len(entry[0])):
                try:
                    os.rmdir(folder)  # only when empty: a conflict keeps its folder
                except OSError:
                    pass


def targets(env: Env) -> list[tuple[Folder, Path]]:
    """Each folder and where the settings put it. Raises ConfigError for a relative path."""
    found = []
    for folder in FOLDERS:
        raw = env.text(folder.variable) or ""
        path = Path(raw) if raw else folder.default
        if not path.is_absolute():
            raise ConfigError(f"{folder.variable} must be an absolute path, got {raw!r}")
        found.append((folder, path))
    return found
