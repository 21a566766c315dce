"""Reports and search at a million rows, vs the same on an empty database.

Over a copy of the big database (``bench/bigdb.py``: 1,000,000 usage rows, 1,000,000
messages in 10,000 conversations) and an empty one, interleaved:

- the usage dashboard's refresh: ``read_snapshot`` (every report of the range and the table's
  newest rows) through the database owner, as the window runs it, for each range;
- ``halext-desktop usage --since all`` as a whole process;
- search, as the sidebar runs it (``Conversations.search`` through the owner): a common
  word, a rare word, two words, a word nobody wrote, two-letter strings; and typing (each
  prefix of a word sent 60 ms apart, as keystrokes come: the time from the last keystroke
  to its results);
- the full-text index's size per 100,000 messages (``dbstat``).

    .venv/bin/python bench/bench_reports.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    GoalRow,
    Spread,
    app_env,
    app_home,
    interleave,
    report,
    timed_run,
)
from bigdb import COMMON_WORD, RARE_WORD, big_db  # noqa: E402

from halext_desktop.storage.db import Database  # noqa: E402
from halext_desktop.storage.store import Storage  # noqa: E402

RANGES = ("all", "30d", "7d", "24h")
QUERIES = (
    COMMON_WORD,
    RARE_WORD,
    "plan week",
    "xylophonic",
    "pl",
    "42",
)
TYPED = "deadline"


def open_storage(home: Path) -> Storage:
    storage = Storage(Database(home / "data" / "halext.db", backups=home / "data" / "backups"))
    storage.wait_open()
    return storage


def snapshot_timer(storage: Storage, key: str) -> Callable[[], float]:
    from halext_desktop.ui.usage.snapshot import UsageFilters, read_snapshot

    def once() -> float:
        t0 = time.perf_counter()
        storage.owner.call(read_snapshot, storage.owner.usage, key, UsageFilters(), timeout=120)
        return time.perf_counter() - t0

    return once


def search_timer(
    storage: Storage, query: str, hits: dict[str, int], totals: dict[str, list[float]]
) -> Callable[[], float]:
    """The time to the first results the sidebar shows (``search_stream``'s first answer
    that holds any, or its end); the time to the whole answer goes into ``totals``."""

    async def run() -> tuple[float, float, int]:
        t0 = time.perf_counter()
        first: float | None = None
        found: list[Any] = []
        async for found, done in storage.conversations.search_stream(query):
            if first is None and (found or done):
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        return first if first is not None else total, total, len(found)

    def once() -> float:
        first, total, n = asyncio.run(run())
        hits[query] = n
        totals.setdefault(query, []).append(total)
        return first

    return once


def typing_timer(storage: Storage) -> Callable[[], float]:
    """Each prefix of TYPED sent 60 ms apart as its own search (the sidebar sends one per
    pause in typing); returns the time from the last one to its results."""

    async def typing() -> float:
        tasks = []
        for i in range(1, len(TYPED) + 1):
            tasks.append(asyncio.ensure_future(_quiet(storage.conversations.search(TYPED[:i]))))
            if i < len(TYPED):
                await asyncio.sleep(0.06)
        t0 = time.perf_counter()
        await tasks[-1]
        took = time.perf_counter() - t0
        await asyncio.gather(*tasks)
        return took

    return lambda: asyncio.run(typing())


async def _quiet(coro: Any) -> Any:
    try:
        return await coro
    except Exception as exc:  # a search overtaken by a newer one may end early
        return exc


def fts_size(path: Path) -> tuple[float, int]:
    """The full-text index's bytes per 100,000 messages, and the share of the file."""
    with sqlite3.connect(path) as conn:
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        fts = conn.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'messages_fts%'"
        ).fetchone()[0]
        total = conn.execute("SELECT sum(pgsize) FROM dbstat").fetchone()[0]
    return fts / max(messages, 1) * 100_000, round(100 * fts / max(total, 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="the smaller database")
    args = ap.parse_args(argv)
    source = big_db(args.quick)
    label = "100k" if args.quick else "1M"
    rows: list[GoalRow] = []
    with app_home() as empty, app_home(source) as big:
        Database(empty / "data" / "halext.db", backups=empty / "data" / "backups").open().close()
        per_100k, share = fts_size(big / "data" / "halext.db")
        small, large = open_storage(empty), open_storage(big)
        try:
            print(f"usage dashboard refresh (read_snapshot), {label} usage rows vs empty:")
            for key in RANGES:
                b, o = interleave(
                    args.rounds, snapshot_timer(small, key), snapshot_timer(large, key)
                )
                bs, os_ = Spread(b), Spread(o)
                print(f"  {key:>4}  empty {bs.ms()}   {label} {os_.ms()}")
                if key in ("all", "30d"):
                    rows.append(
                        GoalRow(
                            f"4. dashboard refresh ({key}), {label} rows vs empty (≤ +100 ms)",
                            bs,
                            os_,
                            "over",
                            0.1,
                        )
                    )
            print(f"search: first results (whole answer), {label} messages vs empty:")
            hits: dict[str, int] = {}
            empty_hits: dict[str, int] = {}
            totals: dict[str, list[float]] = {}
            for query in QUERIES:
                b, o = interleave(
                    args.rounds,
                    search_timer(small, query, empty_hits, {}),
                    search_timer(large, query, hits, totals),
                )
                bs, os_ = Spread(b), Spread(o)
                whole = Spread(totals[query])
                print(
                    f"  {query!r:>12}  empty {bs.ms()}   {label} {os_.ms()} "
                    f"(whole {whole.ms()})   {hits[query]} hits"
                )
                rows.append(
                    GoalRow(
                        f"4. search {query!r}: first results, {label} messages (≤ 100 ms)",
                        bs,
                        os_,
                        "abs",
                        0.1,
                        note=f"{hits[query]} conversations; the whole answer {whole.ms()}",
                    )
                )
            b, o = interleave(args.rounds, typing_timer(small), typing_timer(large))
            bs, os_ = Spread(b), Spread(o)
            print(
                f"  typing {TYPED!r}, last keystroke → results: "
                f"empty {bs.ms()}   {label} {os_.ms()}"
            )
            rows.append(
                GoalRow(
                    f"4. typing {TYPED!r}: last keystroke to results, {label} messages (≤ 100 ms)",
                    bs,
                    os_,
                    "abs",
                    0.1,
                )
            )
        finally:
            small.close()
            large.close()
        env_empty, env_big = app_env(empty), app_env(big)
        cmd = [sys.executable, "-m", "halext_desktop", "usage", "--since", "all"]
        b, o = interleave(
            args.rounds, lambda: timed_run(cmd, env_empty), lambda: timed_run(cmd, env_big)
        )
        bs, os_ = Spread(b), Spread(o)
        print(f"`halext-desktop usage --since all`: empty {bs.ms()}   {label} {os_.ms()}")
        rows.append(
            GoalRow(
                f"4. `usage --since all`, {label} rows vs empty (≤ +100 ms)", bs, os_, "over", 0.1
            )
        )
    print(f"full-text index: {per_100k / 1e6:.1f} MB per 100k messages ({share} % of the file)")
    rows.append(
        GoalRow(
            "4. full-text index size per 100k messages (MB; no target)",
            Spread([]),
            Spread([per_100k / 1e6]),
            "info",
            0.0,
            note=f"{share} % of the database file",
        )
    )
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
