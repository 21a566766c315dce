"""How the providers window writes sizes, context lengths, sources and times (no Qt)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from halext_desktop.routing.types import ModelInfo


def size_text(size: int | None) -> str:
    """``4.7 GB`` (decimal units, as ``ollama list`` prints them)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def context_text(ctx: int | None) -> str:
    """``32k`` for 32768, ``128k`` for 131072 or 128000, ``1M``; odd sizes in full."""
    if not ctx:
        return ""
    for unit, big, small in (("M", 1_000_000, 1_048_576), ("k", 1000, 1024)):
        # Vendors use both: 128,000 (OpenAI) and 131,072 (Llama) both read "128k".
        if ctx >= big and ctx % big == 0:
            return f"{ctx // big}{unit}"
        if ctx >= small and ctx % small == 0:
            return f"{ctx // small}{unit}"
    return f"{ctx:,}"


def source_text(info: ModelInfo) -> str:
    """Where a model comes from: ``ollama · Studio · 22 ms`` for a halext node, else the
    provider (and the server-side source when it differs)."""
    if info.node_name:
        latency = f" · {info.latency_ms} ms" if info.latency_ms is not None else ""
        return f"{info.source} · {info.node_name}{latency}"
    return info.source if info.source == info.provider else f"{info.provider} ({info.source})"


def time_text(when: datetime | None) -> str:
    """``21:04:13`` in local time; "" when never."""
    return when.astimezone().strftime("%H:%M:%S") if when else ""


def seen_text(value: Any) -> str:
    """A node's ``last_seen_at`` (ISO, naive = UTC) in local time, or "never"."""
    if not value:
        return "never"
    if not isinstance(value, str):
        return str(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M")
