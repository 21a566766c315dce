"""Does the window appear at once? Process start to first paint, vs a bare QMainWindow.

Each run is a new process (``bench/start_probe.py``), timed from the moment it is spawned
to its window's first frame (Qt's own painting log, read as it is written; the old probe,
a Python event filter, is run too and printed for comparison: it costs the app's window
more than a bare one, see ``start_probe.py``): a bare PySide6 ``QMainWindow`` (the baseline)
and ``halext-desktop gui`` with an empty database and with the big one (10,000
conversations, 1,000,000 messages, 1,000,000 usage rows; ``bench/bigdb.py``), interleaved.
The app reopens the newest conversation, as it does the last chat. Offscreen platform
unless ``QT_QPA_PLATFORM`` says otherwise.

    .venv/bin/python bench/bench_start.py [--rounds 10] [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    HERE,
    ROOT,
    GoalRow,
    ServerProcess,
    Spread,
    app_env,
    app_home,
    compile_app,
    ratios,
    report,
)
from bigdb import big_db  # noqa: E402

from halext_desktop.storage.db import Database  # noqa: E402

# Qt's painting log: the line it writes when a top-level window's frame goes to the screen.
PAINT_LOG_RULES = "qt.widgets.painting.debug=true"
FLUSH_MARK = " to QWidgetWindow("


def first_frames(mode: str, env: dict[str, str], *, filtered: bool = False) -> tuple[float, float]:
    """Seconds from spawning ``start_probe.py mode`` to its first frame, and to the first
    frame of the window one works in (the app's ``MainWindow``, which takes the start
    outline's place; for the bare window, its first frame again)."""
    cmd = [sys.executable, str(HERE / "start_probe.py"), mode]
    if filtered:
        cmd.append("--filter")
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out, err = proc.communicate(timeout=120)
        for line in out.splitlines():
            if line.startswith("PAINT "):
                took = float(line.split()[1]) - t0
                return took, took
        raise RuntimeError(f"{mode}: no paint (exit {proc.returncode}): {err.strip()[-800:]}")
    env = {**env, "QT_LOGGING_RULES": PAINT_LOG_RULES}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    tail: list[str] = []
    first: float | None = None
    try:
        for line in proc.stderr:  # read as Qt writes it: the time is taken on arrival
            if line.startswith("qt.widgets.painting: Flushing") and FLUSH_MARK in line:
                now = time.monotonic() - t0
                first = now if first is None else first
                if mode == "bare" or " of MainWindow(" in line:
                    return first, now
            tail = [*tail[-20:], line]
    finally:
        proc.kill()
        proc.wait()
    raise RuntimeError(f"{mode}: no frame (exit {proc.returncode}): {''.join(tail)[-800:]}")


def prepare(home: Path, *, big: bool) -> None:
    """The app's files in ``home``: its database (already there), a daily backup copy made
    today (as a user's would be, so start-up does not copy the big file now), and the last
    chat to reopen (the newest conversation)."""
    path = home / "data" / "halext.db"
    db = Database(path, backups=home / "data" / "backups")
    db.open()
    db.close()
    backups = home / "data" / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S000000Z", time.gmtime())
    (backups / f"halext-{stamp}-daily.db").write_bytes(b"")
    if big:
        with sqlite3.connect(path) as conn:
            newest = conn.execute(
                "SELECT id FROM conversations ORDER BY updated_at DESC LIMIT 1"
            ).fetchone()[0]
        (home / "config" / "window.ini").write_text(f"[main]\nconversation={newest}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="the smaller database")
    args = ap.parse_args(argv)
    source = big_db(args.quick)
    compile_app()
    label = "100k messages" if args.quick else "1M messages"
    with ServerProcess("fast") as server, app_home() as empty, app_home(source) as big:
        prepare(empty, big=False)
        prepare(big, big=True)
        env_empty = app_env(empty, server.url)
        env_big = app_env(big, server.url)
        bare: list[float] = []
        app_empty: list[float] = []
        app_big: list[float] = []
        ready: dict[str, list[float]] = {"empty": [], "big": []}  # the chat window itself
        # The same two, seen through the old probe (a Python event filter): for comparison.
        bare_f: list[float] = []
        app_f: list[float] = []
        for i in range(args.rounds + 1):  # the first round warms the page cache
            runs = [
                ("bare", env_empty, bare, False, ""),
                ("app", env_empty, app_empty, False, "empty"),
                ("app", env_big, app_big, False, "big"),
                ("bare", env_empty, bare_f, True, ""),
                ("app", env_empty, app_f, True, ""),
            ]
            if i % 2:
                runs.reverse()
            for mode, env, into, filtered, db in runs:
                took, working = first_frames(mode, env, filtered=filtered)
                if i:
                    into.append(took)
                    if db:
                        ready[db].append(working)
    b, e, g = Spread(bare), Spread(app_empty), Spread(app_big)
    print(f"process start → first paint, {args.rounds} rounds interleaved:")
    print(f"  bare QMainWindow                {b.ms()}")
    print(f"  halext-desktop, empty database  {e.ms()}   {ratios(app_empty, bare).x()} bare")
    print(f"  halext-desktop, {label:<15} {g.ms()}   {ratios(app_big, bare).x()} bare")
    print(f"  {label} / empty: {ratios(app_big, app_empty).x()}")
    print(f"  the chat window itself, empty database  {Spread(ready['empty']).ms()}")
    print(f"  the chat window itself, {label:<15} {Spread(ready['big']).ms()}")
    old_probe = ratios(app_f, bare_f).x()
    print(f"  seen by the old probe (Python event filter, see start_probe.py): {old_probe}")
    report(
        [
            GoalRow(
                "3. window start (empty db) vs bare QMainWindow",
                b,
                e,
                "ratio",
                1.5,
                ratio=ratios(app_empty, bare),
                note=f"first frame from Qt's painting log; the old event-filter probe: {old_probe}",
            ),
            GoalRow(
                f"3. window start ({label}) vs the empty db",
                e,
                g,
                "ratio",
                1.1,
                ratio=ratios(app_big, app_empty),
                note=f"vs bare: {ratios(app_big, bare).x()}",
            ),
            GoalRow(
                "3. (info) the chat window itself (empty db), after the outline",
                b,
                Spread(ready["empty"]),
                "time",
                0,
            ),
            GoalRow(
                f"3. (info) the chat window itself ({label}), after the outline",
                b,
                Spread(ready["big"]),
                "time",
                0,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
