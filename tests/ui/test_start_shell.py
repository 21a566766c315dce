"""The window's outline is painted before the core exists; the core is built behind it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

from halext_desktop.app import core as core_module
from halext_desktop.app import gui
from halext_desktop.ui.start_shell import StartShell

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")


def test_the_core_is_built_while_the_window_outline_keeps_its_event_loop(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake core finishes only once the GUI thread ran a timer: a build that blocked
    the event loop would never end (the test would time out instead)."""
    gui_ran = threading.Event()
    built_on: list[str] = []

    class SlowCore:
        def __init__(self, **kw: Any) -> None:
            built_on.append(threading.current_thread().name)
            self.kw = kw
            assert gui_ran.wait(10), "the GUI thread's event loop did not run meanwhile"

        def build_routes(self) -> SlowCore:
            built_on.append(threading.current_thread().name)  # on the build thread too
            return self

    monkeypatch.setattr(core_module, "Core", SlowCore)
    shell = StartShell("Halext Desktop")
    qtbot.addWidget(shell)
    shell.show()
    QTimer.singleShot(0, gui_ran.set)
    built: Any = gui._build_core_behind(shell, settings="the settings")
    assert isinstance(built, SlowCore)
    assert built.kw == {"settings": "the settings", "background_checks": True}
    assert len(built_on) == 2 and threading.current_thread().name not in built_on


def test_what_waits_for_the_first_paint_runs_on_the_gui_thread_before_the_build(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log file and the window icon are set up once the outline has painted, on the
    GUI thread, and before the core's build begins (the build logs)."""
    order: list[tuple[str, str]] = []

    class Core:
        def __init__(self, **_kw: Any) -> None:
            order.append(("build", threading.current_thread().name))

        def build_routes(self) -> Core:
            return self

    monkeypatch.setattr(core_module, "Core", Core)
    shell = StartShell("Halext Desktop")
    qtbot.addWidget(shell)
    shell.show()

    def after_paint() -> None:
        assert shell.painted, "ran before the outline's first paint"
        order.append(("after paint", threading.current_thread().name))

    gui._build_core_behind(shell, settings=None, after_paint=after_paint)
    gui_thread = threading.current_thread().name
    assert [what for what, _ in order] == ["after paint", "build"]
    assert order[0][1] == gui_thread and order[1][1] != gui_thread


def test_a_core_that_cannot_start_raises_its_error_on_the_gui_thread(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenCore:
        def __init__(self, **_kw: Any) -> None:
            raise PermissionError("the session folder cannot be written")

    monkeypatch.setattr(core_module, "Core", BrokenCore)
    shell = StartShell("Halext Desktop")
    qtbot.addWidget(shell)
    with pytest.raises(PermissionError, match="session folder"):
        gui._build_core_behind(shell, settings=None)


def test_the_real_window_takes_the_outlines_place(qtbot: QtBot) -> None:
    shell = StartShell("Halext Desktop")
    qtbot.addWidget(shell)
    shell.setGeometry(40, 50, 900, 600)
    shell.show()
    qtbot.waitExposed(shell)
    where = shell.geometry()
    window = QMainWindow()
    qtbot.addWidget(window)
    closed: list[bool] = []
    shell.sig_closed.connect(lambda: closed.append(True))
    shell.hand_over(window)
    assert window.isVisible() and not shell.isVisible()
    assert window.geometry() == where
    assert not shell.closed_by_user and not closed  # handing over is not the user closing it


def test_closing_the_outline_before_the_window_is_ready_is_remembered(qtbot: QtBot) -> None:
    shell = StartShell("Halext Desktop")
    qtbot.addWidget(shell)
    shell.show()
    with qtbot.waitSignal(shell.sig_closed, timeout=2000):
        shell.close()
    assert shell.closed_by_user
