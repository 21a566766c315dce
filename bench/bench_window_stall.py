"""The GUI thread's longest stall while a reply streams, in the real window.

The window is wired as the app wires it (``app.gui.build_window``: Core, loop thread,
Bridge, MainWindow; SQLite forbidden on the GUI thread), over a copy of a database holding
one 5,000-message conversation (``bench/bigdb.py``), its Ollama host a fast
Ollama-protocol server in its own process that streams the reply at 100 chunks a second
(``bench/fast_ollama.py``). A 1 ms heartbeat on the GUI thread records the longest gap
between its ticks:

- baseline: the window idle, the conversation open, for as long as a reply takes;
- ours: from the send (the composer's text through ``ChatController.send``) until the
  reply is saved, with the 200 newest rows shown (what opening a chat loads), and with all
  5,000 rows loaded (the user scrolled to the top).

Rounds are interleaved (idle, 200 rows, idle, all rows...). No assertions.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_window_stall.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_stream_stall import Heartbeat, run_loop  # noqa: E402
from benchlib import GoalRow, ServerProcess, Spread, app_home, report  # noqa: E402
from bigdb import long_chat_db  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

MODEL_RATE = 100
PROMPT = "Go on with the plan, please."


def wait_until(app: QApplication, done: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.002)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0, help="how long each reply streams")
    ap.add_argument("--messages", type=int, default=5000)
    args = ap.parse_args(argv)
    chunks = int(MODEL_RATE * args.seconds)
    model = f"ollama/paced-{MODEL_RATE}x{chunks}:latest"
    source = long_chat_db(args.messages)
    with ServerProcess("fast") as server, app_home(source) as home:
        with sqlite3.connect(home / "data" / "halext.db") as conn:
            conn.execute("UPDATE conversations SET default_model_id = ?", (model,))
            cid = conn.execute("SELECT id FROM conversations").fetchone()[0]
        os.environ["HALEXT_DESKTOP_HOME"] = str(home)
        os.environ["OLLAMA_HOST"] = server.url
        result = measure(cid, model, args.rounds, args.seconds)
    idle, shown, loaded = (Spread(v) for v in result)
    print(
        f"GUI thread's longest stall, {args.messages}-message conversation, a reply at "
        f"{MODEL_RATE} chunks/s for {args.seconds:g} s, {args.rounds} rounds interleaved:"
    )
    print(f"  idle window (baseline)  {idle.ms()}")
    print(f"  200 rows shown          {shown.ms()}")
    print(f"  all rows loaded         {loaded.ms()}")
    report(
        [
            GoalRow(
                f"2. longest GUI stall while streaming, {what} (≤ 16 ms)",
                idle,
                ours,
                "abs",
                0.016,
            )
            for what, ours in (("200 rows shown", shown), (f"all {args.messages} rows", loaded))
        ]
    )
    return 0


def measure(cid: int, model: str, rounds: int, seconds: float) -> tuple[list[float], ...]:
    from halext_desktop.app.core import Core
    from halext_desktop.app.gui import build_window, shutdown
    from halext_desktop.app.loop_thread import LoopThread
    from halext_desktop.storage import threads

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    core = Core(background_checks=False)
    threads.forbid_current_thread("the GUI thread")
    loop_thread = LoopThread().start()
    window: Any = build_window(core, loop_thread)
    window.resize(1200, 780)
    window.show()
    controller = window.controller
    view = window.chat_view
    beat = Heartbeat()
    idle: list[float] = []
    shown: list[float] = []
    loaded: list[float] = []
    try:
        run_loop(500)  # the window's first paint, model list and health check

        def open_chat(all_rows: bool) -> None:
            opened: list[Any] = []
            controller.sig_loaded.connect(opened.append)
            controller.open_conversation(None)
            controller.open_conversation(cid)
            wait_until(app, lambda: cid in opened)
            controller.sig_loaded.disconnect(opened.append)
            window.picker.set_current(model)
            while all_rows and view._has_more:
                count = view.model.rowCount()
                controller.load_more(view.model.oldest_id)
                wait_until(app, lambda c=count: view.model.rowCount() > c)
            run_loop(300)

        def stream_once() -> float:
            ended: list[bool] = []
            controller.sig_streaming.connect(ended.append)
            beat.start()
            assert controller.send(PROMPT), "the window did not send"
            wait_until(app, lambda: False in ended, timeout=seconds + 60)
            app.processEvents()
            beat.stop()
            controller.sig_streaming.disconnect(ended.append)
            return beat.summary()["max_ms"] / 1000

        for r in range(rounds + 1):  # the first round warms up (not kept)
            steps = [("idle", None), ("shown", False), ("idle", None), ("loaded", True)]
            if r % 2:
                steps = steps[2:] + steps[:2]
            for kind, all_rows in steps:
                if kind == "idle":
                    beat.start()
                    run_loop(int(seconds * 1000))
                    beat.stop()
                    value = beat.summary()["max_ms"] / 1000
                else:
                    open_chat(bool(all_rows))
                    value = stream_once()
                if r:
                    {"idle": idle, "shown": shown, "loaded": loaded}[kind].append(value)
    finally:
        window.close()
        QTimer.singleShot(0, lambda: None)
        app.processEvents()
        shutdown(core, loop_thread)
        threads.allow_current_thread()
    return idle, shown, loaded


if __name__ == "__main__":
    sys.exit(main())
