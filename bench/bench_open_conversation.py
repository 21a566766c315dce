"""How long does a 10,000-message conversation take to open, and how much memory does it add?

Times ``ChatView.load()`` and the first paint after it (events processed until the list's
viewport has painted), and reads the resident memory the load added (/proc/self/statm),
next to the same numbers for an empty conversation in the same process. Prints both and
their ratio. No assertions: a benchmark reports, it does not judge.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_open_conversation.py [--messages N]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_stream_stall import make_conversation  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from halext_desktop.ui.chat_view import ChatView  # noqa: E402

PAGE = resource.getpagesize()


def rss_bytes() -> int:
    """Resident set size now, from /proc/self/statm (second field, in pages)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE


class PaintWatch(QObject):
    """Notes when the watched widget receives a Paint event."""

    def __init__(self) -> None:
        super().__init__()
        self.painted = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False


def open_once(app: QApplication, view: ChatView, messages: Sequence[Any]) -> dict[str, float]:
    """From a view showing a short conversation: load() ``messages``, then process events
    until what shows them (the list, or the empty-state hint) has painted."""
    view.load(make_conversation(2, start_id=2_000_000))
    for _ in range(3):
        app.processEvents()
    watch = PaintWatch()
    target = view.list_view.viewport() if messages else view.empty_label
    target.installEventFilter(watch)
    gc.collect()
    before = rss_bytes()
    clock = QElapsedTimer()
    clock.start()
    view.load(messages)
    load_ns = clock.nsecsElapsed()
    deadline = time.monotonic() + 30
    while not watch.painted and time.monotonic() < deadline:
        app.processEvents()
    paint_ns = clock.nsecsElapsed()
    app.processEvents()  # let follow-up layouts (refined heights) finish
    settled_ns = clock.nsecsElapsed()
    gc.collect()
    after = rss_bytes()
    target.removeEventFilter(watch)
    return {
        "load_ms": load_ns / 1e6,
        "first_paint_ms": paint_ns / 1e6,
        "settled_ms": settled_ns / 1e6,
        "rss_added_mb": (after - before) / 2**20,
        "painted": float(watch.painted),
    }


def open_from_storage(
    app: QApplication, view: ChatView, store: Any, conversation_id: int
) -> dict[str, float]:
    """What the app does when a conversation is clicked: count, read the newest page from
    SQLite, load the view (older pages load lazily on scroll), first paint."""
    from halext_desktop.ui.chat_controller import PAGE as APP_PAGE

    view.load(make_conversation(2, start_id=2_000_000))
    for _ in range(3):
        app.processEvents()
    watch = PaintWatch()
    gc.collect()
    before = rss_bytes()
    clock = QElapsedTimer()
    clock.start()
    total = store.count_messages(conversation_id)
    rows = store.messages(conversation_id, limit=APP_PAGE)
    target = view.list_view.viewport() if rows else view.empty_label
    target.installEventFilter(watch)
    view.load(rows, has_more=total > len(rows))
    load_ns = clock.nsecsElapsed()
    deadline = time.monotonic() + 30
    while not watch.painted and time.monotonic() < deadline:
        app.processEvents()
    paint_ns = clock.nsecsElapsed()
    gc.collect()
    after = rss_bytes()
    target.removeEventFilter(watch)
    return {
        "load_ms": load_ns / 1e6,
        "first_paint_ms": paint_ns / 1e6,
        "rss_added_mb": (after - before) / 2**20,
    }


def storage_section(app: QApplication, view: ChatView, n: int) -> None:
    import tempfile

    from halext_desktop.storage.conversations import ConversationStore
    from halext_desktop.storage.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db").open()
        store = ConversationStore(db)
        empty = store.create(title="empty")
        big = store.create(title="big")
        store.add_messages_bulk(
            big.id, [(m.role, m.content) for m in make_conversation(n, start_id=5_000_000)]
        )
        open_from_storage(app, view, store, big.id)  # warm-up (page cache, SQL statements)
        base = open_from_storage(app, view, store, empty.id)
        full = open_from_storage(app, view, store, big.id)
        print(f"as the app opens it (SQLite, newest page first, older pages on scroll): {n} msgs")
        print(
            f"  empty conversation  open {base['load_ms']:7.1f} ms   first paint "
            f"{base['first_paint_ms']:7.1f} ms   RSS added {base['rss_added_mb']:5.1f} MB"
        )
        print(
            f"  {n:>6} messages     open {full['load_ms']:7.1f} ms   first paint "
            f"{full['first_paint_ms']:7.1f} ms   RSS added {full['rss_added_mb']:5.1f} MB"
        )
        print(
            f"  ratio: open {ratio(full['load_ms'], base['load_ms'])}, first paint "
            f"{ratio(full['first_paint_ms'], base['first_paint_ms'])}"
        )
        db.close()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a (baseline ~0)"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    view = ChatView()
    view.resize(1000, 800)
    view.show()
    app.processEvents()
    # Warm-up: fonts, style and first-use allocations would otherwise be charged to the
    # first measurement.
    open_once(app, view, make_conversation(40, start_id=1_000_000))
    open_once(app, view, [])
    open_once(app, view, make_conversation(200, start_id=3_000_000))

    baseline = open_once(app, view, [])
    messages = make_conversation(args.messages)  # built before measuring: not the view's cost
    full = open_once(app, view, messages)
    chars = sum(len(m.content) for m in messages)

    print(f"open conversation: {args.messages} messages ({chars / 1e6:.1f} M characters)")
    print(
        f"  empty baseline  load {baseline['load_ms']:8.1f} ms   first paint "
        f"{baseline['first_paint_ms']:8.1f} ms   RSS added {baseline['rss_added_mb']:6.1f} MB"
    )
    print(
        f"  {args.messages:>6} msgs     load {full['load_ms']:8.1f} ms   first paint "
        f"{full['first_paint_ms']:8.1f} ms   RSS added {full['rss_added_mb']:6.1f} MB"
        f"   (settled {full['settled_ms']:.1f} ms)"
    )
    print(
        f"  ratio: load {ratio(full['load_ms'], baseline['load_ms'])}, first paint "
        f"{ratio(full['first_paint_ms'], baseline['first_paint_ms'])}, RSS "
        f"{ratio(full['rss_added_mb'], baseline['rss_added_mb'])}"
    )
    print(
        f"  rendered documents held: {view.delegate.cached_documents} "
        f"(of {view.model.rowCount()} rows); painted: {bool(full['painted'])} "
        f"(baseline painted: {bool(baseline['painted'])})"
    )
    storage_section(app, view, args.messages)
    view.close()
    view.deleteLater()
    app.processEvents()
    return {
        "load_ms": full["load_ms"],
        "first_paint_ms": full["first_paint_ms"],
        "rss_added_mb": full["rss_added_mb"],
        "baseline_first_paint_ms": baseline["first_paint_ms"],
    }


if __name__ == "__main__":
    main()
