"""How fast are the usage dashboard's reports over a million usage rows?

Creates a temporary database with ``storage.db.Database.open()`` (so the schema and its
indexes come from the real migrations), bulk-inserts synthetic rows with sqlite3 directly
into ``ai_usage_logs`` (spread over the last 120 days, a dozen models, the four statuses),
then times the three per-model reports through ``storage.usage.UsageLog`` over "all" and
"7d", next to the same GROUP BY run with plain sqlite3 on the same file in the same
process. Prints each best-of-N time and the ratio storage / raw. No assertions: a benchmark
reports, it does not judge (it does say whether both gave the same numbers).

    .venv/bin/python bench/bench_usage_report.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from halext_desktop.storage.db import Database  # noqa: E402
from halext_desktop.storage.usage import UsageLog, parse_since  # noqa: E402

MODELS: tuple[tuple[str, str, bool], ...] = (
    # (model_identifier, route, exact token counts)
    ("llama3.1:8b", "ollama", True),
    ("qwen2.5:7b", "ollama", True),
    ("qwen3:4b", "ollama", True),
    ("qwen2.5-coder:14b", "ollama@studio", True),
    ("llama3.3:70b", "ollama@studio", True),
    ("openai:gpt-4o-mini", "halext", False),
    ("openai:gpt-4o", "halext", False),
    ("gemini:gemini-2.5-flash", "halext", False),
    ("client:3:qwen2.5:7b", "halext", False),
    ("mock:llama3.1", "halext", False),
    ("llama-3.1-8b-instant", "openai@groq", True),
    ("gpt-4o-mini", "openai@openai", True),
)
STATUSES = ("ok",) * 90 + ("error",) * 5 + ("cancelled",) * 4 + ("blocked",)
DAYS = 120
INSERT_SQL = (
    "INSERT INTO ai_usage_logs (user_id, conversation_id, model_identifier, endpoint,"
    " prompt_tokens, response_tokens, total_tokens, latency_ms, created_at, route,"
    " requested_model, status, error, ttft_ms, tokens_exact)"
    " VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ENDPOINTS = {"halext": "/ai/chat/stream", "ollama": "/api/chat", "openai": "/chat/completions"}

# The same reports as storage.usage, written plainly (the planner picks its own index).
RAW_SQL = {
    "requests_by_model": (
        "SELECT model_identifier, count(*) AS n FROM ai_usage_logs {where}"
        " GROUP BY model_identifier ORDER BY n DESC, model_identifier"
    ),
    "latency_by_model": (
        "SELECT model_identifier, avg(latency_ms), avg(ttft_ms), count(*) AS n"
        " FROM ai_usage_logs {where_ok} GROUP BY model_identifier"
        " ORDER BY n DESC, model_identifier"
    ),
    "error_rate_by_model": (
        "SELECT model_identifier, sum(status = 'error'), count(*) AS n FROM ai_usage_logs"
        " {where} GROUP BY model_identifier ORDER BY n DESC, model_identifier"
    ),
}


def synthetic_rows(n: int, now: datetime, seed: int = 7) -> Any:
    """``n`` parameter tuples for INSERT_SQL, oldest to newest (as a log grows)."""
    rnd = random.Random(seed)
    span_s = DAYS * 86_400
    for i in range(n):
        model, route, exact = MODELS[rnd.randrange(len(MODELS))]
        status = STATUSES[rnd.randrange(len(STATUSES))]
        when = now - timedelta(seconds=span_s * (1 - i / n) + rnd.random())
        prompt = rnd.randrange(10, 2000)
        response = rnd.randrange(0, 1500) if status == "ok" else rnd.randrange(0, 50)
        latency = rnd.randrange(80, 9000) if status != "blocked" else None
        ttft = rnd.randrange(20, latency) if latency is not None and status == "ok" else None
        yield (
            rnd.randrange(1, 500),
            model,
            ENDPOINTS[route.split("@")[0]],
            prompt,
            response,
            prompt + response,
            latency,
            # How storage's UTCDateTime lands in SQLite: naive UTC text with microseconds.
            when.strftime("%Y-%m-%d %H:%M:%S.%f"),
            route,
            f"{route}/{model}",
            status,
            "synthetic failure" if status == "error" else None,
            ttft,
            1 if exact else 0,
        )


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs (seconds) and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def raw_report(conn: sqlite3.Connection, name: str, since: datetime | None) -> list[tuple]:
    params: tuple[Any, ...] = ()
    where, where_ok = "", "WHERE status = 'ok'"
    if since is not None:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        where = "WHERE created_at >= ?"
        where_ok = "WHERE status = 'ok' AND created_at >= ?"
        params = (stamp,)
    sql = RAW_SQL[name].format(where=where, where_ok=where_ok)
    return conn.execute(sql, params).fetchall()


def same_numbers(name: str, ours: list[Any], raw: list[tuple]) -> bool:
    """Do the storage report and the raw query agree (models, counts, averages)?"""
    if name == "requests_by_model":
        return [(r.model, r.requests) for r in ours] == [(m, n) for m, n in raw]
    if name == "latency_by_model":

        def close(a: float | None, b: float | None) -> bool:
            return (a is None and b is None) or (
                a is not None and b is not None and abs(a - b) < 1e-6
            )

        return len(ours) == len(raw) and all(
            o.model == r[0]
            and close(o.avg_latency_ms, r[1])
            and close(o.avg_ttft_ms, r[2])
            and o.requests == r[3]
            for o, r in zip(ours, raw, strict=True)
        )
    return [(r.model, r.errors, r.total) for r in ours] == [tuple(x) for x in raw]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="halext-bench-") as tmp:
        # Keep everything (settings, backups) inside the temporary directory.
        os.environ["HALEXT_DESKTOP_HOME"] = tmp
        path = Path(tmp) / "usage-bench.db"
        db = Database(path, backups=Path(tmp) / "backups")
        db.open()
        now = datetime.now(UTC)

        t0 = time.perf_counter()
        raw = sqlite3.connect(path)
        with raw:  # one transaction for the whole bulk insert
            raw.executemany(INSERT_SQL, synthetic_rows(args.rows, now))
        insert_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        print(f"inserted {args.rows:,} rows in {insert_s:.1f} s ({size_mb:.0f} MB at {path.name})")

        usage = UsageLog(db)
        print(
            f"\n{'report':<22} {'range':<5} {'storage.usage':>14} {'raw sqlite3':>12}"
            f" {'ratio':>7}  same numbers"
        )
        for name in RAW_SQL:
            for key in ("all", "7d"):
                since = parse_since(key, now=now)
                report: Callable[[datetime | None], list[Any]] = getattr(usage, name)
                ours_s, ours = best_of(args.repeat, lambda r=report, s=since: r(s))  # type: ignore[misc]
                raw_s, rows = best_of(
                    args.repeat,
                    lambda n=name, s=since: raw_report(raw, n, s),  # type: ignore[misc]
                )
                ratio = ours_s / raw_s if raw_s > 0 else float("inf")
                print(
                    f"{name:<22} {key:<5} {ours_s * 1000:>11.1f} ms {raw_s * 1000:>9.1f} ms"
                    f" {ratio:>6.2f}x  {same_numbers(name, ours, rows)}"
                )
        raw.close()
        db.close()


if __name__ == "__main__":
    main()
