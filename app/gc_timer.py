"""Python's cyclic garbage collector runs on the GUI thread only, between events.

Why: automatic collection starts on whichever thread allocates when a threshold is
crossed — the router's loop thread, the database owner — or in the middle of a slot on
the GUI thread. A cycle holding Qt objects (a widget and a lambda connected to it) is then
destroyed on the wrong thread, or while Qt is halfway through an event; PySide can crash
there (seen as a segmentation fault "Garbage-collecting" during a window test). So the
automatic collector is switched off while the window runs, and a timer on the GUI thread
collects when the collector's own thresholds say it is due (the pattern pyqtgraph uses).
Reference counting still frees everything that is not in a cycle at once.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 500


class GuiThreadCollector(QObject):
    """Owns the collector while it lives: ``stop()`` gives it back as it was found."""

    def __init__(self, interval_ms: int = CHECK_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start(interval_ms)

    def collect_if_due(self) -> int:
        """Collect the generations whose thresholds were crossed; how many objects went."""
        count0, count1, count2 = gc.get_count()
        limit0, limit1, limit2 = gc.get_threshold()
        freed = 0
        if count0 > limit0:
            freed += gc.collect(0)
            if count1 > limit1:
                freed += gc.collect(1)
                if count2 > limit2:
                    freed += gc.collect(2)
        return freed

    def stop(self) -> None:
        """Collect once more, here, and give the automatic collector back."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
