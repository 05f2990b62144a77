"""Small file-system helpers shared by the durable queues (spool, outboxes) and the reports:
THE durable write (temporary file, fsync, rename, fsync of the folder) lives here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or an unlink in `folder` durable (survives a power cut)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temporary(folder: Path, data: bytes, prefix: str = ".tmp-", mode: int = 0o600) -> Path:
    """`data` in a new file of `folder` (a name of its own: `<prefix><pid>-<random>.tmp`, created
    with `mode` less the umask), written whole and fsync'ed; the caller gives it its final name
    (rename, link) or removes it. Nothing is left behind when the write fails."""
    path = Path(folder) / f"{prefix}{os.getpid()}-{os.urandom(4).hex()}.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def write_durably(
    path: Path,
    data: bytes,
    tmp_dir: Path | None = None,
    mode: int = 0o600,
    prefix: str = ".tmp-",
    keep_if: Callable[[], bool] | None = None,
) -> bool:
    """Replace `path` with `data` so that after a crash (kill -9, power cut) it is either the old
    file or the new one, whole, and once this returns the new one survives a power cut: a
    temporary file (in `tmp_dir`, on the same file system; by default `path`'s folder), fsync,
    rename over `path`, fsync of the folder. `keep_if()`, asked just before the rename, may drop
    the write (returns False: e.g. a queued job purged meanwhile must not come back)."""
    tmp = write_temporary(tmp_dir if tmp_dir is not None else path.parent, data, prefix, mode)
    try:
        if keep_if is not None and not keep_if():
            tmp.unlink()
            return False
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return True
