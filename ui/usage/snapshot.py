"""One consistent read of the usage log for the window: the range's reports and the newest
rows that pass the table's filters. No Qt here: it runs on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from halext_desktop.routing.types import UsageRecord
from halext_desktop.storage.usage import (
    ModelCount,
    ModelErrorRate,
    ModelLatency,
    TokenBucket,
    UsageLog,
    parse_since,
)

# (key for storage.usage.parse_since, button text, phrase for sentences)
RANGES: tuple[tuple[str, str, str], ...] = (
    ("24h", "24 h", "in the last 24 hours"),
    ("7d", "7 d", "in the last 7 days"),
    ("30d", "30 d", "in the last 30 days"),
    ("all", "All", "recorded"),
)
DEFAULT_RANGE = "24h"
ROW_LIMIT = 1000  # newest rows the table holds; the charts always cover the whole range


def bucket_for(range_key: str) -> str:
    """Hourly points for the last day, daily ones for longer ranges."""
    return "hour" if range_key == "24h" else "day"


def range_phrase(range_key: str) -> str:
    return next((p for k, _, p in RANGES if k == range_key), range_key)


@dataclass(frozen=True, slots=True)
class UsageFilters:
    """The table's filters; ``None`` means any."""

    model: str | None = None
    route: str | None = None
    status: str | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.model, self.route, self.status))


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """One consistent read of the reports and the table rows for a range and filters."""

    range_key: str
    since: datetime | None
    bucket: str
    filters: UsageFilters
    requests: list[ModelCount]
    latency: list[ModelLatency]
    errors: list[ModelErrorRate]
    tokens: list[TokenBucket]
    rows: list[UsageRecord]
    routes: list[str] = field(default_factory=list)  # routes of the range's newest rows
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    blocked: list[ModelCount] = field(default_factory=list)  # counted apart from requests
    # The log has rows outside the range (a longer range would show something).
    has_older: bool = False

    @property
    def total(self) -> int:
        """Requests in the range (blocked ones are not requests), whatever the table
        filters."""
        return sum(c.requests for c in self.requests)

    @property
    def blocked_total(self) -> int:
        """Requests refused by policy in the range: nothing was sent."""
        return sum(c.requests for c in self.blocked)


def read_snapshot(
    usage: UsageLog,
    range_key: str,
    filters: UsageFilters,
    *,
    limit: int = ROW_LIMIT,
    now: datetime | None = None,
) -> UsageSnapshot:
    """Run every report for the range, and the filtered newest rows (blocking: call it
    on a worker thread)."""
    now = now or datetime.now(UTC)
    since = parse_since(range_key, now=now)
    bucket = bucket_for(range_key)
    rows = usage.recent(
        limit, model=filters.model, route=filters.route, status=filters.status, since=since
    )
    # The route filter offers the routes of the whole range, not only of the rows another
    # filter left (or choosing a model would hide the other routes from the route box).
    unfiltered = usage.recent(limit, since=since) if filters.active else rows
    routes = sorted({r.route for r in unfiltered if r.route})
    requests = usage.requests_by_model(since)
    blocked = usage.blocked_by_model(since)
    # Nothing in the range: is there anything at all? ("Try a longer range" only then.)
    empty = not any(c.requests for c in requests) and not any(c.requests for c in blocked)
    has_older = since is not None and empty and bool(usage.recent(1))
    return UsageSnapshot(
        range_key=range_key,
        since=since,
        bucket=bucket,
        filters=filters,
        requests=requests,
        latency=usage.latency_by_model(since),
        errors=usage.error_rate_by_model(since),
        tokens=usage.tokens_over_time(since, bucket),
        rows=rows,
        routes=routes,
        read_at=now,
        blocked=blocked,
        has_older=has_older,
    )
