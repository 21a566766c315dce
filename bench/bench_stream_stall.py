"""How long does the GUI thread stall while a reply streams into a long conversation?

A 1 ms heartbeat QTimer records the largest gap between its ticks. It runs twice in the
same process: once with an idle event loop (the baseline: timer and scheduler noise), then
while a reply streams at ~100 tokens/s from a producer thread into a ChatView holding a
5,000-message conversation, the way the bridge delivers chunks (queued signals). Prints
both, and their ratio. No assertions: a benchmark reports, it does not judge.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_stream_stall.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, QObject, Qt, QTimer, Signal, Slot  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from halext_desktop.ui.chat_view import ChatView  # noqa: E402


@dataclass
class SyntheticMessage:
    """The fields of storage's MessageRow, so the benches need no database."""

    id: int
    role: str
    content: str
    conversation_id: int = 1
    status: str = "ok"
    model_ref: str | None = None
    requested_model: str | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


_WORDS = [
    "the",
    "model",
    "answered",
    "with",
    "a",
    "plan",
    "for",
    "the",
    "week",
    "and",
    "three",
    "deadlines",
    "so",
    "that",
    "every",
    "task",
    "fits",
    "between",
    "meetings",
    "while",
    "the",
    "build",
    "runs",
    "on",
    "the",
    "studio",
    "node",
    "and",
    "nothing",
    "leaves",
    "this",
    "machine",
    "unless",
    "cloud",
    "providers",
    "are",
    "enabled",
]

_CODE = "```python\ndef total(xs: list[int]) -> int:\n    return sum(x * 2 for x in xs)\n```"


def _sentence(n: int, seed: int) -> str:
    return " ".join(_WORDS[(seed + k * 7) % len(_WORDS)] for k in range(n)).capitalize() + "."


def make_conversation(count: int, start_id: int = 1) -> list[SyntheticMessage]:
    """Alternating user/assistant messages of varied length, some with Markdown and code."""
    messages: list[SyntheticMessage] = []
    for k in range(count):
        mid = start_id + k
        if k % 2 == 0:
            messages.append(SyntheticMessage(mid, "user", _sentence(6 + k % 23, k)))
            continue
        parts = [_sentence(12 + k % 40, k)]
        if k % 5 == 1:
            parts.append(f"- **{_WORDS[k % len(_WORDS)]}** first\n- second with `code`")
        if k % 7 == 3:
            parts.append(_CODE)
        if k % 3 == 0:
            parts.append(_sentence(20 + k % 30, k + 1))
        messages.append(
            SyntheticMessage(
                mid,
                "assistant",
                "\n\n".join(parts),
                model_ref="ollama/llama3.1:8b",
                requested_model="ollama/llama3.1:8b",
                meta={
                    "ttft_ms": 180 + k % 90,
                    "latency_ms": 900 + k % 2000,
                    "response_tokens": 50 + k % 400,
                    "tokens_exact": True,
                    "locality": "local",
                },
            )
        )
    return messages


def token_stream(count: int) -> list[str]:
    """~``count`` chunks of a Markdown reply with paragraphs, a list and a code block."""
    text = (
        _sentence(60, 3)
        + "\n\n- first point with **bold** text\n- second point with `inline code`\n\n"
        + _CODE
        + "\n\n"
        + " ".join(_sentence(25, s) for s in range(40))
    )
    words = text.split(" ")
    chunks = [w + " " for w in words]
    while len(chunks) < count:
        chunks.extend(chunks)
    return chunks[:count]


class Heartbeat(QObject):
    """A 1 ms precise timer; records the gaps between ticks on the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(1)
        self._timer.timeout.connect(self._tick)
        self._clock = QElapsedTimer()
        self._last = 0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.gaps = []
        self._clock.start()
        self._last = self._clock.nsecsElapsed()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        self.gaps.append((now - self._last) / 1e6)
        self._last = now

    def summary(self) -> dict[str, float]:
        gaps = sorted(self.gaps) or [0.0]
        return {
            "max_ms": gaps[-1],
            "p99_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
            "mean_ms": statistics.fmean(gaps),
            "ticks": float(len(self.gaps)),
        }


class Producer(QObject):
    """Emits chunks from a plain thread at a steady rate; the GUI receives them queued."""

    sig_chunk = Signal(str)
    sig_done = Signal()

    def __init__(self, chunks: list[str], per_second: float) -> None:
        super().__init__()
        self._chunks = chunks
        self._interval = 1.0 / per_second
        self._thread = threading.Thread(target=self._run, name="bench-producer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_at = time.perf_counter()
        for chunk in self._chunks:
            next_at += self._interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the producer, not waiting for a result
            self.sig_chunk.emit(chunk)
        self.sig_done.emit()


class Receiver(QObject):
    """GUI-thread end of the producer, as the bridge would deliver events."""

    def __init__(self, view: ChatView, message_id: int) -> None:
        super().__init__()
        self.view = view
        self.message_id = message_id
        self.chunks = 0

    @Slot(str)
    def on_chunk(self, text: str) -> None:
        self.chunks += 1
        self.view.stream_delta(self.message_id, text)


def run_loop(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def settle(app: QApplication, ms: int = 300) -> None:
    run_loop(ms)
    app.processEvents()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0, help="tokens per second")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    view = ChatView()
    view.resize(1000, 800)
    view.show()
    view.load(make_conversation(args.messages))
    settle(app)

    duration_ms = int(args.seconds * 1000)
    beat = Heartbeat()

    # Baseline: the same heartbeat, idle loop, same duration.
    beat.start()
    run_loop(duration_ms)
    beat.stop()
    idle = beat.summary()

    # Streaming: a user turn and an assistant reply at the end, then ~rate tokens/s.
    next_id = args.messages + 1
    view.append_message(SyntheticMessage(next_id, "user", "Write the long answer, please."))
    reply = SyntheticMessage(
        next_id + 1,
        "assistant",
        "",
        status="pending",
        requested_model="ollama/llama3.1:8b",
        meta={"locality": "local"},
    )
    count = int(args.rate * args.seconds)
    chunks = token_stream(count)
    receiver = Receiver(view, reply.id)
    producer = Producer(chunks, args.rate)
    producer.sig_chunk.connect(receiver.on_chunk, Qt.ConnectionType.QueuedConnection)
    done = QEventLoop()
    producer.sig_done.connect(done.quit, Qt.ConnectionType.QueuedConnection)
    changes = 0

    def count_change(*_args: object) -> None:
        nonlocal changes
        changes += 1

    view.model.dataChanged.connect(count_change)
    beat.start()
    view.append_message(reply)
    view.stream_begin(reply.id)
    started = time.perf_counter()
    producer.start()
    done.exec()
    reply.content = "".join(chunks)
    reply.status = "ok"
    view.stream_end(reply.id, reply)
    app.processEvents()
    beat.stop()
    elapsed = time.perf_counter() - started
    producer.join()
    streaming = beat.summary()

    shown = view.model.item_by_id(reply.id)
    intact = shown is not None and shown.content == reply.content
    ratio = streaming["max_ms"] / idle["max_ms"] if idle["max_ms"] else float("inf")
    print(f"stream stall: {args.messages} messages loaded, {count} chunks in {elapsed:.2f} s")
    print(
        f"  idle baseline   max gap {idle['max_ms']:7.2f} ms   p99 {idle['p99_ms']:6.2f} ms"
        f"   mean {idle['mean_ms']:5.2f} ms   ({int(idle['ticks'])} ticks)"
    )
    print(
        f"  while streaming max gap {streaming['max_ms']:7.2f} ms"
        f"   p99 {streaming['p99_ms']:6.2f} ms"
        f"   mean {streaming['mean_ms']:5.2f} ms   ({int(streaming['ticks'])} ticks)"
    )
    print(f"  ratio (max gap streaming / idle): {ratio:.1f}x")
    print(
        f"  model dataChanged: {changes} for {receiver.chunks} chunks; "
        f"final text intact: {intact}; cached documents: {view.delegate.cached_documents}"
    )
    view.close()
    view.deleteLater()
    app.processEvents()
    return {
        "idle_max_ms": idle["max_ms"],
        "stream_max_ms": streaming["max_ms"],
        "ratio": ratio,
        "data_changed": float(changes),
    }


if __name__ == "__main__":
    main()
