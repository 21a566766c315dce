"""Sizes, speeds and durations as the Models window and ``halext-desktop pull`` write them.

Decimal units, as ``ollama list`` and ollama.com quote model sizes ("4.7 GB"). No Qt here,
so the window and the command line say the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_bytes(size: int | float | None) -> str:
    """``4.7 GB``, ``815 MB``, ``96 B``; "" when unknown."""
    if size is None or size < 0:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit in ("B", "KB", "MB"):
                return f"{value:.0f} {unit}"
            return f"{value:.1f} {unit}"
        value /= 1000
    return ""  # pragma: no cover (the loop always returns)


def format_rate(bytes_per_second: float | None) -> str:
    """``12 MB/s``; "" when unknown."""
    if bytes_per_second is None:
        return ""
    return f"{format_bytes(bytes_per_second)}/s"


def format_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 5 min``; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_until(when: datetime | None, now: datetime | None = None) -> str:
    """How long a loaded model stays in memory: ``in 4 min``, ``until stopped`` (keep_alive
    < 0, which Ollama shows as ~292 years), ``expiring``; "" when unknown."""
    if when is None:
        return ""
    if when.year >= 2200:
        return "until stopped"
    now = now or datetime.now(UTC)
    left = (when - now).total_seconds()
    if left <= 0:
        return "expiring"
    return f"in {format_duration(left)}"


def format_processor(size: int, vram: int) -> str:
    """Where a loaded model runs, as ``ollama ps`` says it: ``100% GPU``, ``100% CPU``,
    ``48%/52% CPU/GPU``."""
    if size <= 0:
        return ""
    gpu = round(100 * vram / size)
    if gpu >= 100:
        return "100% GPU"
    if gpu <= 0:
        return "100% CPU"
    return f"{100 - gpu}%/{gpu}% CPU/GPU"
