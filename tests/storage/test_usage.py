"""UsageLog: writing rows, reports that equal hand counts, windows, pruning, lock handling,
and no secret ever landing in the SQLite files."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from halext_desktop.routing.types import UsageRecord, UsageStatus
from halext_desktop.routing.usage_sink import UsageSink
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.paths import db_path
from halext_desktop.storage.secrets import SecretStore
from halext_desktop.storage.settings import Settings, SettingsError
from halext_desktop.storage.usage import UsageLog, parse_since

NOW = datetime.now(UTC)
MODELS = ["ollama:llama3.1:8b", "openai:gpt-4o-mini", "client:3:qwen2.5:7b"]
STATUSES = [
    UsageStatus.OK,
    UsageStatus.OK,
    UsageStatus.ERROR,
    UsageStatus.CANCELLED,
    UsageStatus.BLOCKED,
    UsageStatus.PLACEHOLDER,
]


@pytest.fixture
def db() -> Iterator[Database]:
    with Database() as database:
        yield database


@pytest.fixture
def usage(db: Database) -> UsageLog:
    return UsageLog(db)


def make_rows() -> list[UsageRecord]:
    """A varied, deterministic set: three models, every status, ages from minutes to weeks."""
    rows = []
    for i in range(60):
        status = STATUSES[i % len(STATUSES)]
        rows.append(
            UsageRecord(
                model_identifier=MODELS[(i * 7) % 3],
                endpoint="ollama:/api/chat" if i % 2 else "/ai/chat/stream",
                prompt_tokens=10 + i,
                response_tokens=(3 * i) % 50,
                latency_ms=None if i % 11 == 0 else 100 + 13 * i,
                ttft_ms=None if i % 4 == 0 else 20 + i,
                created_at=NOW - timedelta(hours=i * 9 + 0.5),
                route="ollama" if i % 2 else "halext",
                requested_model=f"ollama/{MODELS[i % 3]}",
                status=status,
                error="Connection refused" if status is UsageStatus.ERROR else None,
                tokens_exact=bool(i % 2),
                conversation_id=i % 4 or None,
            )
        )
    return rows


@pytest.fixture
def rows(usage: UsageLog) -> list[UsageRecord]:
    made = make_rows()
    for row in made:
        usage.record(row)
    return made


def in_window(rows: list[UsageRecord], since: datetime | None) -> list[UsageRecord]:
    return [r for r in rows if since is None or r.created_at >= since]


WINDOWS = ["24h", "7d", "30d", "all"]


def test_is_a_usage_sink(usage: UsageLog) -> None:
    sink: UsageSink = usage
    row = UsageRecord("ollama:llama3.1:8b", "ollama:/api/chat", prompt_tokens=5, response_tokens=7)
    sink.record(row)
    assert row.id is not None
    assert row.total_tokens == 12  # the server's rule: prompt + response
    (back,) = usage.recent()
    assert back == row


def test_round_trip_of_every_field(usage: UsageLog, rows: list[UsageRecord]) -> None:
    back = {r.id: r for r in usage.recent(limit=None)}
    assert len(back) == len(rows)
    for row in rows:
        assert back[row.id] == row


@pytest.mark.parametrize("window", WINDOWS)
def test_requests_by_model_equal_hand_counts(
    usage: UsageLog, rows: list[UsageRecord], window: str
) -> None:
    since = parse_since(window)
    selected = in_window(rows, since)
    # A blocked row sent nothing: it is counted apart, never as a request of its model.
    expected = Counter(r.model_identifier for r in selected if r.status is not UsageStatus.BLOCKED)
    got = usage.requests_by_model(since)
    assert dict(got) == dict(expected)
    assert [n for _, n in got] == sorted((n for _, n in got), reverse=True)
    blocked = Counter(r.model_identifier for r in selected if r.status is UsageStatus.BLOCKED)
    assert dict(usage.blocked_by_model(since)) == dict(blocked)
    assert sum(dict(got).values()) + sum(blocked.values()) == len(selected)


@pytest.mark.parametrize("window", WINDOWS)
def test_latency_by_model_equal_hand_averages(
    usage: UsageLog, rows: list[UsageRecord], window: str
) -> None:
    since = parse_since(window)
    ok = [r for r in in_window(rows, since) if r.status is UsageStatus.OK]
    by_model: dict[str, list[UsageRecord]] = defaultdict(list)
    for r in ok:
        by_model[r.model_identifier].append(r)

    def avg(values: list[int | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    got = {m: (lat, ttft, n) for m, lat, ttft, n in usage.latency_by_model(since)}
    assert set(got) == set(by_model)
    for model, items in by_model.items():
        lat, ttft, n = got[model]
        assert n == len(items)
        assert lat == pytest.approx(avg([r.latency_ms for r in items]))
        assert ttft == pytest.approx(avg([r.ttft_ms for r in items]))


@pytest.mark.parametrize("window", WINDOWS)
def test_error_rates_and_outcomes_equal_hand_counts(
    usage: UsageLog, rows: list[UsageRecord], window: str
) -> None:
    since = parse_since(window)
    selected = in_window(rows, since)
    per: dict[str, Counter[UsageStatus]] = defaultdict(Counter)
    for r in selected:
        per[r.model_identifier][r.status] += 1
    rates = {m: (e, t, rate) for m, e, t, rate in usage.error_rate_by_model(since)}
    outcomes = {o.model: o for o in usage.outcomes_by_model(since)}
    assert set(outcomes) == set(per)
    assert set(rates) == {m for m, c in per.items() if sum(c.values()) > c[UsageStatus.BLOCKED]}
    for model, counts in per.items():
        total = sum(counts.values())
        requests = total - counts[UsageStatus.BLOCKED]
        # halext's placeholder instead of an answer is a failure too.
        errors = counts[UsageStatus.ERROR] + counts[UsageStatus.PLACEHOLDER]
        if requests:
            assert rates[model] == (errors, requests, pytest.approx(errors / requests))
        o = outcomes[model]
        assert (o.ok, o.errors, o.cancelled, o.blocked, o.placeholder, o.total) == (
            counts[UsageStatus.OK],
            counts[UsageStatus.ERROR],
            counts[UsageStatus.CANCELLED],
            counts[UsageStatus.BLOCKED],
            counts[UsageStatus.PLACEHOLDER],
            total,
        )


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_tokens_over_time_equal_hand_sums(
    usage: UsageLog, rows: list[UsageRecord], bucket: str
) -> None:
    since = parse_since("7d")

    def start(t: datetime) -> datetime:
        t = t.replace(minute=0, second=0, microsecond=0)
        return t.replace(hour=0) if bucket == "day" else t

    expected: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in in_window(rows, since):
        if r.status is UsageStatus.BLOCKED:
            continue  # refused by policy: no request, no tokens
        acc = expected[start(r.created_at)]
        acc[0] += r.prompt_tokens
        acc[1] += r.response_tokens
        acc[2] += r.prompt_tokens + r.response_tokens
        acc[3] += 1
    got = usage.tokens_over_time(since, bucket=bucket)
    assert [b.start for b in got] == sorted(expected)
    assert {
        b.start: [b.prompt_tokens, b.response_tokens, b.total_tokens, b.requests] for b in got
    } == (expected)
    with pytest.raises(ValueError, match="hour, day"):
        usage.tokens_over_time(since, bucket="week")


def test_reports_group_in_sql_on_the_indexes(
    db: Database, usage: UsageLog, rows: list[UsageRecord]
) -> None:
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if not statement.startswith("BEGIN"):  # transactions are begun by hand (storage.db)
            statements.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        since = parse_since("7d")
        usage.requests_by_model(since)
        usage.error_rate_by_model(since)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(statements) == 2
    with db.read() as conn:
        for sql, params in statements:
            assert "GROUP BY" in sql
            plan = " ".join(
                str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            )
            assert "ix_ai_usage_logs_created_model_status" in plan, plan


def test_recent_filters_and_order(usage: UsageLog, rows: list[UsageRecord]) -> None:
    newest_first = sorted(rows, key=lambda r: r.created_at, reverse=True)
    assert [r.id for r in usage.recent(limit=5)] == [r.id for r in newest_first[:5]]
    model = MODELS[1]
    assert [r.id for r in usage.recent(limit=None, model=model)] == [
        r.id for r in newest_first if r.model_identifier == model
    ]
    assert [r.id for r in usage.recent(limit=None, route="ollama", status="error")] == [
        r.id for r in newest_first if r.route == "ollama" and r.status is UsageStatus.ERROR
    ]
    since = parse_since("24h")
    assert [r.id for r in usage.recent(since=since)] == [
        r.id for r in newest_first if since is not None and r.created_at >= since
    ]
    with pytest.raises(ValueError):
        usage.recent(status="exploded")


def test_prune_and_clear(usage: UsageLog, rows: list[UsageRecord]) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=10)
    old = [r for r in rows if r.created_at < cutoff]
    assert old
    assert usage.prune(0) == 0
    assert usage.prune(10) == len(old)
    assert len(usage.recent(limit=None)) == len(rows) - len(old)
    with pytest.raises(ValueError, match="retention_days"):
        usage.prune(-1)
    assert usage.clear() == len(rows) - len(old)
    assert usage.recent() == []
    assert usage.requests_by_model(None) == []


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("90d", timedelta(days=90)),
    ],
)
def test_parse_since(text: str, delta: timedelta) -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_since(text, now=now) == now - delta
    assert parse_since("all") is None


@pytest.mark.parametrize("bad", ["", "week", "7", "d7", "-1d", "7 days", "1y"])
def test_parse_since_rejects_with_the_allowed_values(bad: str) -> None:
    with pytest.raises(ValueError, match="24h, 7d, 30d, all"):
        parse_since(bad)


def test_secrets_never_land_in_the_sqlite_files(isolated_home: Path) -> None:
    api_key = "sk-proj-" + "Z9" * 16
    password = "hunter2-" + "p" * 12
    token = "eyJhbGciOiJIUzI1NiJ9." + "t" * 30
    secrets = SecretStore()
    settings = Settings.load()
    settings.set("openai_endpoints", [{"name": "groq", "url": "https://api.groq.com/openai/v1"}])
    secrets.set("openai-key:groq", api_key)
    secrets.set("halext-password:https://org.halext.org/api:dev", password)
    secrets.set("halext-token:https://org.halext.org/api", token)
    with pytest.raises(SettingsError):
        settings.set(
            "openai_endpoints",
            [{"name": "groq", "url": "https://api.groq.com", "api_key": api_key}],
        )
    with Database() as db:
        store = ConversationStore(db)
        usage = UsageLog(db)
        c = store.create("keys", "openai@groq/llama-3.1-8b")
        store.add_message(c.id, "user", "hello")
        store.add_message(c.id, "assistant", "hi", meta={"locality": "cloud", "notes": []})
        for row in make_rows():
            usage.record(row)
        usage.record(
            UsageRecord(
                "openai:x",
                "openai:/chat/completions",
                status=UsageStatus.ERROR,
                error="401 Unauthorized — check the API key",
            )
        )
        db_files = list(db.path.parent.glob(db.path.name + "*"))
        assert any(p.name.endswith("-wal") for p in db_files)  # the WAL is checked too
        for path in [*db_files, *isolated_home.rglob("*.json")]:
            data = path.read_bytes()
            for secret in (api_key, password, token):
                assert secret.encode() not in data, f"{secret[:6]}… found in {path.name}"
    # After close the WAL is merged into the main file: check that as well.
    data = db_path().read_bytes()
    assert b"hello" in data  # the scan can find text that is really there
    for secret in (api_key, password, token):
        assert secret.encode() not in data
