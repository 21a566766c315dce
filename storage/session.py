"""This process's session, and whether another process's session is still running.

Each process that opens the database holds an exclusive OS lock on its own small file,
``<data>/run/<session id>.lock``, for as long as it runs; the OS drops the lock when the
process ends, however it ends (kill -9 included). A reply in flight records its writer's
session id (``messages.writer``), and so does a spool file: at start-up, rows and spool
files of sessions whose lock can be taken belong to processes that are gone, and only
those are recovered — never the reply another window is streaming right now.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9]+-[0-9a-f]{8}$")


def _try_lock(fh: IO[bytes]) -> bool:
    """Take an exclusive lock on ``fh`` without waiting; False when someone holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fh: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Session:
    """This process's claim to be alive (``<run_dir>/<id>.lock``, locked until ``close``).

    Args:
        run_dir: the folder of session lock files (created 0700).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.id = f"{os.getpid()}-{secrets.token_hex(4)}"
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = run_dir / f"{self.id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fh: IO[bytes] | None = os.fdopen(fd, "r+b")
        if not _try_lock(self._fh):  # a fresh random name: nobody else can hold it
            raise RuntimeError(f"could not lock the session file {path}")
        self.path = path

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    def close(self) -> None:
        """Release the lock and remove the file (the session is over). Safe twice."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            _unlock(fh)
        finally:
            fh.close()
        self.path.unlink(missing_ok=True)

    def is_alive(self, session_id: str | None) -> bool:
        """Whether the process of ``session_id`` still runs (this session: True). None or a
        malformed id (rows from before sessions were recorded) counts as gone."""
        if session_id == self.id:
            return self._fh is not None
        return session_alive(self.run_dir, session_id)


def session_alive(run_dir: Path, session_id: str | None) -> bool:
    """Whether another process holds the lock of ``session_id``. A lock file left by a
    process that is gone is removed on the way."""
    if not session_id or not _ID.match(session_id):
        return False
    path = run_dir / f"{session_id}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError as exc:  # cannot tell: assume it runs, never recover under its feet
        log.warning("cannot check session %s: %s", session_id, exc)
        return True
    with os.fdopen(fd, "r+b") as fh:
        if not _try_lock(fh):
            return True
        try:
            path.unlink(missing_ok=True)
        finally:
            _unlock(fh)
    return False


def sweep(run_dir: Path, own: str | None = None) -> int:
    """Remove the lock files of sessions that are gone (kill -9 leaves them behind);
    returns how many."""
    if not run_dir.is_dir():
        return 0
    removed = 0
    for path in run_dir.glob("*.lock"):
        if path.stem != own and not session_alive(run_dir, path.stem):
            removed += 1
    return removed
