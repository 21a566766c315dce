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
All grouping happens in SQL over the (created_at, model_identifier, status) index.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, delete, select

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.db import Database
from halext_desktop.storage.models import usage_logs

log = logging.getLogger(__name__)

_t = usage_logs

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
REPORT_INDEX = "ix_ai_usage_logs_created_model_status"


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
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


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
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for values in params:
                    cursor.execute(_INSERT_SQL, values)
                    ids.append(int(cursor.lastrowid))
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
                conn.execute(select(_t.c.id).where(_t.c.message_id == message_id).limit(1)).first()
                is not None
            )

    def clear(self) -> int:
        """Delete every row; returns how many."""
        with self._db.write() as conn:
            return int(conn.execute(delete(_t)).rowcount)

    def prune(self, retention_days: int, *, now: datetime | None = None) -> int:
        """Delete rows older than ``retention_days`` (0 = keep forever); returns how many."""
        if retention_days < 0:
            raise ValueError("retention_days: use 0 (keep forever) or a number of days")
        if retention_days == 0:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        with self._db.write() as conn:
            return int(conn.execute(delete(_t).where(_t.c.created_at < cutoff)).rowcount)

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

    def _report(
        self,
        columns: str,
        since: datetime | None,
        *,
        group_by: str,
        order_by: str,
        where: str = "",
        params: tuple[Any, ...] = (),
    ) -> list[tuple[Any, ...]]:
        """One GROUP BY over the window. ``INDEXED BY`` pins the composite index: without
        statistics SQLite prefers the model_identifier index (to skip a sort) and then
        reads every row ever logged, whatever the window."""
        conds: list[str] = []
        args: list[Any] = []
        if since is not None:
            conds.append("created_at >= ?")
            args.append(_db_time(since))
        if where:
            conds.append(where)
            args.extend(params)
        # Without a window every row is read anyway: let SQLite choose (the model_identifier
        # index then saves the GROUP BY's sort, about 7x faster over a million rows).
        hint = f" INDEXED BY {REPORT_INDEX}" if since is not None else ""
        sql = f"SELECT {columns} FROM ai_usage_logs{hint}"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += f" GROUP BY {group_by} ORDER BY {order_by}"
        with self._db.read() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, tuple(args))]

    def requests_by_model(self, since: datetime | None = None) -> list[ModelCount]:
        """``(model, count)`` of the window's requests (every row but blocked ones),
        busiest first."""
        rows = self._report(
            "model_identifier, count(*) AS n",
            since,
            where="status != ?",
            params=(UsageStatus.BLOCKED.value,),
            group_by="model_identifier",
            order_by="n DESC, model_identifier",
        )
        return [ModelCount(r[0], int(r[1])) for r in rows]

    def blocked_by_model(self, since: datetime | None = None) -> list[ModelCount]:
        """``(model, count)`` of the window's blocked rows (refused by policy, or a cloud
        reply discarded), most first."""
        rows = self._report(
            "model_identifier, count(*) AS n",
            since,
            where="status = ?",
            params=(UsageStatus.BLOCKED.value,),
            group_by="model_identifier",
            order_by="n DESC, model_identifier",
        )
        return [ModelCount(r[0], int(r[1])) for r in rows]

    def latency_by_model(self, since: datetime | None = None) -> list[ModelLatency]:
        """``(model, avg latency ms, avg time to first token ms, count)`` over ``ok`` rows;
        averages are None when no row has the measure."""
        rows = self._report(
            "model_identifier, avg(latency_ms), avg(ttft_ms), count(*) AS n",
            since,
            where="status = ?",
            params=(UsageStatus.OK.value,),
            group_by="model_identifier",
            order_by="n DESC, model_identifier",
        )
        return [
            ModelLatency(
                r[0],
                float(r[1]) if r[1] is not None else None,
                float(r[2]) if r[2] is not None else None,
                int(r[3]),
            )
            for r in rows
        ]

    def _outcome_rows(self, since: datetime | None) -> list[tuple[Any, ...]]:
        # One SUM(status = ?) per outcome; SQLite comparisons yield 0/1.
        statuses = (
            UsageStatus.OK,
            UsageStatus.ERROR,
            UsageStatus.CANCELLED,
            UsageStatus.BLOCKED,
            UsageStatus.PLACEHOLDER,
        )
        sums = ", ".join(f"sum(status = '{s.value}')" for s in statuses)
        return self._report(
            f"model_identifier, {sums}, count(*) AS n",
            since,
            group_by="model_identifier",
            order_by="n DESC, model_identifier",
        )

    def error_rate_by_model(self, since: datetime | None = None) -> list[ModelErrorRate]:
        """``(model, errors, total, rate)``: errors = status ``error`` or ``placeholder``,
        total = every row but blocked ones (see the module docstring). Models with blocked
        rows only have no rate."""
        out = []
        for r in self._outcome_rows(since):
            errors, total = int(r[2]) + int(r[5]), int(r[6]) - int(r[4])
            if total:
                out.append(ModelErrorRate(r[0], errors, total, errors / total))
        return out

    def outcomes_by_model(self, since: datetime | None = None) -> list[ModelOutcomes]:
        """``(model, ok, errors, cancelled, blocked, total, placeholder)`` per model."""
        return [
            ModelOutcomes(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[6]), int(r[5]))
            for r in self._outcome_rows(since)
        ]

    def tokens_over_time(
        self, since: datetime | None = None, bucket: str = "hour"
    ) -> list[TokenBucket]:
        """Token sums of the requests (blocked rows left out) per hour or day (UTC),
        oldest first; empty buckets are omitted."""
        fmt = _BUCKETS.get(bucket)
        if fmt is None:
            raise ValueError(f"bucket {bucket!r}: use one of {', '.join(_BUCKETS)}")
        rows = self._report(
            f"strftime('{fmt}', created_at) AS bucket, coalesce(sum(prompt_tokens), 0), "
            "coalesce(sum(response_tokens), 0), coalesce(sum(total_tokens), 0), count(*)",
            since,
            where="status != ?",
            params=(UsageStatus.BLOCKED.value,),
            group_by="bucket",
            order_by="bucket",
        )
        return [
            TokenBucket(
                datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC),
                int(r[1]),
                int(r[2]),
                int(r[3]),
                int(r[4]),
            )
            for r in rows
        ]
