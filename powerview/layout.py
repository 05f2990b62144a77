"""The data folder: `<data>/<company>/<campaign>/<device_sn>/<file>.tsv`.

Everything that knows this layout lives here: the name rules, locating a file in the tree,
discovery, claiming a file against a concurrent process, and the moves to `parsed/` and `error/`.
Names from the file system are untrusted: they are checked here before anything uses them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PARSED_DIR = "parsed"
ERROR_DIR = "error"
PROCESSED_DIRS = (PARSED_DIR, ERROR_DIR)
TSV_SUFFIX = ".tsv"

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\Z")


class LayoutError(Exception):
    """The path cannot be processed at all (outside the data folder, wrong depth)."""


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not an acceptable company/campaign/device name, or None when it is.

    Rule: 1 to 128 characters among letters, digits, `.`, `_` and `-`, not starting with a dot;
    a company name is also an InfluxDB bucket name, so it may not start with `_` either.
    """
    if not _NAME.match(name):
        return (f"{kind} name {name!r} is not allowed: use 1 to 128 letters, digits, '.', '_' or '-', "
                "not starting with '.'")
    if kind == "company" and name.startswith("_"):
        return f"company name {name!r} is not allowed: a bucket name cannot start with '_'"
    if name in PROCESSED_DIRS and kind != "company":
        return f"{kind} name {name!r} is reserved"
    return None


@dataclass(frozen=True)
class Location:
    """Where a device file sits: the path and the three folder names above it."""

    path: Path          # absolute, symlinks resolved, inside the data folder
    company: str
    campaign: str
    device: str

    def name_problem(self) -> str | None:
        for kind, name in (("company", self.company), ("campaign", self.campaign), ("device", self.device)):
            problem = name_problem(kind, name)
            if problem:
                return problem
        return None


def locate(data_root: Path, path: Path | str) -> Location:
    """Locate a file in the data tree. Raises LayoutError when it is outside or at the wrong depth."""
    root = Path(data_root).resolve()
    given = Path(path)
    if not given.is_absolute():
        given = Path.cwd() / given
    if ".." in given.parts:
        raise LayoutError(f"{path}: '..' is not allowed in a file path")
    real = given.resolve()
    try:
        rel = real.relative_to(root)
    except ValueError:
        raise LayoutError(f"{path}: outside the data folder {root} (symlinks resolved)") from None
    if len(rel.parts) != 4:
        raise LayoutError(f"{path}: not at <company>/<campaign>/<device>/<file> depth under {root}")
    if rel.parts[-1].startswith("."):
        raise LayoutError(f"{path}: hidden files are not processed")
    return Location(real, rel.parts[0], rel.parts[1], rel.parts[2])


def discover(data_root: Path) -> Iterator[Path]:
    """Every `*.tsv` at company/campaign/device depth, sorted; hidden entries, parsed/, error/ skipped.

    Symlinked folders are not followed and symlinked files are not returned: `locate` would
    refuse them anyway when they lead out of the tree, and a scan must not walk out of it.
    """
    root = Path(data_root)

    def subdirs(folder: Path) -> list[Path]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return []
        return [Path(e.path) for e in entries
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]

    for company in subdirs(root):
        for campaign in subdirs(company):
            for device in subdirs(campaign):
                if device.name in PROCESSED_DIRS:
                    continue
                try:
                    entries = sorted(os.scandir(device), key=lambda e: e.name)
                except OSError:
                    continue
                for entry in entries:
                    if (entry.name.endswith(TSV_SUFFIX) and not entry.name.startswith(".")
                            and entry.is_file(follow_symlinks=False)):
                        yield Path(entry.path)


def open_locked(path: Path | str, flags: int, mode: int = 0o640) -> int | None:
    """Open `path` and take an exclusive `flock` on it without waiting.

    Returns the locked descriptor (closing it releases the lock), or None when another process
    holds the lock. Errors of `os.open` (a missing file, say) are the caller's to handle.
    """
    fd = os.open(path, flags | os.O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


class Claim:
    """An exclusive claim on a file, held for as long as this process works on it.

    The claim is a `flock` on the file itself: the kernel drops it if the process dies, and the
    file stays where it is. After locking, the path must still name the locked inode: if another
    process already moved the file away, the claim fails.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        try:
            fd = open_locked(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        if fd is None:
            return False
        try:
            same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def processed_copy(path: Path) -> Path | None:
    """Where a file that is no longer at `path` went, if it is in parsed/ or error/ beside it."""
    for folder in PROCESSED_DIRS:
        candidate = path.parent / folder / path.name
        if candidate.is_file():
            return candidate
    return None


def move_to(path: Path, folder_name: str) -> Path:
    """Move `path` into `<its folder>/<folder_name>/` without ever overwriting a file there.

    A hard link to a free name followed by an unlink of the old name: the link fails if the
    name is taken (then the next suffix is tried), so an existing file is never replaced.
    Returns the new path.
    """
    dest_dir = path.parent / folder_name
    dest_dir.mkdir(exist_ok=True)
    stem, suffix = path.stem, path.suffix
    for n in range(0, 10000):
        candidate = dest_dir / (path.name if n == 0 else f"{stem}.{n}{suffix}")
        try:
            os.link(path, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # no hard links on this file system: rename to a name checked free just before
            if os.path.lexists(candidate):
                continue
            os.rename(path, candidate)
            return candidate
        os.unlink(path)
        return candidate
    raise OSError(f"{path}: no free name left in {dest_dir}")


def relative_parts(data_root: Path, path: Path | str) -> tuple[str, ...]:
    """The components of `path` below the data folder, symlinks resolved (a folder or a file).

    Raises LayoutError for a relative path, a `..` component or a path outside the data folder.
    Used by the SFTPGo hook for `mkdir` events, where `locate` (files only) does not apply.
    """
    given = Path(path)
    if not given.is_absolute():
        raise LayoutError(f"{path}: not an absolute path")
    if ".." in given.parts:
        raise LayoutError(f"{path}: '..' is not allowed in a path")
    root = Path(data_root).resolve()
    try:
        return Path(given).resolve().relative_to(root).parts
    except ValueError:
        raise LayoutError(f"{path}: outside the data folder {root} (symlinks resolved)") from None
