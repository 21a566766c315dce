"""Changes kept in a file while the database refuses them, written at the next start.

When the database stays locked by another program (or the disk is full) the owner thread
keeps queued changes in memory and, so that not even kill -9 loses them, also in this
session's spool file, ``<data>/spool/<session id>.json`` (0600, replaced atomically each time
the queue changes). A clean exit that still could not write them leaves the file too. At
the next start of any Halext Desktop process the files of sessions that are gone are read
back and queued again.

Exactly once: every file carries a batch id, and the transaction that finally writes the
changes also records the id in ``spool_applied``. A batch found there is skipped, so a
crash between the commit and the file's removal never writes anything twice.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from halext_desktop.storage.ops import Op, op_from_json

log = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True, slots=True)
class SpoolFile:
    """One spool file as read back: its batch id, the session that wrote it, its changes."""

    path: Path
    batch: str
    session: str
    ops: list[Op]


def new_batch_id() -> str:
    return uuid.uuid4().hex


def write_spool(path: Path, session: str, batch: str, ops: Iterable[Op]) -> int:
    """Write ``ops`` to ``path`` atomically, readable by the owner only; returns how many."""
    items = [op.to_json() for op in ops]
    doc = {
        "version": VERSION,
        "session": session,
        "batch": batch,
        "saved_at": datetime.now(UTC).isoformat(),
        "ops": items,
    }
    data = json.dumps(doc, ensure_ascii=False, default=str)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600 whatever the umask; os.replace keeps that mode.
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(items)


def read_spool(path: Path) -> SpoolFile:
    """Read one spool file.

    Raises:
        ValueError: the file is not a spool file this version understands.
        OSError: it cannot be read.
    """
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise ValueError(f"not a version-{VERSION} spool file")
        ops = [op_from_json(item) for item in doc["ops"]]
        return SpoolFile(path, str(doc["batch"]), str(doc["session"]), ops)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed spool file ({type(exc).__name__}: {exc})") from None


def orphaned_spools(
    spool_dir: Path, own_session: str | None, alive: Callable[[str], bool]
) -> list[Path]:
    """Spool files of sessions that are gone (never this session's, never a live one's),
    oldest first."""
    if not spool_dir.is_dir():
        return []
    found = []
    for path in spool_dir.glob("*.json"):
        session = path.stem
        if session == own_session or alive(session):
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime)


def set_aside(path: Path, why: str) -> Path:
    """Rename a spool file that cannot be used to ``<name>.bad`` (kept for the user)."""
    bad = path.with_name(path.name + ".bad")
    try:
        path.rename(bad)
    except OSError as exc:
        log.warning("could not set the spool file %s aside: %s", path, exc)
        return path
    log.warning("spool file %s set aside (%s)", bad, why)
    return bad
