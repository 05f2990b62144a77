"""One worker at a time: an exclusive `flock` on `<spool>/worker.lock`, and starting a worker.

The lock is a `flock` on an open file: the kernel releases it when the worker exits, dies or is
killed, so a crash never leaves a stale lock behind. `kick` takes the lock itself and hands the
locked descriptor to the detached worker it starts: two hooks can never start two workers.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from powerview.core.envfile import PROJECT_DIR
from powerview.ingestion.layout import open_locked

LOCK_NAME = "worker.lock"
WORKER_LOG = "worker.log"


def lock_path(spool_dir: Path) -> Path:
    return Path(spool_dir) / LOCK_NAME


def try_lock(spool_dir: Path) -> int | None:
    """The locked descriptor, or None when another process holds the lock."""
    Path(spool_dir).mkdir(parents=True, exist_ok=True)
    return open_locked(lock_path(spool_dir), os.O_RDWR | os.O_CREAT, 0o640)


def holds_lock(fd: int, spool_dir: Path) -> bool:
    """True when `fd` (handed over by on-upload.sh or `kick`) is the lock file and holds the lock.

    Locking again through the same open file is a no-op that succeeds; through another one
    (the lock held by someone else) it fails.
    """
    try:
        st, lock = os.fstat(fd), os.stat(lock_path(spool_dir))
        if (st.st_dev, st.st_ino) != (lock.st_dev, lock.st_ino):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    os.set_inheritable(fd, False)  # the parser and Ansible must not inherit the lock
    return True


def release(fd: int) -> None:
    os.close(fd)  # closing the last descriptor of the open file releases the flock


def worker_environment(environ: dict | None = None) -> dict:
    """The environment a worker starts with: ours minus SFTPGo's event and Python's own variables."""
    env = {
        k: v for k, v in (os.environ if environ is None else environ).items() if not k.startswith(("SFTPGO_", "PYTHON"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


def kick(spool_dir: Path, log_dir: Path, env_file: Path | None = None) -> int | None:
    """Start a detached worker unless one runs. Returns its pid, or None when one was running.

    The worker runs in its own session (setsid), with stdin from /dev/null and stdout/stderr in
    `<log_dir>/worker.log`: it never holds the hook's pipes, so SFTPGo sees the hook end at once.
    """
    fd = try_lock(spool_dir)
    if fd is None:
        return None
    import subprocess  # only here: most hook calls find a worker running and need no process

    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_fd = os.open(Path(log_dir) / WORKER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            cmd = [sys.executable, "-m", "powerview.cli.worker"]
            if env_file is not None:
                cmd += ["--env-file", str(env_file)]
            cmd += ["run", "--lock-fd", str(fd)]
            process = subprocess.Popen(
                cmd,
                cwd=PROJECT_DIR,
                env=worker_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                pass_fds=(fd,),
                start_new_session=True,
            )
        finally:
            os.close(log_fd)
    finally:
        release(fd)  # the worker holds its own copy of the locked descriptor
    return process.pid
