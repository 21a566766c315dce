"""The rough edges a new user hit in a day of use, driven as a user does: the real Core on
its loop thread, the Ollama protocol server (stopped and started like a real ``ollama
serve``), real widgets, clicks and keys.

- models reload when a host comes up, on F5, from the picker's Refresh, and when the window
  comes back after a while; the "nothing reachable" banner goes once models arrive;
- a new chat starts on the model used last, unless a default is set;
- ``OLLAMA_HOST`` shows in Settings → Connections as an override from the environment, and
  its Test checks that address; one name per host everywhere;
- after a click in the chat list, F2 and Delete act on the list, typing goes on in the box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QApplication, QWidget
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.chat_controller import ACTION_CONNECTIONS
from halext_desktop.ui.main_window import STALE_LISTING_S, MainWindow
from halext_desktop.ui.settings.connections_page import ConnectionsPage
from tests.helpers.storage import on_owner
from tests.servers.conftest import ollama_server  # noqa: F401 (fixture)
from tests.servers.ollama_server import OllamaServer, reply_text

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT = 10_000  # ms
WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def open_window(
    qtbot: QtBot,
    ollama_server: OllamaServer,  # noqa: F811
) -> Iterator[WindowFactory]:
    """Open main windows like the app does (an Ollama host named ``name`` at the test
    server, no halext); each is closed and its core torn down."""
    opened: list[tuple[MainWindow, Core, LoopThread]] = []

    def factory(*, name: str = "local", url: str | None = None, **values: Any) -> MainWindow:
        settings = Settings.load()
        settings.set("halext_url", "")
        settings.set("ollama_hosts", [{"name": name, "url": url or ollama_server.url}])
        for key, value in values.items():
            settings.set(key, value)
        core = Core(settings=settings)
        lt = LoopThread().start()
        win = build_window(core, lt)
        assert isinstance(win, MainWindow)
        qtbot.addWidget(win)
        win.resize(1100, 760)
        win.show()
        win.activateWindow()
        opened.append((win, core, lt))
        qtbot.waitUntil(lambda: win._listing is not None, timeout=WAIT)
        return win

    yield factory
    for win, core, lt in opened:
        win.close()
        lt.run(core.aclose(), timeout=5)
        lt.stop()
        core.close()


def pick(qtbot: QtBot, win: MainWindow, ref: str) -> None:
    """Ctrl+K, type, Enter."""
    qtbot.keyClick(win, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    popup = win.picker.popup
    qtbot.waitUntil(popup.isVisible, timeout=WAIT)
    qtbot.keyClicks(popup.filter_edit, ref.split("/", 1)[1])
    with qtbot.waitSignal(win.picker.sig_model_chosen, timeout=WAIT) as chosen:
        qtbot.keyClick(popup.filter_edit, Qt.Key.Key_Return)
    assert chosen.args == [ref]


def send(qtbot: QtBot, win: MainWindow, text: str) -> None:
    editor = win.composer.editor
    editor.setFocus()
    qtbot.keyClicks(editor, text)
    with qtbot.waitSignal(win.controller.sig_streaming, timeout=WAIT):
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not win.controller.any_streaming, timeout=WAIT)


def listed(win: MainWindow) -> set[str]:
    assert win._listing is not None
    return {str(m.ref) for m in win._listing.models}


# ---- 2. the model list follows the routes ------------------------------------------------


def test_models_reload_when_the_host_comes_up_and_the_banner_goes(
    qtbot: QtBot,
    open_window: WindowFactory,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    ollama_server.stop()  # the app starts before Ollama
    win = open_window()
    assert win._listing is not None and win._listing.models == []
    banner = win.chat_view.banner
    assert banner.isVisible() and banner.text.startswith("No models are reachable yet")
    assert banner.action_id == ACTION_CONNECTIONS  # its "Open settings" goes to Connections
    assert win.picker.current() is None
    assert any("connection refused" in r.text.lower() for r in win.picker.popup.visible_rows())

    ollama_server.start()
    win.refresh_health()  # the status bar's next tick
    qtbot.waitUntil(lambda: win.status.host_texts() == ["· local ● up"], timeout=WAIT)
    # The picker, the banner and the selection follow the status bar, without a restart.
    qtbot.waitUntil(lambda: bool(win.picker.current()), timeout=WAIT)
    assert "ollama/qwen2.5:7b" in listed(win)
    assert not banner.isVisible()
    assert not any(r.text.startswith("local") for r in win.picker.popup.visible_rows())
    # The user can simply type and send.
    model = win.picker.current()
    assert model is not None
    send(qtbot, win, "hello now")
    assert win.chat_view.model.items[-1].content == reply_text(model.split("/", 1)[1], "hello now")


def test_f5_and_the_pickers_refresh_list_the_models_again(
    qtbot: QtBot,
    open_window: WindowFactory,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    win = open_window()
    assert "ollama/tinyllama:latest" not in listed(win)
    ollama_server.set_models([*ollama_server.models, "tinyllama:latest"])  # pulled in a terminal
    qtbot.keyClick(win, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: "ollama/tinyllama:latest" in listed(win), timeout=WAIT)

    ollama_server.set_models([*ollama_server.models, "phi3:mini"])
    qtbot.keyClick(win, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    popup = win.picker.popup
    qtbot.waitUntil(popup.isVisible, timeout=WAIT)
    qtbot.mouseClick(popup.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: any(r.ref == "ollama/phi3:mini" for r in popup.visible_rows()), timeout=WAIT
    )
    # F5 inside the picker does the same (the filter keeps the keyboard).
    ollama_server.set_models([*ollama_server.models, "gemma2:2b"])
    qtbot.keyClick(popup.filter_edit, Qt.Key.Key_F5)
    qtbot.waitUntil(
        lambda: any(r.ref == "ollama/gemma2:2b" for r in popup.visible_rows()), timeout=WAIT
    )
    popup.close()


def test_coming_back_to_the_window_after_a_while_lists_again(
    qtbot: QtBot,
    open_window: WindowFactory,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    win = open_window()
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    qtbot.waitUntil(lambda: not win.isActiveWindow(), timeout=WAIT)
    tags = len(ollama_server.requests_to("/api/tags"))
    now = win._clock()
    # Back within a minute: nothing is asked again.
    win._clock = lambda: now + 1
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=WAIT)
    assert len(ollama_server.requests_to("/api/tags")) == tags
    # Back after a while (a model pulled meanwhile): the list is asked for again.
    ollama_server.set_models([*ollama_server.models, "tinyllama:latest"])
    other.activateWindow()
    qtbot.waitUntil(lambda: not win.isActiveWindow(), timeout=WAIT)
    win._clock = lambda: now + STALE_LISTING_S + 1
    win.activateWindow()
    qtbot.waitUntil(lambda: "ollama/tinyllama:latest" in listed(win), timeout=WAIT)


# ---- 4. a new chat starts on the model used last -------------------------------------------


def test_a_new_chat_starts_on_the_model_just_used(
    qtbot: QtBot,
    open_window: WindowFactory,
) -> None:
    win = open_window()
    qtbot.waitUntil(lambda: bool(win.picker.current()), timeout=WAIT)
    first = win.picker.current()
    other = next(r for r in sorted(listed(win)) if r != first and "embed" not in r)
    pick(qtbot, win, other)
    send(qtbot, win, "use this one")
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert win.controller.conversation_id is None
    assert win.picker.current() == other
    # Picked, not yet sent to: still what the user chose last.
    pick(qtbot, win, first or "")
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert win.picker.current() == first


def test_a_default_model_wins_over_the_last_used_one(
    qtbot: QtBot,
    open_window: WindowFactory,
) -> None:
    win = open_window(default_model="ollama/qwen3:4b")
    pick(qtbot, win, "ollama/qwen2.5:7b")
    send(qtbot, win, "once with this")
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert win.picker.current() == "ollama/qwen3:4b"


def test_the_first_chat_after_a_restart_starts_on_the_model_used_last(
    qtbot: QtBot,
    open_window: WindowFactory,
) -> None:
    store = on_owner(_services_for_seeding()).conversations
    conv = store.create(title="Yesterday", default_model_id="ollama/qwen3:4b")
    store.add_message(conv.id, "user", "an older question")
    win = open_window()
    qtbot.waitUntil(lambda: win.picker.current() == "ollama/qwen3:4b", timeout=WAIT)
    assert win.controller.conversation_id is None


def _services_for_seeding() -> Any:
    from tests.helpers.fake_services import FakeServices

    return FakeServices(Settings.load())


# ---- 5. OLLAMA_HOST in Settings, one name per host -------------------------------------------


def test_the_environment_override_shows_in_connections_and_its_test_checks_it(
    qtbot: QtBot,
    open_window: WindowFactory,
    ollama_server: OllamaServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama_server.port}")
    # The settings name a host nobody listens on; OLLAMA_HOST says where Ollama really is.
    win = open_window(name="home", url="http://127.0.0.1:9")
    qtbot.waitUntil(lambda: bool(win.picker.current()), timeout=WAIT)
    win.open_settings("connections")
    dialog = win._settings_dialog
    assert dialog is not None
    page: ConnectionsPage = dialog.connections
    url_cell, name_cell = page.hosts.item(0, 1), page.hosts.item(0, 0)
    assert url_cell is not None and name_cell is not None
    assert name_cell.text() == "home"
    assert url_cell.text() == ollama_server.url  # the address in use...
    assert url_cell.font().italic()  # ...marked as not the setting's
    assert "OLLAMA_HOST" in url_cell.toolTip() and "http://127.0.0.1:9" in url_cell.toolTip()
    note = page.host_env_note
    assert note.isVisible()
    assert note.text() == (
        f"⚠ OLLAMA_HOST=127.0.0.1:{ollama_server.port} in the environment: the host “home” "
        f"is reached at {ollama_server.url} (Settings says http://127.0.0.1:9, used when "
        "OLLAMA_HOST is unset)."
    )
    # The settings keep their own value (editing other rows writes that back).
    assert page.hosts.entries() == [{"name": "home", "url": "http://127.0.0.1:9"}]
    # Test checks the host the app really talks to.
    versions = len(ollama_server.requests_to("/api/version"))
    qtbot.mouseClick(page.host_test, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.host_result.text().startswith("home: ✓"), timeout=WAIT)
    assert len(ollama_server.requests_to("/api/version")) > versions
    dialog.close()


def test_a_host_has_one_name_everywhere(
    qtbot: QtBot,
    open_window: WindowFactory,
) -> None:
    win = open_window(name="home")
    qtbot.waitUntil(lambda: bool(win.picker.current()), timeout=WAIT)
    win.refresh_health()
    qtbot.waitUntil(lambda: win.status.host_texts() == ["· home ● up"], timeout=WAIT)
    assert win.picker.text().endswith("· home ▾")
    headers = [r.text for r in win.picker.popup.visible_rows() if r.ref is None]
    assert headers == ["LOCAL · Ollama home"]
    pick(qtbot, win, "ollama/qwen2.5:7b")
    send(qtbot, win, "who answers?")
    view = win.chat_view
    chip = view.model.data(view.model.index(view.model.rowCount() - 1), view.model.ChipRole)
    assert chip == "AI • qwen2.5:7b · home"
    win.open_settings("connections")
    dialog = win._settings_dialog
    assert dialog is not None
    assert dialog.connections.hosts.shown(0)[0] == "home"
    dialog.close()


# ---- 6. the chat list keeps the keyboard after a click ----------------------------------------


def test_after_a_click_f2_and_delete_act_on_the_chat_list(
    qtbot: QtBot,
    open_window: WindowFactory,
) -> None:
    store = on_owner(_services_for_seeding()).conversations
    for title in ("First chat", "Second chat"):
        conv = store.create(title=title)
        store.add_message(conv.id, "user", f"in {title}")
    win = open_window()
    sidebar = win.sidebar
    qtbot.waitUntil(lambda: "First chat" in sidebar.visible_titles(), timeout=WAIT)
    row = next(
        i for i in range(sidebar.list.count()) if sidebar.list.item(i).text() == "First chat"
    )
    rect = sidebar.list.visualItemRect(sidebar.list.item(row))
    with qtbot.waitSignal(win.controller.sig_loaded, timeout=WAIT):
        qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sidebar.list.hasFocus()  # not the message box
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    assert sidebar.list.state() == QAbstractItemView.State.EditingState
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: sidebar.list.state() != QAbstractItemView.State.EditingState)
    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(sidebar.undo_pending, timeout=WAIT)
    assert "First chat" not in sidebar.visible_titles()
    assert win.composer.text() == ""
    # Typing in the list goes on in the message box.
    sidebar.list.setFocus()
    qtbot.keyClicks(sidebar.list, "Hi")
    assert win.composer.editor.hasFocus()
    assert win.composer.text() == "Hi"
