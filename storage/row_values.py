"""Values the tables hold, without SQLAlchemy: the message roles and statuses, now, and
date/time text as SQLAlchemy's SQLite ``DateTime`` writes and reads it.

Plain-SQL statements (``storage.connection``) and Core statements (``storage.models``)
write the same rows, so a time must be the same text whichever wrote it: naive UTC,
``YYYY-MM-DD HH:MM:SS.ffffff`` (a test holds this byte-identical to SQLAlchemy's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

MESSAGE_ROLES = ("user", "assistant", "system")
# "placeholder": halext's mock text stood in for a model that did not work (shown with a
# warning, never sent back as history).
MESSAGE_STATUSES = (
    "ok",
    "pending",
    "streaming",
    "stopped",
    "error",
    "blocked",
    "placeholder",
    "interrupted",  # the app stopped (crash, kill, shutdown) before the reply ended
)
# Replies still being written by some process: the rows crash recovery looks at.
LIVE_STATUSES = ("pending", "streaming")


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def naive_utc(value: datetime) -> datetime:
    """``value`` as naive UTC (SQLite has no time zones): naive values are taken to be UTC
    already; aware ones are converted."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def time_text(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite ``DateTime`` (through ``models.UTCDateTime``) stores
    for ``value``."""
    if value is None:
        return None
    v = naive_utc(value)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def from_time_text(value: Any) -> datetime:
    """A stored time (text, or a datetime SQLAlchemy already parsed) as aware UTC; text
    that is not a time reads as ``datetime.min`` rather than losing the row."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
