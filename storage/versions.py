"""Reply versions: Regenerate keeps the earlier answers.

The reply's row always holds the version shown; it is the one sent as history (nothing
else in the app needs to know about versions). The others wait in the row's
``meta["versions"]``: a list with one entry per version, ``None`` at the shown one's
place (the row is its copy), and ``meta["version"]`` the shown one's index. Flipping
swaps a kept version into the row. A reply that was never regenerated has neither key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from halext_desktop.storage.conversations import MessageRow, NotFoundError, _dump_meta
from halext_desktop.storage.db import Database

KEYS = ("versions", "version")


def info(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    """(shown index, count) when the reply has more than one version, else None."""
    versions = meta.get("versions")
    index = meta.get("version")
    if not isinstance(versions, list) or len(versions) < 2 or not isinstance(index, int):
        return None
    if not 0 <= index < len(versions):
        return None
    return index, len(versions)


def own_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A reply's meta without the versions it keeps."""
    return {k: v for k, v in meta.items() if k not in KEYS}


def carried(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Just the versions part of a reply's meta (what a new meta must keep)."""
    return {k: meta[k] for k in KEYS if k in meta}


def snapshot(row: MessageRow) -> dict[str, Any]:
    return {
        "content": row.content,
        "status": row.status,
        "model_ref": row.model_ref,
        "requested_model": row.requested_model,
        "error": row.error,
        "meta": own_meta(row.meta),
        "created_at": row.created_at.isoformat(),
    }


def for_regenerate(replaced: Iterable[MessageRow]) -> dict[str, Any]:
    """The versions part of the meta of a new reply that replaces ``replaced`` (the
    assistant rows after the last user message): every earlier version, then the new one."""
    kept: list[Any] = []
    for row in replaced:
        if row.role != "assistant":
            continue
        earlier = row.meta.get("versions")
        index = row.meta.get("version")
        if isinstance(earlier, list) and isinstance(index, int) and 0 <= index < len(earlier):
            kept.extend(snapshot(row) if i == index else v for i, v in enumerate(earlier))
        else:
            kept.append(snapshot(row))
    kept = [v for v in kept if isinstance(v, Mapping)]
    if not kept:
        return {}
    return {"versions": [*kept, None], "version": len(kept)}


@dataclass(frozen=True, slots=True)
class Flip:
    """The row's new values when version ``index`` is shown."""

    content: str
    status: str
    model_ref: str | None
    requested_model: str | None
    error: str | None
    meta: dict[str, Any]
    created_at: datetime | None


def flip(row: MessageRow, index: int) -> Flip:
    """Show version ``index`` of ``row`` (the current one goes into the kept list).

    Raises:
        ValueError: the reply has no such version.
    """
    current = info(row.meta)
    if current is None:
        raise ValueError("this reply has only one version")
    shown, count = current
    if not 0 <= index < count:
        raise ValueError(f"this reply has versions 1 to {count}")
    versions = list(row.meta["versions"])
    if index == shown:
        target = snapshot(row)
    else:
        target = versions[index]
        if not isinstance(target, Mapping):
            raise ValueError(f"version {index + 1} of this reply is missing")
        versions[shown] = snapshot(row)
    versions[index] = None
    created = target.get("created_at")
    return Flip(
        content=str(target.get("content") or ""),
        status=str(target.get("status") or "ok"),
        model_ref=target.get("model_ref"),
        requested_model=target.get("requested_model"),
        error=target.get("error"),
        meta={**dict(target.get("meta") or {}), "versions": versions, "version": index},
        created_at=datetime.fromisoformat(created) if isinstance(created, str) else None,
    )


def write_flip(db: Database, message_id: int, change: Flip) -> None:
    """Put a flipped version into the row (every column, None included; owner thread)."""
    with db.write() as conn:
        n = conn.sql(
            "UPDATE messages SET content = ?, status = ?, model_ref = ?, requested_model = ?, "
            "error = ?, meta = ? WHERE id = ?",
            (
                change.content,
                change.status,
                change.model_ref,
                change.requested_model,
                change.error,
                _dump_meta(change.meta),
                message_id,
            ),
        ).rowcount
    if n == 0:
        raise NotFoundError(f"There is no message {message_id}")
