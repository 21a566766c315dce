"""Where the router sends its one usage row per request (storage implements it)."""

from __future__ import annotations

from typing import Protocol

from halext_desktop.routing.types import UsageRecord


class UsageSink(Protocol):
    def record(self, row: UsageRecord) -> None:
        """Persist one row. Called from the router's loop thread; must not raise for I/O
        hiccups that would otherwise lose the reply (log and keep the row in memory)."""
        ...


class MemoryUsageSink:
    """A sink that keeps rows in a list: for tests and for the CLI's --json echo."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []

    def record(self, row: UsageRecord) -> None:
        self.rows.append(row)
