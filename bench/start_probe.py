"""Child process of ``bench_start.py``: start a window and report when it first paints.

    python bench/start_probe.py bare [--filter]   # a bare PySide6 QMainWindow (the baseline)
    python bench/start_probe.py app [--filter]    # Halext Desktop's window (``halext-desktop gui``)

Two ways to see the first paint:

- By default the probe adds nothing to the process: the parent turns on Qt's own painting
  log (``QT_LOGGING_RULES=qt.widgets.painting.debug=true``, written by Qt in C++ on stderr)
  and takes the time when the first "Flushing … to QWidgetWindow" line arrives: the moment
  a top-level window's first frame goes to the screen.
- ``--filter``: an application-wide Python event filter sees the first Paint event of a
  widget inside a QMainWindow and prints ``PAINT <time.monotonic()>``. This is how it was
  measured before; it is kept to compare, but it is not neutral: PySide converts every
  event's receiver to a Python object before calling the filter, and for the internal
  widget classes of a real window (a splitter's handle, a line edit's parts) that makes
  PySide create the Python enum classes of every class of QtCore, QtGui and QtWidgets
  (~170 of them, tens of milliseconds) which the app itself never pays. A bare window has
  no such widgets, so the filter costs the baseline nothing.

Either way the process ends as soon as the paint is seen (what happens after is not timed).
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
    if "--filter" in sys.argv[2:]:
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
