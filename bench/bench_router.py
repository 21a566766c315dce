"""Does the Router add anything to a reply? Router vs the direct ``ollama.AsyncClient``.

Both stream the same replies (1, 200 and 2,000 chunks) from the same fast Ollama-protocol
server running in its own process (``bench/fast_ollama.py``; ``--server test`` uses the
project's test server instead), in the same event loop, interleaved request by request:

- direct: one ``ollama.AsyncClient`` for the whole run, ``async for part in await
  client.chat(..., stream=True)`` — what a tiny script does.
- ours: one ``Router`` over a real ``OllamaBackend``, its usage rows going to a real
  ``Storage`` (the database owner thread writes them, as in the app).

Printed: time to the first token and in total (median and range over the rounds), the
ratio ours/direct per round, and how many TCP connections each side opened (the fast
server counts them). No assertions.

    .venv/bin/python bench/bench_router.py [--rounds 30] [--server fast|test]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import GoalRow, ServerProcess, Spread, Table, ratios, report  # noqa: E402

from halext_desktop.routing.backends.ollama_backend import OllamaBackend  # noqa: E402
from halext_desktop.routing.backends.ollama_import import ollama  # noqa: E402
from halext_desktop.routing.policy import Policy  # noqa: E402
from halext_desktop.routing.refs import ModelRef  # noqa: E402
from halext_desktop.routing.router import Router  # noqa: E402
from halext_desktop.routing.types import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Delta,
    Failed,
    Finished,
)
from halext_desktop.storage.db import Database  # noqa: E402
from halext_desktop.storage.store import Storage  # noqa: E402

SIZES = (1, 200, 2000)


def prompt_for(n: int, server: str) -> str:
    if server == "test":
        # The test server echoes the prompt: n - 2 words stream about n chunks.
        return " ".join(f"w{i}" for i in range(max(n - 2, 1)))
    return "Write a plan for the week, please."


async def direct_once(client: ollama.AsyncClient, model: str, prompt: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    async for part in await client.chat(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True
    ):
        if first is None and part.message and part.message.content:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first if first is not None else total, total


async def router_once(router: Router, model: str, prompt: str) -> tuple[float, float]:
    request = ChatRequest(
        ModelRef("ollama", None, model), (ChatMessage("user", prompt),), use_fallbacks=False
    )
    t0 = time.perf_counter()
    first = None
    async for event in router.stream(request):
        if first is None and isinstance(event, Delta):
            first = time.perf_counter() - t0
        elif isinstance(event, Failed):
            raise RuntimeError(event.error.one_line())
        elif isinstance(event, Finished):
            pass
    total = time.perf_counter() - t0
    return first if first is not None else total, total


async def run(url: str, server: ServerProcess, rounds: int, warmup: int) -> dict[str, object]:
    client = ollama.AsyncClient(host=url)
    with tempfile.TemporaryDirectory(prefix="halext-bench-router-") as tmp:
        storage = Storage(Database(Path(tmp) / "bench.db", backups=Path(tmp) / "backups"))
        storage.wait_open()
        backend = OllamaBackend("local", url, is_default=True)
        router = Router({backend.route_id: backend}, Policy, storage.usage)
        out: dict[str, object] = {}
        conns = {"direct": 0, "router": 0}
        requests = {"direct": 0, "router": 0}
        try:
            times: dict[tuple[str, int], list[tuple[float, float]]] = {}
            for r in range(warmup + rounds):
                for n in SIZES:
                    model = f"fast-{n}:latest"
                    prompt = prompt_for(n, server.kind)
                    order = ("direct", "router") if r % 2 == 0 else ("router", "direct")
                    for side in order:
                        before = server.stats().get("connections", 0)
                        if side == "direct":
                            result = await direct_once(client, model, prompt)
                        else:
                            result = await router_once(router, model, prompt)
                        after = server.stats().get("connections", 0)
                        if r >= warmup:
                            times.setdefault((side, n), []).append(result)
                            # The stats request itself opens one connection each time.
                            conns[side] += max(after - before - 1, 0)
                            requests[side] += 1
            out["times"] = times
        finally:
            await client._client.aclose()
            await router.aclose()
            storage.owner.flush(30)
            rows = storage.owner.call(storage.owner.usage.recent, None)
            storage.close()
        out["usage_rows"] = len(rows)
        out["conns"] = conns
        out["requests"] = requests
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--server", choices=("fast", "test"), default="fast")
    args = ap.parse_args(argv)
    with ServerProcess(args.server) as server:
        out = asyncio.run(run(server.url, server, args.rounds, args.warmup))
    times = out["times"]
    assert isinstance(times, dict)
    table = Table(["chunks", "measure", "direct client", "router", "router / direct"])
    rows: list[GoalRow] = []
    for n in SIZES:
        d = times[("direct", n)]
        o = times[("router", n)]
        for i, what in enumerate(("first token", "total")):
            base = Spread([t[i] for t in d])
            ours = Spread([t[i] for t in o])
            rat = ratios(ours.values, base.values)
            table.add(str(n), what, base.ms(2), ours.ms(2), rat.x())
            rows.append(
                GoalRow(
                    f"1. router vs ollama.AsyncClient, {n} chunk{'s' if n > 1 else ''}, {what}",
                    base,
                    ours,
                    "ratio",
                    1.05,
                    ratio=rat,
                )
            )
    conns, requests = out["conns"], out["requests"]
    assert isinstance(conns, dict) and isinstance(requests, dict)
    note = (
        f"TCP connections: direct {conns['direct']} for {requests['direct']} requests, "
        f"router {conns['router']} for {requests['router']}"
    )
    if args.server != "fast":
        note = "connections not counted (test server)"
    for row in rows:
        row.note = note
    print(
        f"router vs direct ollama.AsyncClient ({args.server} server, {args.rounds} rounds "
        f"interleaved, {args.warmup} warm-up)"
    )
    print(table.render())
    print(note)
    sent = (args.rounds + args.warmup) * len(SIZES)
    print(f"usage rows written: {out['usage_rows']} for {sent} router requests (warm-up included)")
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
