"""Main-window wiring found in hands-on QA: the real Core on its loop thread, one Ollama
protocol server, real widgets and real key presses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMenu
from pytestqt.qtbot import QtBot

from halext_desktop import __version__
from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.logfile import log_path
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.app_menu import about_text
from halext_desktop.ui.chat_controller import ACTION_RETRY
from halext_desktop.ui.main_window import MainWindow
from tests.helpers.storage import on_owner
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


def conversation_with_message(qtbot: QtBot, win: MainWindow, title: str, text: str) -> int:
    store = on_owner(win._svc).conversations  # seeded on the database owner's thread
    conv = store.create(title=title)
    store.add_message(conv.id, "user", text)
    with qtbot.waitSignal(win.sidebar.sig_refreshed, timeout=WAIT):
        win.sidebar.refresh()
    return conv.id


def open_and_wait(qtbot: QtBot, win: MainWindow, cid: int) -> None:
    with qtbot.waitSignal(win.controller.sig_loaded, timeout=WAIT):
        win._open_conversation(cid)


def test_deleting_the_open_conversation_clears_it_and_undo_reopens_it(
    qtbot: QtBot, window: MainWindow
) -> None:
    cid = conversation_with_message(qtbot, window, "SQL question", "About sqlite joins")
    window.sidebar.select(cid)
    open_and_wait(qtbot, window, cid)
    assert window.chat_view.message_ids()
    window.sidebar.delete_conversation(cid)
    # Nothing of the deleted chat stays on screen, and the next send starts a new one.
    assert window.controller.conversation_id is None
    assert window.chat_view.message_ids() == []
    qtbot.waitUntil(window.sidebar.undo_pending, timeout=WAIT)
    with qtbot.waitSignal(
        window.controller.sig_loaded, timeout=WAIT, check_params_cb=lambda c: c == cid
    ):
        window.sidebar.undo_delete()
    assert window.controller.conversation_id == cid
    assert len(window.chat_view.message_ids()) == 1


def test_deleting_another_conversation_keeps_the_open_one(qtbot: QtBot, window: MainWindow) -> None:
    keep = conversation_with_message(qtbot, window, "Keep", "stay open")
    other = conversation_with_message(qtbot, window, "Other", "delete me")
    open_and_wait(qtbot, window, keep)
    window.sidebar.delete_conversation(other)
    qtbot.waitUntil(window.sidebar.undo_pending, timeout=WAIT)
    assert window.controller.conversation_id == keep
    assert len(window.chat_view.message_ids()) == 1


def test_escape_clears_the_search_when_nothing_streams(qtbot: QtBot, window: MainWindow) -> None:
    conversation_with_message(qtbot, window, "Release notes", "notes")
    conversation_with_message(qtbot, window, "SQL question", "joins")
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
    last = on_owner(window._svc).conversations.messages(cid, limit=1)[0]
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


# ---- files handed to the app ("Open with") ------------------------------------------------


def test_opened_text_files_become_fenced_blocks_after_what_is_typed(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    code = tmp_path / "notes.py"
    code.write_text("print('hi')\n", encoding="utf-8")
    spaced = tmp_path / "read me.md"
    spaced.write_text("# Title\n", encoding="utf-8")
    window.chat_view.clear_banner()
    window.composer.set_text("Please review:")

    window.open_files([str(code), spaced.as_uri()])  # a path and a file:// URL (%20)

    assert window.composer.text() == (
        "Please review:\n\n"
        "notes.py:\n```python\nprint('hi')\n```\n\n"
        "read me.md:\n```markdown\n# Title\n```"
    )
    assert not window.chat_view.banner.isVisible()


def test_files_that_cannot_go_into_a_message_are_named_in_a_banner(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    binary = tmp_path / "photo.bin"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    missing = tmp_path / "gone.txt"
    window.composer.set_text("")

    window.open_files([str(binary), str(missing), "https://example.com/x.txt"])

    assert window.composer.text() == ""
    banner = window.chat_view.banner
    assert banner.isVisible() and banner.kind == "warning"
    assert "photo.bin is not a text file" in banner.text
    assert f"{missing} was not found" in banner.text
    assert "https://example.com/x.txt is not a local file" in banner.text


# ---- errors nobody was prepared for ----------------------------------------------------------


def test_an_unhandled_error_shows_a_banner_naming_the_log_file(
    qtbot: QtBot, window: MainWindow, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("the disk is on fire")

    window.chat_view.clear_banner()
    with qtbot.waitSignal(window._bridge.sig_unhandled_error, timeout=WAIT):
        window._bridge.call(broken())  # no on_error: the bridge must surface it

    banner = window.chat_view.banner
    assert banner.isVisible() and banner.kind == "error"
    assert "RuntimeError: the disk is on fire" in banner.text
    assert str(log_path()) in banner.text
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)


def test_a_reply_that_crashes_names_the_error_and_the_log_file(
    qtbot: QtBot,
    window: MainWindow,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crashing_send(*_args: Any, **_kwargs: Any) -> AsyncIterator[Any]:
        raise RuntimeError("database is locked forever")
        yield  # an async generator, like Turns.send

    monkeypatch.setattr(window._svc.turns, "send", crashing_send)
    window.composer.set_text("hello")
    with qtbot.waitSignal(
        window.controller.sig_streaming, timeout=WAIT, check_params_cb=lambda on: on is False
    ):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)

    banner = window.chat_view.banner
    assert banner.isVisible() and banner.kind == "error"
    assert "RuntimeError: database is locked forever" in banner.text
    assert str(log_path()) in banner.text
    assert "stored is kept" not in banner.text  # nothing is claimed about what was saved
    assert banner.action_id == ACTION_RETRY
    assert not window.controller.streaming
    assert any(
        "database is locked forever" in str(r.exc_info[1]) for r in caplog.records if r.exc_info
    )


def test_the_window_title_names_the_open_chat_and_follows_a_rename(
    qtbot: QtBot, window: MainWindow
) -> None:
    assert window.windowTitle() == "New chat — Halext Desktop"
    cid = conversation_with_message(qtbot, window, "Trip to Lisbon", "hello")
    open_and_wait(qtbot, window, cid)
    qtbot.waitUntil(lambda: window.windowTitle() == "Trip to Lisbon — Halext Desktop")
    # Renamed in the list (F2, type, Enter): the title follows.
    window.sidebar.list.setFocus()
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_F2)
    editor = window.sidebar.list.focusWidget()
    assert editor is not None and editor is not window.sidebar.list
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, "Lisbon, May")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.windowTitle() == "Lisbon, May — Halext Desktop")
    # Ctrl+N: a new chat has no title yet.
    qtbot.keyClick(window.composer, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.windowTitle() == "New chat — Halext Desktop")


def test_the_menu_bar_has_quit_shortcuts_and_about(qtbot: QtBot, window: MainWindow) -> None:
    bar = window.menuBar()
    menus = [a.text() for a in bar.actions()]
    assert menus == ["&File", "&Window", "&Help"]
    file_menu = bar.actions()[0].menu()
    assert isinstance(file_menu, QMenu)
    texts = [a.text().split("\t")[0] for a in file_menu.actions() if not a.isSeparator()]
    assert texts == [
        "&New chat",
        "&Settings…",
        "&Import conversations…",
        "Export conversation as &Markdown…",
        "Export conversation as &JSON…",
        "Export all conversations as JSON…",
        "Export all conversations as Markdown…",
        "&Quit",
    ]
    assert window.menu.quit.shortcut().toString() == "Ctrl+Q"
    assert __version__ in about_text()

    # Help → Keyboard shortcuts (F1): one table of every key, Esc closes it.
    qtbot.keyClick(window.composer, Qt.Key.Key_F1)
    dialog = window.menu.shortcuts_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    rows = dialog.rows()
    assert ["", "Ctrl+Q", "Quit"] in rows
    assert any(r[1] == "Ctrl+Shift+M" and r[2] == "Models" for r in rows)
    qtbot.keyClick(dialog.table, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible())

    # A menu entry does what its key does (the key itself stays the window's).
    window.menu.usage.trigger()
    assert window._usage is not None
    qtbot.waitUntil(window._usage.isVisible)
    window._usage.close()

    # Ctrl+Q closes the window (the app ends with its last window).
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window.composer, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())
    assert window._closed


def test_ctrl_comma_opens_connections_while_the_status_bar_asks_to_sign_in(
    qtbot: QtBot, window: MainWindow
) -> None:
    # No halext server set: the status bar does not ask to sign in to it.
    assert window.status.halext_text() == "halext: not set up — Set up…"
    window.status.set_halext("signed_out")  # as with a server set and no session
    assert window.status.halext_text() == "halext: signed out — Sign in…"
    qtbot.keyClick(window.composer, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialog = window._settings_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Connections"
    # Then Settings open where the user left them.
    dialog.tabs.setCurrentIndex(dialog.tabs.indexOf(dialog.appearance))
    dialog.close()
    window.settings_shortcut()
    qtbot.waitExposed(dialog)
    assert dialog.tabs.currentWidget() is dialog.appearance
