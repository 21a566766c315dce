"""The GUI-thread collector (app/gc_timer.py): the automatic collector is off while it
runs, a cycle is collected by its timer on the GUI thread, and stop() gives it back."""

from __future__ import annotations

import gc
import threading
import weakref

from pytestqt.qtbot import QtBot

from halext_desktop.app.gc_timer import GuiThreadCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None
        self.freed_on: list[str] = []


def test_a_cycle_is_collected_by_the_timer_on_the_gui_thread(qtbot: QtBot) -> None:
    was = gc.isenabled()
    gc.enable()
    collector = GuiThreadCollector(interval_ms=10)
    try:
        assert not gc.isenabled()
        threads: list[str] = []
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        weakref.finalize(a, lambda: threads.append(threading.current_thread().name))
        del a, b
        assert ref() is not None  # a cycle: reference counting alone does not free it
        # Make the youngest generation due, as allocations would.
        junk: list[list[int]] = [[] for _ in range(gc.get_threshold()[0] + 10)]
        qtbot.waitUntil(lambda: ref() is None, timeout=5000)
        del junk
        assert threads == [threading.main_thread().name]
    finally:
        collector.stop()
    assert gc.isenabled()
    if not was:
        gc.disable()


def test_stop_leaves_a_disabled_collector_disabled(qtbot: QtBot) -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        collector = GuiThreadCollector()
        collector.stop()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
