"""The data folder: `<data>/<company>/<campaign>/<device_sn>/<file>.tsv`.

Everything that knows this layout lives here: locating a file in the tree, discovery, claiming
a file against a concurrent process, and the moves to `parsed/` and `error/`. Names from the file
system are untrusted: they are checked with the rules of powerview.core.names before anything uses them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from powerview.core.names import PROCESSED_DIRS, file_name_problem, name_problem

TSV_SUFFIX = ".tsv"


class LayoutError(Exception):
    """The path cannot be processed at all (outside the data folder, wrong depth)."""


class UnsafeFolder(OSError):
    """`parsed/` or `error/` is not a real folder inside the device folder (a symlink, a file)."""


@dataclass(frozen=True)
class Location:
    """Where a device file sits: the path and the three folder names above it."""

    path: Path  # absolute, symlinks resolved, inside the data folder
    company: str
    campaign: str
    device: str

    def name_problem(self) -> str | None:
        for kind, name in (("company", self.company), ("campaign", self.campaign), ("device", self.device)):
            problem = name_problem(kind, name)
            if problem:
                return problem
        return file_name_problem(self.path.name)


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
        return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]

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
                    if (
                        entry.name.endswith(TSV_SUFFIX)
                        and not entry.name.startswith(".")
                        and entry.is_file(follow_symlinks=False)
                    ):
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

    def acquire(self, lock: bool = True) -> bool:
        """True once the file is open (and locked, with `lock`); False when it is gone or held
        by another process. Other errors of opening it (permissions...) are raised."""
        try:
            if lock:
                fd = open_locked(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            else:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
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

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"{self.path}: not claimed")
        return self._fd

    def file_id(self) -> str:
        st = os.fstat(self.fd)
        return f"{st.st_dev}:{st.st_ino}"

    def open(self, *args, **kwargs):
        """A new file object reading the claimed inode from its start (not the name: a file
        renamed over the path meanwhile is not what we read)."""
        fd = os.dup(self.fd)
        os.lseek(fd, 0, os.SEEK_SET)
        return open(fd, *args, **kwargs)

    def still_named(self) -> bool:
        """True when the path still names the claimed inode."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        own = os.fstat(self.fd)
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> Claim:
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


def safe_subdir(device_dir: Path, folder_name: str) -> Path:
    """`<device_dir>/<folder_name>`, created if missing; raises UnsafeFolder unless it is a real
    folder (not a symlink, not a file) directly inside the device folder."""
    folder = device_dir / folder_name
    try:
        os.mkdir(folder, 0o750)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a folder"
        raise UnsafeFolder(
            errno.ENOTDIR,
            f"{folder} is {kind}: files are only moved into a real "
            f"{folder_name}/ folder inside the device folder (remove or rename it)",
        )
    return folder


def _link_free_name(source: str, dest_dir: Path, name: str) -> Path:
    """Hard-link `source` into `dest_dir` under `name` or `<stem>.<n><suffix>`, never replacing."""
    stem, suffix = os.path.splitext(name)
    for n in range(0, 10000):
        candidate = dest_dir / (name if n == 0 else f"{stem}.{n}{suffix}")
        try:
            os.link(source, candidate, follow_symlinks=True)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG or len(stem) <= 16:
                raise
            stem = stem[: len(stem) - 16]  # the suffix made the name too long: shorten the stem
            continue
        return candidate
    raise OSError(errno.EEXIST, f"no free name left for {name} in {dest_dir}")


def move_claimed(claim: Claim, folder_name: str) -> Path:
    """Move the claimed file into `<its folder>/<folder_name>/` and return its new path.

    What moves is the inode that was read, never the name: it is linked into the folder through
    its open descriptor (/proc/self/fd), then the old name is removed only if it still names that
    inode. A file uploaded under the same name meanwhile (SFTP clients upload to a temporary name
    and rename over the old one) stays where it is, for its own ingestion.
    """
    path = claim.path
    dest_dir = safe_subdir(path.parent, folder_name)
    if not claim.still_named() and os.fstat(claim.fd).st_nlink == 0:
        # replaced by a new upload, or removed, while it was read: its last copy is our descriptor
        return _copy_claimed(claim, dest_dir)
    proc_link = f"/proc/self/fd/{claim.fd}"
    try:
        target = _link_free_name(proc_link, dest_dir, path.name)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # no /proc, or no hard link allowed here: move by name, once the name is checked
        if not claim.still_named():
            return _copy_claimed(claim, dest_dir)
        return move_to(path, folder_name)
    _unlink_if_ours(claim)
    return target


def _copy_claimed(claim: Claim, dest_dir: Path) -> Path:
    """Write the claimed file's bytes (read from its descriptor) under a free name in `dest_dir`:
    the file that was read lands there even though no name is left for its inode."""
    fd, tmp = tempfile.mkstemp(prefix=".pv-copy-", dir=dest_dir)
    try:
        with open(fd, "wb") as out, claim.open("rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(os.fstat(claim.fd).st_mode))
        return _link_free_name(tmp, dest_dir, claim.path.name)
    finally:
        os.unlink(tmp)


def _unlink_if_ours(claim: Claim) -> None:
    """Remove the claimed file's old name if (and only if) it still names the claimed inode.

    The name is first renamed aside (atomic), then checked: a new file renamed over the path
    between the check and the removal would otherwise be deleted unread.
    """
    path = claim.path
    if not claim.still_named():
        return
    aside = path.parent / f".{path.name}.pv-moved-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    st, own = os.stat(aside, follow_symlinks=False), os.fstat(claim.fd)
    if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
        os.unlink(aside)
        return
    # a new upload took the name in between: put it back (unless yet another one took it)
    try:
        os.link(aside, path, follow_symlinks=False)
    except FileExistsError:
        _link_free_name(str(aside), path.parent, path.name)
    os.unlink(aside)


def move_to(path: Path, folder_name: str) -> Path:
    """Move `path` into `<its folder>/<folder_name>/` without ever overwriting a file there.

    A hard link to a free name followed by an unlink of the old name: the link fails if the
    name is taken (then the next suffix is tried), so an existing file is never replaced.
    Returns the new path.
    """
    dest_dir = safe_subdir(path.parent, folder_name)
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
