"""The local usage log (``ai_usage_logs``): one row per routed request, and its reports.

``UsageLog`` holds the SQL; it runs on the database owner's thread. The router's sink is
``storage.store.QueuedUsage``: it queues each row for the owner and returns at once, so a
locked database delays the row, never the reply (storage.owner).

Report definitions (the usage window and ``halext-desktop usage`` use them):
    requests_by_model   every row but ``blocked`` ones: a request refused by policy sent
                        nothing, so it is no request of the model it named.
    blocked_by_model    the ``blocked`` rows, counted apart.
    latency_by_model    averages over ``ok`` rows only (a failure's latency is the time it
                        took to fail, which would flatter or smear the model's speed).
    error_rate_by_model errors / total, where errors = status ``error`` or ``placeholder``
                        (halext's mock text instead of an answer) and total = every row
                        but ``blocked`` ones. ``cancelled`` (the user pressed Stop) is not
                        the model's fault: not an error, but part of the total;
                        ``outcomes_by_model`` reports each status as its own column.
    tokens_over_time    sums over every row but ``blocked`` ones.
An authentication failure is logged under its route (``halext``), not under a model.

Reports read the rollup (migration 0004: ``usage_monthly``, ``usage_daily``,
``usage_hourly``, kept exact by triggers however rows arrive), not the rows: a range is
the whole months after its start, then the whole days of its first month, the whole hours
of its first day, and the raw rows of its first, partial hour — each row exactly once, by
the same text comparison ``created_at >= since`` a GROUP BY over the rows would make, so
the figures are identical to one (a test compares them), at a few hundred rows read
instead of every row ever logged. A row whose time cannot be read counts in the per-model
reports of "all", in no time bucket.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.db import Database
from halext_desktop.storage.row_values import time_text

if TYPE_CHECKING:
    from sqlalchemy import Row

log = logging.getLogger(__name__)

# Plain SQL on the DBAPI cursor (sqlite3 keeps the statement prepared): about 10 µs a row,
# where SQLAlchemy's insert construct costs ~0.3 ms — time the owner thread holds the GIL
# while a reply streams on the loop thread.
_COLUMNS = (
    "user_id",
    "conversation_id",
    "model_identifier",
    "endpoint",
    "prompt_tokens",
    "response_tokens",
    "total_tokens",
    "latency_ms",
    "created_at",
    "route",
    "requested_model",
    "status",
    "error",
    "ttft_ms",
    "tokens_exact",
    "message_id",
)
_INSERT_SQL = (
    f"INSERT INTO ai_usage_logs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)

SINCE_CHOICES = ("24h", "7d", "30d", "all")
_SINCE_RE = re.compile(r"^(\d{1,5})([hd])$")
_BUCKETS = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}


class ModelCount(NamedTuple):
    """Requests of one model in the window."""

    model: str
    requests: int


class ModelLatency(NamedTuple):
    """Average latency and time to first token of one model's ``ok`` requests (ms)."""

    model: str
    avg_latency_ms: float | None
    avg_ttft_ms: float | None
    requests: int


class ModelErrorRate(NamedTuple):
    """``errors`` (status error) of ``total`` requests, and their ratio."""

    model: str
    errors: int
    total: int
    rate: float


class ModelOutcomes(NamedTuple):
    """Rows of one model by status; ``total`` counts every row, blocked ones included."""

    model: str
    ok: int
    errors: int
    cancelled: int
    blocked: int
    total: int
    placeholder: int = 0


class TokenBucket(NamedTuple):
    """Token sums of one hour or day (UTC)."""

    start: datetime  # UTC start of the hour or day
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    requests: int


def parse_since(text: str, *, now: datetime | None = None) -> datetime | None:
    """``"24h"``, ``"7d"``, ``"30d"`` (any ``<n>h``/``<n>d``) → that long before now
    (UTC); ``"all"`` → None.

    Raises:
        ValueError: anything else; the message lists the allowed values.
    """
    t = text.strip().lower() if isinstance(text, str) else ""
    if t == "all":
        return None
    m = _SINCE_RE.match(t)
    if not m:
        raise ValueError(
            f"{text!r} is not a time range: use one of {', '.join(SINCE_CHOICES)} "
            "(or any <n>h / <n>d)"
        )
    amount = int(m.group(1))
    delta = timedelta(hours=amount) if m.group(2) == "h" else timedelta(days=amount)
    return (now or datetime.now(UTC)) - delta


def _db_time(when: datetime) -> str:
    """A datetime as stored by ``UTCDateTime`` on SQLite (naive UTC text), for raw SQL."""
    text = time_text(when)
    assert text is not None
    return text


def _record_from(r: Row[Any]) -> UsageRecord:
    return UsageRecord(
        id=r.id,
        user_id=r.user_id,
        conversation_id=r.conversation_id,
        model_identifier=r.model_identifier,
        endpoint=r.endpoint,
        prompt_tokens=r.prompt_tokens or 0,
        response_tokens=r.response_tokens or 0,
        total_tokens=r.total_tokens or 0,
        latency_ms=r.latency_ms,
        created_at=r.created_at,
        route=r.route,
        requested_model=r.requested_model,
        status=UsageStatus(r.status),
        error=r.error,
        ttft_ms=r.ttft_ms,
        tokens_exact=bool(r.tokens_exact),
    )


class UsageLog:
    """The SQL of the local ``ai_usage_logs`` table: inserts and reports.

    Like every store it runs on the database owner's thread (``storage.owner``); the router's
    sink is ``storage.store.QueuedUsage``, which queues rows there and never waits.

    Args:
        db: an opened ``Database``.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"UsageLog({self._db!r})"

    # ---- writing -------------------------------------------------------------------------

    @staticmethod
    def _values(row: UsageRecord, message_id: int | None = None) -> tuple[Any, ...]:
        """The row's values in ``_COLUMNS`` order, as SQLAlchemy would store them
        (``created_at`` as naive UTC text, booleans as 0/1)."""
        # The server's rule (halext-api.md §8): total = prompt + response.
        total = row.total_tokens or (row.prompt_tokens or 0) + (row.response_tokens or 0)
        status = row.status.value if isinstance(row.status, UsageStatus) else str(row.status)
        return (
            row.user_id,
            row.conversation_id,
            row.model_identifier,
            row.endpoint,
            row.prompt_tokens or 0,
            row.response_tokens or 0,
            total,
            row.latency_ms,
            _db_time(row.created_at) if row.created_at is not None else None,
            row.route or "",
            row.requested_model or "",
            status,
            row.error,
            row.ttft_ms,
            1 if row.tokens_exact else 0,
            message_id,
        )

    def insert(self, row: UsageRecord, *, message_id: int | None = None) -> int:
        """Write one row (in the caller's transaction when there is one); returns its id.
        ``message_id``: the chat reply the request produced."""
        return self.insert_many([(row, message_id)])[0]

    def insert_many(self, rows: Sequence[tuple[UsageRecord, int | None]]) -> list[int]:
        """Write ``(row, message_id)`` pairs with one prepared INSERT (executemany, ids
        returned in order); returns their ids."""
        if not rows:
            return []
        params = [self._values(row, mid) for row, mid in rows]
        ids: list[int] = []
        with self._db.write() as conn:
            cursor = conn.raw.cursor()
            try:
                for values in params:
                    cursor.execute(_INSERT_SQL, values)
                    ids.append(int(cursor.lastrowid or 0))
            finally:
                cursor.close()
        return ids

    def record(self, row: UsageRecord) -> None:
        """Write ``row`` now and set ``row.id`` (a ``UsageSink`` for code that already runs on
        the owner thread, and for tests; raises what the database raises)."""
        new_id = self.insert(row)
        if not row.total_tokens:
            row.total_tokens = (row.prompt_tokens or 0) + (row.response_tokens or 0)
        row.id = new_id

    def has_row_for_message(self, message_id: int) -> bool:
        """Whether some request is logged as having produced reply ``message_id``."""
        with self._db.read() as conn:
            return (
                conn.sql(
                    "SELECT 1 FROM ai_usage_logs WHERE message_id = ? LIMIT 1", (message_id,)
                ).fetchone()
                is not None
            )

    def clear(self) -> int:
        """Delete every row; returns how many."""
        with self._db.write() as conn:
            return int(conn.sql("DELETE FROM ai_usage_logs").rowcount)

    def prune(self, retention_days: int, *, now: datetime | None = None) -> int:
        """Delete rows older than ``retention_days`` (0 = keep forever); returns how many."""
        if retention_days < 0:
            raise ValueError("retention_days: use 0 (keep forever) or a number of days")
        if retention_days == 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        with self._db.write() as conn:
            return int(
                conn.sql(
                    "DELETE FROM ai_usage_logs WHERE created_at < ?", (_db_time(cutoff),)
                ).rowcount
            )

    # ---- reading -------------------------------------------------------------------------

    def recent(
        self,
        limit: int | None = 200,
        *,
        model: str | None = None,
        route: str | None = None,
        status: UsageStatus | str | None = None,
        since: datetime | None = None,
    ) -> list[UsageRecord]:
        """The newest rows first, optionally filtered (``limit=None``: all of them)."""
        from sqlalchemy import select

        from halext_desktop.storage.models import usage_logs as _t

        stmt = select(_t)
        if model is not None:
            stmt = stmt.where(_t.c.model_identifier == model)
        if route is not None:
            stmt = stmt.where(_t.c.route == route)
        if status is not None:
            stmt = stmt.where(_t.c.status == UsageStatus(status).value)
        if since is not None:
            stmt = stmt.where(_t.c.created_at >= since)
        stmt = stmt.order_by(_t.c.created_at.desc(), _t.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._db.read() as conn:
            return [_record_from(r) for r in conn.execute(stmt)]

    def _union(
        self, since: datetime | None, levels: Sequence[tuple[str, int]], bucket: str | None
    ) -> tuple[str, list[Any]]:
        """SQL of the rows (rollup rows, and raw rows of the first partial period) that hold
        every usage row with ``created_at >= since`` exactly once, as ``model_identifier,
        status, bucket, requests, ...sums``; ``levels`` coarsest first, ``bucket`` the time
        bucket wanted (``hour``/``day``) or None."""
        parts: list[str] = []
        args: list[Any] = []

        def rolled(table: str, length: int) -> str:
            columns = f"model_identifier, status, {_bucket_of(length, bucket)}, {_SUMS}"
            return f"SELECT {columns} FROM {table}"

        if since is None:
            table, length = levels[0]
            return rolled(table, length), args
        start = _db_time(since)
        upper: str | None = None
        for table, length in levels:
            prefix = start[:length]
            if upper is None:
                parts.append(f"{rolled(table, length)} WHERE period > ?")
                args.append(prefix)
            else:
                parts.append(f"{rolled(table, length)} WHERE period > ? AND period < ?")
                args.extend((prefix, upper))
            upper = _after(prefix)
        raw_bucket = f"coalesce(strftime('{_BUCKETS[bucket]}', created_at), '')" if bucket else "''"
        parts.append(
            f"SELECT model_identifier, status, {raw_bucket}, {_RAW_SUMS} FROM ai_usage_logs "
            "WHERE created_at >= ? AND created_at < ?"
        )
        args.extend((start, upper))
        return " UNION ALL ".join(parts), args

    def _by_model(self, since: datetime | None) -> dict[str, dict[str, list[int]]]:
        """model → status → [requests, latency sum, latency count, ttft sum, ttft count]."""
        union, args = self._union(since, _LEVELS, None)
        sql = (
            "SELECT model_identifier, status, sum(requests), sum(latency_sum), "
            f"sum(latency_n), sum(ttft_sum), sum(ttft_n) FROM ({union}) "
            "GROUP BY model_identifier, status"
        )
        out: dict[str, dict[str, list[int]]] = {}
        with self._db.read() as conn:
            for model, status, *sums in conn.exec_driver_sql(sql, tuple(args)):
                out.setdefault(model, {})[status] = [int(v or 0) for v in sums]
        return out

    @staticmethod
    def _count(statuses: dict[str, list[int]], *wanted: str) -> int:
        return sum(v[0] for k, v in statuses.items() if k in wanted)

    @staticmethod
    def _busiest(counts: dict[str, int]) -> list[tuple[str, int]]:
        """Models with a count, the largest first, then by name (as SQLite orders text)."""
        return sorted(((m, n) for m, n in counts.items() if n), key=lambda x: (-x[1], x[0]))

    def requests_by_model(self, since: datetime | None = None) -> list[ModelCount]:
        """``(model, count)`` of the window's requests (every row but blocked ones),
        busiest first."""
        by_model = self._by_model(since)
        counts = {
            m: sum(v[0] for k, v in st.items() if k != UsageStatus.BLOCKED.value)
            for m, st in by_model.items()
        }
        return [ModelCount(m, n) for m, n in self._busiest(counts)]

    def blocked_by_model(self, since: datetime | None = None) -> list[ModelCount]:
        """``(model, count)`` of the window's blocked rows (refused by policy, or a cloud
        reply discarded), most first."""
        by_model = self._by_model(since)
        counts = {m: self._count(st, UsageStatus.BLOCKED.value) for m, st in by_model.items()}
        return [ModelCount(m, n) for m, n in self._busiest(counts)]

    def latency_by_model(self, since: datetime | None = None) -> list[ModelLatency]:
        """``(model, avg latency ms, avg time to first token ms, count)`` over ``ok`` rows;
        averages are None when no row has the measure."""
        ok = {
            m: st[UsageStatus.OK.value]
            for m, st in self._by_model(since).items()
            if UsageStatus.OK.value in st
        }
        order = self._busiest({m: v[0] for m, v in ok.items()})
        return [
            ModelLatency(
                m,
                ok[m][1] / ok[m][2] if ok[m][2] else None,
                ok[m][3] / ok[m][4] if ok[m][4] else None,
                n,
            )
            for m, n in order
        ]

    def outcomes_by_model(self, since: datetime | None = None) -> list[ModelOutcomes]:
        """``(model, ok, errors, cancelled, blocked, total, placeholder)`` per model."""
        by_model = self._by_model(since)
        order = self._busiest({m: sum(v[0] for v in st.values()) for m, st in by_model.items()})
        return [
            ModelOutcomes(
                m,
                self._count(by_model[m], UsageStatus.OK.value),
                self._count(by_model[m], UsageStatus.ERROR.value),
                self._count(by_model[m], UsageStatus.CANCELLED.value),
                self._count(by_model[m], UsageStatus.BLOCKED.value),
                total,
                self._count(by_model[m], UsageStatus.PLACEHOLDER.value),
            )
            for m, total in order
        ]

    def error_rate_by_model(self, since: datetime | None = None) -> list[ModelErrorRate]:
        """``(model, errors, total, rate)``: errors = status ``error`` or ``placeholder``,
        total = every row but blocked ones (see the module docstring). Models with blocked
        rows only have no rate."""
        out = []
        for r in self.outcomes_by_model(since):
            errors, total = r.errors + r.placeholder, r.total - r.blocked
            if total:
                out.append(ModelErrorRate(r.model, errors, total, errors / total))
        return out

    def tokens_over_time(
        self, since: datetime | None = None, bucket: str = "hour"
    ) -> list[TokenBucket]:
        """Token sums of the requests (blocked rows left out) per hour or day (UTC),
        oldest first; empty buckets are omitted."""
        if bucket not in _BUCKETS:
            raise ValueError(f"bucket {bucket!r}: use one of {', '.join(_BUCKETS)}")
        levels = [lv for lv in _LEVELS if lv[1] >= _BUCKET_LENGTH[bucket]]
        union, args = self._union(since, levels, bucket)
        sql = (
            "SELECT bucket, sum(prompt_tokens), sum(response_tokens), sum(total_tokens), "
            f"sum(requests) FROM ({union}) WHERE status != ? AND bucket != '' "
            "GROUP BY bucket ORDER BY bucket"
        )
        with self._db.read() as conn:
            rows = conn.exec_driver_sql(sql, (*args, UsageStatus.BLOCKED.value)).all()
        return [
            TokenBucket(
                datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC),
                int(r[1] or 0),
                int(r[2] or 0),
                int(r[3] or 0),
                int(r[4]),
            )
            for r in rows
        ]


# The rollup's levels (migration 0004), coarsest first: (table, length of the created_at
# prefix it rolls up by).
_LEVELS: tuple[tuple[str, int], ...] = (
    ("usage_monthly", 7),
    ("usage_daily", 10),
    ("usage_hourly", 13),
)
_BUCKET_LENGTH = {"hour": 13, "day": 10}
_SUMS = (
    "requests, prompt_tokens, response_tokens, total_tokens, latency_sum, latency_n, "
    "ttft_sum, ttft_n"
)
# The same of one raw row.
_RAW_SUMS = (
    "1, coalesce(prompt_tokens, 0), coalesce(response_tokens, 0), coalesce(total_tokens, 0), "
    "coalesce(latency_ms, 0), (latency_ms IS NOT NULL), coalesce(ttft_ms, 0), "
    "(ttft_ms IS NOT NULL)"
)


def _bucket_of(length: int, bucket: str | None) -> str:
    """The ``bucket`` column of a rollup level, as the time bucket wanted."""
    if bucket is None:
        return "'' AS bucket"
    if _BUCKET_LENGTH[bucket] == length:
        return "bucket"
    # An hour's bucket ('2026-03-01 14:00:00') gives its day.
    return "CASE WHEN bucket = '' THEN '' ELSE substr(bucket, 1, 10) || ' 00:00:00' END"


def _after(prefix: str) -> str:
    """The least text above every text that starts with ``prefix`` (its last character
    one higher)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
