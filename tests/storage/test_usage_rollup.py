"""The usage rollup (migration 0004): every report answered from it equals a GROUP BY over
the raw rows, however the rows arrived — the app's inserts, another program's SQL in other
time formats, edits, deletions, retention, a clear, and rows an older version left behind
before the upgrade."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, event

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.storage.db import Database, alembic_config
from halext_desktop.storage.usage import UsageLog, parse_since

NOW = datetime.now(UTC).replace(microsecond=123456)
MODELS = ["ollama:llama3.1:8b", "openai:gpt-4o-mini", "client:3:qwen2.5:7b", ""]
STATUSES = ["ok", "ok", "error", "cancelled", "blocked", "placeholder", "ok"]
ROLLUPS = ("usage_hourly", "usage_daily", "usage_monthly")


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def app_rows(count: int, *, seed: int = 0) -> list[UsageRecord]:
    """Rows as the router logs them, spread over ~100 days, some minutes apart."""
    out = []
    for i in range(count):
        k = i + seed
        out.append(
            UsageRecord(
                model_identifier=MODELS[(k * 7) % len(MODELS)],
                endpoint="ollama:/api/chat",
                prompt_tokens=(k * 13) % 500,
                response_tokens=(k * 29) % 300,
                latency_ms=None if k % 9 == 0 else 50 + (k * 37) % 4000,
                ttft_ms=None if k % 5 == 0 else 10 + (k * 11) % 700,
                created_at=NOW - timedelta(minutes=k * 97 + (k % 13)),
                route=["ollama", "halext", "openai"][k % 3],
                requested_model="ollama/x",
                status=UsageStatus(STATUSES[k % len(STATUSES)]),
            )
        )
    return out


def foreign_rows(conn: Any) -> None:
    """Rows written by another program: seconds without a fraction, an ISO 'T', a time no
    date function reads, NULL measures and tokens."""
    sql = (
        "INSERT INTO ai_usage_logs (model_identifier, endpoint, prompt_tokens, "
        "response_tokens, total_tokens, latency_ms, ttft_ms, created_at, route, "
        "requested_model, status, tokens_exact) VALUES (?, 'x', ?, ?, ?, ?, ?, ?, ?, '', ?, 0)"
    )
    rows = [
        (
            "ollama:llama3.1:8b",
            5,
            6,
            11,
            300,
            40,
            (NOW - timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"),
            "ollama",
            "ok",
        ),
        (
            "openai:gpt-4o-mini",
            None,
            None,
            None,
            None,
            None,
            (NOW - timedelta(days=2, minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"),
            "openai",
            "ok",
        ),
        ("ollama:llama3.1:8b", 1, 2, 3, 90, None, "not a time", "ollama", "error"),
        ("legacy", 7, 8, 15, 120, 33, "2019-12-31 23:59:59.999999", "halext", "ok"),
    ]
    for r in rows:
        conn.exec_driver_sql(sql, r)


# ---- the reference: GROUP BY over the raw rows (the reports' definitions) ------------------


def raw_reports(db: Database, since: datetime | None) -> dict[str, Any]:
    where, args = ("WHERE created_at >= ?", (stamp(since),)) if since else ("", ())

    def q(sql: str, *extra: Any) -> list[tuple[Any, ...]]:
        with db.read() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, (*args, *extra))]

    def and_(cond: str) -> str:
        return f"{where} AND {cond}" if where else f"WHERE {cond}"

    out: dict[str, Any] = {
        "requests": q(
            f"SELECT model_identifier, count(*) AS n FROM ai_usage_logs {and_('status != ?')} "
            "GROUP BY model_identifier ORDER BY n DESC, model_identifier",
            "blocked",
        ),
        "blocked": q(
            f"SELECT model_identifier, count(*) AS n FROM ai_usage_logs {and_('status = ?')} "
            "GROUP BY model_identifier ORDER BY n DESC, model_identifier",
            "blocked",
        ),
        "latency": q(
            "SELECT model_identifier, avg(latency_ms), avg(ttft_ms), count(*) AS n "
            f"FROM ai_usage_logs {and_('status = ?')} GROUP BY model_identifier "
            "ORDER BY n DESC, model_identifier",
            "ok",
        ),
        "outcomes": q(
            "SELECT model_identifier, sum(status = 'ok'), sum(status = 'error'), "
            "sum(status = 'cancelled'), sum(status = 'blocked'), count(*) AS n, "
            f"sum(status = 'placeholder') FROM ai_usage_logs {where} GROUP BY model_identifier "
            "ORDER BY n DESC, model_identifier"
        ),
    }
    for bucket, fmt in (("hour", "%Y-%m-%d %H:00:00"), ("day", "%Y-%m-%d 00:00:00")):
        out[bucket] = q(
            f"SELECT strftime('{fmt}', created_at) AS b, coalesce(sum(prompt_tokens), 0), "
            "coalesce(sum(response_tokens), 0), coalesce(sum(total_tokens), 0), count(*) "
            f"FROM ai_usage_logs {and_('status != ?')} AND b IS NOT NULL GROUP BY b ORDER BY b",
            "blocked",
        )
    return out


def rolled_reports(usage: UsageLog, since: datetime | None) -> dict[str, Any]:
    def when(t: datetime) -> str:
        return t.strftime("%Y-%m-%d %H:%M:%S")

    return {
        "requests": [tuple(r) for r in usage.requests_by_model(since)],
        "blocked": [tuple(r) for r in usage.blocked_by_model(since)],
        "latency": [tuple(r) for r in usage.latency_by_model(since)],
        "outcomes": [tuple(r) for r in usage.outcomes_by_model(since)],
        "hour": [(when(b.start), *b[1:]) for b in usage.tokens_over_time(since, "hour")],
        "day": [(when(b.start), *b[1:]) for b in usage.tokens_over_time(since, "day")],
    }


def windows() -> list[datetime | None]:
    """The usual ranges, and starts on and around hour, day and month boundaries."""
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    month = day.replace(day=1)
    out: list[datetime | None] = [parse_since(w) for w in ("24h", "7d", "30d", "all")]
    out += [hour, hour - timedelta(microseconds=1), day, day + timedelta(minutes=1), month]
    out += [month - timedelta(days=40, minutes=17), datetime(2019, 12, 31, 23, 59, tzinfo=UTC)]
    out += [NOW - timedelta(minutes=97 * 5 + 5)]  # exactly a row's time
    return out


def assert_reports_equal(db: Database, usage: UsageLog) -> None:
    for since in windows():
        assert rolled_reports(usage, since) == raw_reports(db, since), since


@pytest.fixture
def db() -> Iterator[Database]:
    with Database() as database:
        yield database


def test_reports_from_the_rollup_equal_a_group_by_on_the_rows(db: Database) -> None:
    usage = UsageLog(db)
    usage.insert_many([(r, None) for r in app_rows(1500)])
    assert_reports_equal(db, usage)
    # Another program's rows, edits and deletions: the triggers follow each of them.
    with db.write() as conn:
        foreign_rows(conn)
    assert_reports_equal(db, usage)
    with db.write() as conn:
        conn.exec_driver_sql(
            "UPDATE ai_usage_logs SET status = 'error', prompt_tokens = prompt_tokens + 1, "
            "latency_ms = NULL WHERE id % 7 = 3"
        )
        conn.exec_driver_sql(
            "UPDATE ai_usage_logs SET created_at = ? WHERE id % 11 = 2", (stamp(NOW),)
        )
        conn.exec_driver_sql("UPDATE ai_usage_logs SET error = 'noted' WHERE id % 5 = 1")
        conn.exec_driver_sql("DELETE FROM ai_usage_logs WHERE id % 17 = 0")
    assert_reports_equal(db, usage)
    assert usage.prune(30) > 0
    assert_reports_equal(db, usage)
    usage.clear()
    assert_reports_equal(db, usage)
    with db.read() as conn:
        for table in ROLLUPS:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0


def test_reports_over_all_time_read_no_usage_row(db: Database) -> None:
    """ "All" is answered from the monthly rollup alone: its cost does not grow with rows."""
    usage = UsageLog(db)
    usage.insert_many([(r, None) for r in app_rows(50)])
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        rolled_reports(usage, None)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert reads and all("ai_usage_logs" not in s for s in reads), reads


def test_the_upgrade_rolls_up_the_rows_an_older_version_wrote(isolated_home: Path) -> None:
    path = isolated_home / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
            cols = (
                "model_identifier, endpoint, prompt_tokens, response_tokens, total_tokens, "
                "latency_ms, ttft_ms, created_at, route, requested_model, status, tokens_exact"
            )
            for r in app_rows(400, seed=5):
                conn.exec_driver_sql(
                    f"INSERT INTO ai_usage_logs ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
                    (
                        r.model_identifier,
                        r.endpoint,
                        r.prompt_tokens,
                        r.response_tokens,
                        r.prompt_tokens + r.response_tokens,
                        r.latency_ms,
                        r.ttft_ms,
                        stamp(r.created_at),
                        r.route,
                        r.requested_model,
                        r.status.value,
                    ),
                )
            foreign_rows(conn)
    finally:
        engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT count(*) FROM ai_usage_logs").fetchone()[0] == 404
    with Database(path, backups=isolated_home / "backups") as db:
        usage = UsageLog(db)
        with db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM usage_monthly").scalar()
        assert_reports_equal(db, usage)
        usage.insert_many([(r, None) for r in app_rows(100, seed=900)])
        assert_reports_equal(db, usage)
