"""Child process of ``bench_start.py``: start a window and print when it first paints.

    python bench/start_probe.py bare   # a bare PySide6 QMainWindow (the baseline)
    python bench/start_probe.py app    # Halext Desktop's window (``halext-desktop gui``)

An application-wide event filter sees the first Paint event of a widget inside a
QMainWindow, prints ``PAINT <time.monotonic()>`` (the parent compares it with the moment it
spawned this process: CLOCK_MONOTONIC is one clock for the whole machine) and ends the
process at once (what happens after the first paint is not what is timed).
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget


class FirstPaint(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if (
            event.type() == QEvent.Type.Paint
            and isinstance(watched, QWidget)
            and isinstance(watched.window(), QMainWindow)
        ):
            print(f"PAINT {time.monotonic():.6f}", flush=True)
            os._exit(0)
        return False


def main() -> int:
    mode = sys.argv[1]
    app = QApplication.instance() or QApplication(sys.argv[:1])
    probe = FirstPaint()
    app.installEventFilter(probe)
    if mode == "bare":
        window = QMainWindow()
        window.resize(1200, 780)
        window.show()
        return app.exec()
    from halext_desktop.app.cli import main as app_main

    return app_main(["gui"])


if __name__ == "__main__":
    sys.exit(main())
