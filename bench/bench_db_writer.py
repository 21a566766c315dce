"""What does the database owner cost a reply, and what does a locked database cost it?

Four measurements, all printed, none asserted:

1. Usage rows queued from an event loop (as the router's sink does): what the loop pays
   per row (the enqueue), and how fast the owner thread writes them (rows/s, how many
   transactions — queued rows are batched).
2. One chat turn streaming 200 deltas over ~2 s through the real Router and Turns: how many
   write transactions the turn costs (rows queued together share one; partial saves are
   once a second).
3. Time from "send" to the first delta with the database free, and with another
   connection holding the write lock for the whole turn (the reply must not wait for it;
   the first write attempt waits one busy timeout before the turn goes ahead).
4. The halext stream parser over a 40 MB body that never ends a chunk: MB/s, and the
   most bytes it ever held back.

    .venv/bin/python bench/bench_db_writer.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from halext_desktop.routing.halext_stream import HalextStreamParser  # noqa: E402
from halext_desktop.routing.policy import Policy  # noqa: E402
from halext_desktop.routing.refs import ModelRef  # noqa: E402
from halext_desktop.routing.router import Router  # noqa: E402
from halext_desktop.routing.types import (  # noqa: E402
    BackendDelta,
    BackendDone,
    BackendEvent,
    BackendStarted,
    ChatMessage,
    ChatOptions,
    Delta,
    Health,
    Locality,
    ModelInfo,
    UsageRecord,
)
from halext_desktop.storage.db import Database  # noqa: E402
from halext_desktop.storage.store import Storage  # noqa: E402
from halext_desktop.storage.turns import Turns  # noqa: E402


class PacedBackend:
    """``n`` deltas, ``gap`` seconds apart."""

    kind = "ollama"
    route_id = "ollama"
    base_url = "bench://"

    def __init__(self, n: int, gap: float) -> None:
        self.n, self.gap = n, gap

    def locality_of(self, model: str) -> Locality:
        return Locality.LOCAL

    async def listed_locality(self, model: str) -> Locality | None:
        return Locality.LOCAL

    async def context_length(self, model: str) -> int | None:
        return None

    def may_poll(self) -> bool:
        return True

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def health(self) -> Health:
        return Health(self.route_id, True)

    async def aclose(self) -> None:
        pass

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        yield BackendStarted(answered_model=model)
        for i in range(self.n):
            if self.gap:
                await asyncio.sleep(self.gap)
            yield BackendDelta(f"word{i} ")
        yield BackendDone(prompt_tokens=3, response_tokens=self.n, exact_tokens=True)


def usage_rows(storage: Storage, rows: int) -> None:
    owner = storage.owner
    before = owner.stats["transactions"]

    async def produce() -> float:
        started = time.perf_counter()
        for i in range(rows):
            storage.usage.record(UsageRecord(f"ollama/m{i % 7}", "/api/chat", latency_ms=i))
        return time.perf_counter() - started

    t0 = time.perf_counter()
    loop_s = asyncio.run(produce())
    owner.flush(120)
    total_s = time.perf_counter() - t0
    tx = owner.stats["transactions"] - before
    print(f"1. usage rows from an event loop: {rows:,} rows")
    print(f"   the loop paid {loop_s / rows * 1e6:.1f} µs a row (queueing only)")
    print(f"   written in {total_s:.2f} s: {rows / total_s:,.0f} rows/s in {tx} transaction(s)")


def one_turn(storage: Storage, n: int, gap: float) -> None:
    router = Router({"ollama": PacedBackend(n, gap)}, Policy, storage.usage)
    turns = Turns(router, storage.conversations, storage.replies, writer=storage.session.id)
    owner = storage.owner
    owner.flush(30)
    before = dict(owner.stats)

    async def go() -> None:
        async for _ in turns.send(None, "a paced reply", ModelRef.parse("ollama/bench:1b")):
            pass

    t0 = time.perf_counter()
    asyncio.run(go())
    owner.flush(30)
    took = time.perf_counter() - t0
    tx = owner.stats["transactions"] - before["transactions"]
    ops = owner.stats["ops"] - before["ops"]
    print(f"2. one turn, {n} deltas over {took:.1f} s: {tx} write transactions, {ops} changes")


def first_delta(storage: Storage, locked: bool) -> float:
    router = Router({"ollama": PacedBackend(5, 0)}, Policy, storage.usage)
    turns = Turns(router, storage.conversations, storage.replies, writer=storage.session.id)
    holder = None
    if locked:
        holder = sqlite3.connect(storage.db.path, isolation_level=None, timeout=10)
        holder.execute("BEGIN IMMEDIATE")

    async def go() -> float:
        t0 = time.perf_counter()
        first = None
        async for event in turns.send(None, "first delta", ModelRef.parse("ollama/bench:1b")):
            if first is None and isinstance(event, Delta):
                first = time.perf_counter() - t0
        assert first is not None
        return first

    try:
        return asyncio.run(go())
    finally:
        if holder is not None:
            holder.close()
        storage.owner.flush(30)


def parser_speed(mb: int) -> None:
    parser = HalextStreamParser()
    piece = b"x" * 65536
    parser.feed(b"data: ")
    held = 0
    t0 = time.perf_counter()
    for _ in range(mb * 16):
        parser.feed(piece)
        held = max(held, parser.pending_bytes)
    took = time.perf_counter() - t0
    print(f"4. halext parser, a {mb} MB chunk that never ends: {mb / took:,.0f} MB/s, ")
    print(f"   at most {held} bytes held back (the old parser held the whole chunk)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--deltas", type=int, default=200)
    ap.add_argument("--parser-mb", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(Database(Path(tmp) / "bench.db"))
        storage.wait_open()
        try:
            usage_rows(storage, args.rows)
            one_turn(storage, args.deltas, 2.0 / args.deltas)
            free = [first_delta(storage, locked=False) for _ in range(3)]
            locked = [first_delta(storage, locked=True) for _ in range(3)]
            print(
                "3. send → first delta: "
                f"database free {min(free) * 1000:.1f} ms, "
                f"locked by another connection {min(locked) * 1000:.1f} ms "
                f"(one busy timeout is {storage.db.busy_timeout_ms} ms)"
            )
        finally:
            storage.close()
    parser_speed(args.parser_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
