"""Main-window wiring found in hands-on QA: the real Core on its loop thread, one Ollama
protocol server, real widgets and real key presses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.main_window import MainWindow
from tests.servers.conftest import ollama_server  # noqa: F401 (fixture)
from tests.servers.ollama_server import OllamaServer

WAIT = 10_000  # ms

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")


@pytest.fixture
def window(qtbot: QtBot, ollama_server: OllamaServer) -> Iterator[MainWindow]:  # noqa: F811
    settings = Settings.load()
    settings.set("halext_url", "")
    settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
    core = Core(settings=settings)
    lt = LoopThread().start()
    win = build_window(core, lt)
    assert isinstance(win, MainWindow)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(lambda: win._listing is not None and bool(win.picker.current()), timeout=WAIT)
    yield win
    win.close()
    lt.run(core.aclose(), timeout=5)
    lt.stop()
    core.close()


def conversation_with_message(win: MainWindow, title: str, text: str) -> int:
    store = win._svc.conversations
    conv = store.create(title=title)
    store.add_message(conv.id, "user", text)
    win.sidebar.refresh()
    return conv.id


def test_deleting_the_open_conversation_clears_it_and_undo_reopens_it(
    qtbot: QtBot, window: MainWindow
) -> None:
    cid = conversation_with_message(window, "SQL question", "About sqlite joins")
    window.sidebar.select(cid)
    window._open_conversation(cid)
    assert window.chat_view.message_ids()
    window.sidebar.delete_conversation(cid)
    # Nothing of the deleted chat stays on screen, and the next send starts a new one.
    assert window.controller.conversation_id is None
    assert window.chat_view.message_ids() == []
    window.sidebar.undo_delete()
    assert window.controller.conversation_id == cid
    assert len(window.chat_view.message_ids()) == 1


def test_deleting_another_conversation_keeps_the_open_one(qtbot: QtBot, window: MainWindow) -> None:
    keep = conversation_with_message(window, "Keep", "stay open")
    other = conversation_with_message(window, "Other", "delete me")
    window._open_conversation(keep)
    window.sidebar.delete_conversation(other)
    assert window.controller.conversation_id == keep
    assert len(window.chat_view.message_ids()) == 1


def test_escape_clears_the_search_when_nothing_streams(qtbot: QtBot, window: MainWindow) -> None:
    conversation_with_message(window, "Release notes", "notes")
    conversation_with_message(window, "SQL question", "joins")
    window.sidebar.focus_search()
    search = window.sidebar.search_edit
    qtbot.keyClicks(search, "joins")
    qtbot.waitUntil(lambda: "Release notes" not in window.sidebar.visible_titles(), timeout=WAIT)
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == ""
    qtbot.waitUntil(lambda: "Release notes" in window.sidebar.visible_titles(), timeout=WAIT)


def test_escape_stops_a_streaming_reply_from_anywhere_in_the_window(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    ollama_server.set_token_delay(0.2)
    window.composer.set_text("one two three four five six seven eight nine ten")
    window.composer.editor.setFocus()
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.chat_view.is_streaming(), timeout=WAIT)
    window.sidebar.focus_search()  # Esc from a field that has its own Esc meaning
    stopped: list[Any] = []
    window.controller.sig_streaming.connect(stopped.append)
    qtbot.keyClick(window.sidebar.search_edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.controller.streaming, timeout=WAIT)
    assert stopped == [False]
    cid = window.controller.conversation_id
    assert cid is not None
    last = window._svc.conversations.messages(cid, limit=1)[0]
    assert last.status == "stopped"


def test_choosing_dark_in_settings_applies_it_at_once(qtbot: QtBot, window: MainWindow) -> None:
    from halext_desktop.ui.theme import is_dark

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    window._svc.settings.set("theme", "light")
    qtbot.waitUntil(lambda: not is_dark(app.palette()), timeout=WAIT)
    window.open_settings("appearance")
    dlg = window._settings_dialog
    assert dlg is not None
    combo = dlg.appearance.theme
    combo.setCurrentIndex(combo.findData("dark"))
    qtbot.waitUntil(lambda: is_dark(window.chat_view.palette()), timeout=WAIT)
    assert is_dark(app.palette())
    dlg.close()
    window._svc.settings.set("theme", "system")  # leave the shared QApplication as found
