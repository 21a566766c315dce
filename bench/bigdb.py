"""Large databases for the benchmarks, generated once and cached outside the repository.

``big_db()``: 10,000 conversations holding 1,000,000 messages (chats of varied length,
several going on at a time, so ids follow time across conversations as they do in use) and
1,000,000 usage rows (``bench_usage_report.synthetic_rows``: a dozen models, four statuses,
over 120 days). ``long_chat_db()``: one conversation of 5,000 messages (the stall bench).

The schema comes from the app itself (``Database.open()`` runs the migrations), the rows
from plain sqlite3 in one transaction (the FTS triggers index them as the app's inserts
would). Files are cached in ``benchlib.cache_dir()`` under a name that holds the schema's
head revision and the sizes, so a new migration (or other sizes) makes a new file; the app's
own start-up never has to upgrade a cached file.

    .venv/bin/python bench/bigdb.py [--conversations 10000] [--messages 1000000] [--usage 1000000]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_usage_report import INSERT_SQL as USAGE_INSERT  # noqa: E402
from bench_usage_report import synthetic_rows  # noqa: E402
from benchlib import cache_dir  # noqa: E402

from halext_desktop.storage.db import Database, head_revision  # noqa: E402

GENERATOR = 2  # bump when the generated content changes
SPAN_DAYS = 365
RARE_WORD = "zeppelin"  # in about one message of 20,000
COMMON_WORD = "plan"

_BASE = (  # noqa: SIM905 (a sentence reads better than a list of words)
    "the a model answered with plan for week and three deadlines so that every task fits "
    "between meetings while build runs on studio node nothing leaves this machine unless "
    "cloud providers are enabled please write summary of notes from yesterday review "
    "pull request tests failing because timeout database migration schema index query "
    "latency tokens context window reply stream server client request response error "
    "retry budget project release version python function class method variable loop "
    "list dictionary string number date time calendar event reminder email draft letter "
    "translate french german spanish recipe dinner ingredients garden travel flight hotel "
    "invoice budget report chart explain why how what when where which could would should"
).split()
_SUFFIXES = ("", "", "", "s", "ed", "ing", "er", "ly", "ion", "able")
_CODE = "```python\ndef total(xs: list[int]) -> int:\n    return sum(x * 2 for x in xs)\n```"


def _vocabulary(rnd: random.Random) -> list[str]:
    words = [w + s for w in _BASE for s in _SUFFIXES]
    # Names, ids and odd words: what makes real chats' vocabulary long-tailed.
    for _ in range(3000):
        words.append(
            "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(4, 9)))
        )
    return words


def _sentences(rnd: random.Random, count: int = 6000) -> list[str]:
    vocab = _vocabulary(rnd)
    common = [w for w in _BASE]
    out = []
    for i in range(count):
        n = rnd.randint(6, 18)
        words = [rnd.choice(common) if rnd.random() < 0.7 else rnd.choice(vocab) for _ in range(n)]
        if i % 9 == 0:
            words.insert(rnd.randrange(len(words)), COMMON_WORD)
        out.append(" ".join(words).capitalize() + ".")
    return out


def _content(rnd: random.Random, sentences: list[str], role: str) -> str:
    if role == "user":
        text = " ".join(rnd.choice(sentences) for _ in range(rnd.randint(1, 2)))
    else:
        parts = [
            " ".join(rnd.choice(sentences) for _ in range(rnd.randint(1, 4)))
            for _ in range(rnd.randint(1, 3))
        ]
        if rnd.random() < 0.08:
            parts.append(_CODE)
        text = "\n\n".join(parts)
    if rnd.random() < 1 / 20_000:
        text += f" The {RARE_WORD} question again."
    return text


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def _message_events(
    rnd: random.Random, conversations: int, messages: int, now: datetime
) -> Iterator[tuple[float, int, int]]:
    """``(time, conversation index, k-th message)`` in time order: each conversation lives
    over a stretch of days, several at once, so ids interleave across conversations."""
    # Lengths vary a lot (a few long chats, many short ones) and add up to ``messages``.
    weights = [rnd.lognormvariate(0, 1) for _ in range(conversations)]
    scale = messages / sum(weights)
    per = [max(1, int(w * scale)) for w in weights]
    while sum(per) < messages:
        per[rnd.randrange(conversations)] += 1
    while sum(per) > messages:
        c = rnd.randrange(conversations)
        if per[c] > 1:
            per[c] -= 1
    span = SPAN_DAYS * 86400.0
    streams = []
    for c, n in enumerate(per):
        start = now.timestamp() - span + span * c / conversations
        length = min(rnd.uniform(600, 20 * 86400), now.timestamp() - start - 1)
        streams.append(_times(start, length / max(n, 1), c, n))
    yield from heapq.merge(*streams)


def _times(start: float, step: float, c: int, n: int) -> Iterator[tuple[float, int, int]]:
    for k in range(n):
        yield start + step * k, c, k


def generate(path: Path, conversations: int, messages: int, usage: int, *, seed: int = 13) -> None:
    """Write the database at ``path`` (replaced if present)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(path, backups=path.parent / "backups-unused")
    db.open()
    db.close()
    rnd = random.Random(seed)
    sentences = _sentences(rnd)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    first_at: dict[int, float] = {}
    last_at: dict[int, float] = {}
    batch: list[tuple[object, ...]] = []
    sql = (
        "INSERT INTO messages (conversation_id, role, content, status, model_ref,"
        " requested_model, error, meta, created_at) VALUES (?, ?, ?, 'ok', ?, ?, NULL, ?, ?)"
    )
    # Conversations first (ids 1..n), their times fixed after the messages.
    conn.executemany(
        "INSERT INTO conversations (id, title, default_model_id, created_at, updated_at)"
        " VALUES (?, ?, 'ollama/llama3.1:8b', '', '')",
        ((c + 1, f"Chat {c + 1}: " + rnd.choice(sentences)[:40]) for c in range(conversations)),
    )
    done = 0
    for ts, c, k in _message_events(rnd, conversations, messages, now):
        role = "user" if k % 2 == 0 else "assistant"
        when = _stamp(datetime.fromtimestamp(ts, UTC))
        first_at.setdefault(c, ts)
        last_at[c] = ts
        if role == "assistant":
            meta = json.dumps(
                {
                    "notes": [],
                    "locality": "local",
                    "answered_model": "llama3.1:8b",
                    "usage_status": "ok",
                    "ttft_ms": rnd.randint(80, 900),
                    "latency_ms": rnd.randint(900, 9000),
                    "prompt_tokens": rnd.randint(20, 4000),
                    "response_tokens": rnd.randint(20, 900),
                    "tokens_exact": True,
                }
            )
            ref = "ollama/llama3.1:8b"
        else:
            meta, ref = "{}", None
        batch.append((c + 1, role, _content(rnd, sentences, role), ref, ref, meta, when))
        if len(batch) >= 20_000:
            conn.executemany(sql, batch)
            done += len(batch)
            batch.clear()
            print(f"  {done:,} messages ({time.perf_counter() - t0:.0f} s)", flush=True)
    conn.executemany(sql, batch)
    conn.executemany(
        "UPDATE conversations SET created_at = ?, updated_at = ? WHERE id = ?",
        (
            (
                _stamp(datetime.fromtimestamp(first_at[c], UTC)),
                _stamp(datetime.fromtimestamp(last_at[c], UTC)),
                c + 1,
            )
            for c in first_at
        ),
    )
    if usage:
        conn.executemany(USAGE_INSERT, synthetic_rows(usage, now))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"  generated {path.name} in {time.perf_counter() - t0:.0f} s", flush=True)


def cached(conversations: int, messages: int, usage: int) -> Path:
    """The cached database of these sizes at the current schema, generated if missing."""
    name = f"halext-g{GENERATOR}-r{head_revision()}-c{conversations}-m{messages}-u{usage}.db"
    path = cache_dir() / name
    if not path.exists():
        print(f"generating {path} (once; it is cached)", flush=True)
        tmp = path.with_name(path.name + ".partial")
        generate(tmp, conversations, messages, usage)
        tmp.rename(path)
        # What opening it left behind (the migration lock file).
        tmp.with_name(tmp.name + ".lock").unlink(missing_ok=True)
    return path


def big_db(quick: bool = False) -> Path:
    """10,000 conversations, 1M messages, 1M usage rows (quick: a tenth of each)."""
    if quick:
        return cached(1_000, 100_000, 100_000)
    return cached(10_000, 1_000_000, 1_000_000)


def long_chat_db(messages: int = 5_000) -> Path:
    """One conversation of ``messages`` messages (and no usage rows)."""
    return cached(1, messages, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--usage", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    print(cached(args.conversations, args.messages, args.usage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
