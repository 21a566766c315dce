"""The desktop window end to end: real widgets (pytest-qt), the real Core on its loop
thread, and the protocol test servers. What was (not) sent is proven from the servers'
recorded requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.ui.chat_controller import ACTION_RETRY, ACTION_SIGN_IN
from halext_desktop.ui.chat_model import chip_text, warning_lines
from halext_desktop.ui.main_window import MainWindow
from tests.helpers.storage import on_owner
from tests.servers.halext_server import HalextServer, expected_reply
from tests.servers.ollama_server import OllamaServer

WAIT = 10_000  # ms


@pytest.fixture
def open_window(qtbot: QtBot, make_core: Any) -> Iterator[Callable[..., MainWindow]]:
    """Open main windows like the app does; each one is closed and its core torn down."""
    opened: list[tuple[MainWindow, Any, LoopThread]] = []

    def factory(**settings: Any) -> MainWindow:
        core = make_core(**settings)
        lt = LoopThread().start()
        window = build_window(core, lt)
        assert isinstance(window, MainWindow)
        qtbot.addWidget(window)
        window.resize(1100, 760)
        window.show()
        window.activateWindow()
        opened.append((window, core, lt))
        qtbot.waitUntil(lambda: window._listing is not None, timeout=WAIT)
        return window

    yield factory
    for window, core, lt in opened:
        window.close()
        lt.run(core.aclose(), timeout=5)
        lt.stop()


def sign_in_through_settings(qtbot: QtBot, window: MainWindow) -> None:
    window.open_settings("connections")
    dlg = window._settings_dialog
    assert dlg is not None
    page = dlg.connections
    page.username.clear()
    qtbot.keyClicks(page.username, "dev")
    qtbot.keyClicks(page.password, "dev123")
    with qtbot.waitSignal(dlg.sig_signed_in, timeout=WAIT):
        qtbot.mouseClick(page.sign_in_button, Qt.MouseButton.LeftButton)
    dlg.close()
    qtbot.waitUntil(
        lambda: (
            window._listing is not None
            and any(m.ref.kind == "halext" for m in window._listing.models)
        ),
        timeout=WAIT,
    )


def pick(qtbot: QtBot, window: MainWindow, ref: str) -> None:
    """Ctrl+K, type a filter, Enter — as a keyboard user does."""
    window.picker.open_popup()
    popup = window.picker.popup
    qtbot.waitUntil(popup.isVisible, timeout=WAIT)
    qtbot.keyClicks(popup.filter_edit, ref.split("/", 1)[1])
    with qtbot.waitSignal(window.picker.sig_model_chosen, timeout=WAIT) as blocker:
        qtbot.keyClick(popup.filter_edit, Qt.Key.Key_Return)
    assert blocker.args == [ref]


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    editor = window.composer.editor
    editor.setFocus()
    qtbot.keyClicks(editor, text)
    with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
        qtbot.keyClick(editor, Qt.Key.Key_Return)


def wait_idle(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.controller.streaming, timeout=WAIT)


def last_reply(window: MainWindow) -> Any:
    model = window.chat_view.model
    return model.item(model.rowCount() - 1)


def chat_bodies(server: HalextServer) -> list[dict[str, Any]]:
    return [r.json for r in server.requests_to("/ai/chat/stream")]


def test_sign_in_pick_send_chip_names_what_answered(qtbot, open_window, halext_server) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    assert "dev" in window.status.halext_text()
    pick(qtbot, window, "halext/client:3:qwen2.5:7b")
    send(qtbot, window, "hello halext")
    wait_idle(qtbot, window)
    reply = last_reply(window)
    assert chip_text(reply) == "AI • client:3:qwen2.5:7b · halext"
    assert reply.content == expected_reply("client:3:qwen2.5:7b", "hello halext")
    assert chat_bodies(halext_server)[-1]["model"] == "client:3:qwen2.5:7b"


def test_server_fallback_is_shown_under_the_reply(qtbot, open_window, halext_server) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    window.picker.set_current("halext/ollama:nope")
    send(qtbot, window, "anyone there?")
    wait_idle(qtbot, window)
    reply = last_reply(window)
    assert chip_text(reply) == "AI • mock:llama3.1 · halext"
    assert any("ollama:nope" in w and "mock:llama3.1" in w for w in warning_lines(reply))


def test_disable_cloud_disables_cloud_entries_and_sends_nothing_cloud(
    qtbot, open_window, halext_server
) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    window.open_settings("ai")
    dlg = window._settings_dialog
    box = dlg.ai.disable_cloud
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert window._svc.settings.disable_cloud
    dlg.close()
    # Every cloud row in the picker is disabled, with the reason; the others are not.
    window.picker.open_popup()
    cloud = {str(m.ref) for m in window._listing.models if m.is_cloud}
    rows = {r.ref: r for r in window.picker.popup.visible_rows() if r.ref}
    assert cloud and cloud <= set(rows)
    assert all(not rows[ref].enabled and "cloud" in (rows[ref].reason or "") for ref in cloud)
    assert rows["ollama/qwen2.5:7b"].enabled and rows["halext/client:3:qwen2.5:7b"].enabled
    window.picker.popup.close()
    # Even if a cloud model is forced into the selection, nothing cloud is sent.
    halext_server.clear_requests()
    window.picker.set_current("halext/openai:gpt-4o-mini")
    send(qtbot, window, "this must not leave")
    wait_idle(qtbot, window)
    assert chat_bodies(halext_server) == []
    # Why, once, under the reply; the banner says what to do about it.
    assert any("cloud providers are disabled" in w for w in warning_lines(last_reply(window)))
    assert "cloud providers are disabled" not in window.chat_view.banner.text
    assert window.chat_view.banner.text.startswith("Nothing was sent")
    # The user's text is kept in the conversation.
    cid = window.controller.conversation_id
    assert cid is not None
    stored = on_owner(window._svc).conversations.messages(cid)
    assert stored[-2].content == "this must not leave" and stored[-1].status == "blocked"


def test_offline_sends_nothing_to_halext(qtbot, open_window, halext_server, ollama_server) -> None:
    window = open_window(offline=True)
    window.refresh_health()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "local only")
    wait_idle(qtbot, window)
    assert chip_text(last_reply(window)) == "AI • qwen2.5:7b · local"
    assert "offline" in window.status.halext_text().lower()
    assert halext_server.requests == []
    assert {m.ref.kind for m in window._listing.models} == {"ollama"}


def test_reset_to_default_restores_settings_and_selection(qtbot, open_window) -> None:
    window = open_window(disable_cloud=True, default_model="ollama/qwen2.5:7b")
    pick(qtbot, window, "ollama/qwen3:4b")
    window.open_settings("ai")
    dlg = window._settings_dialog
    dlg.confirm = lambda *_a: True
    with qtbot.waitSignal(dlg.sig_reset_done, timeout=WAIT):
        qtbot.mouseClick(dlg.ai.reset_button, Qt.MouseButton.LeftButton)
    settings = window._svc.settings
    assert not settings.disable_cloud and settings.default_model == ""
    default = window._svc.resolve_default(window._listing)
    assert window.picker.current() == str(default)


def test_model_switch_mid_conversation_is_used_and_survives_restart(
    qtbot, open_window, ollama_server
) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "first")
    wait_idle(qtbot, window)
    pick(qtbot, window, "ollama/qwen3:4b")
    send(qtbot, window, "second")
    wait_idle(qtbot, window)
    models = [r.json["model"] for r in ollama_server.requests_to("/api/chat")]
    assert models[-2:] == ["qwen2.5:7b", "qwen3:4b"]
    cid = window.controller.conversation_id
    window.close()

    again = open_window()
    assert again.controller.conversation_id == cid
    assert again.picker.current() == "ollama/qwen3:4b"

    def texts() -> list[str]:
        model = again.chat_view.model
        return [model.item(i).content for i in range(model.rowCount())]

    # The messages arrive from the database's thread, after the window is up.
    qtbot.waitUntil(lambda: "first" in texts() and "second" in texts(), timeout=WAIT)


def test_stop_mid_stream_keeps_partial_text(qtbot, open_window, ollama_server) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    ollama_server.set_token_delay(0.2)
    send(qtbot, window, "a long story please")
    qtbot.waitUntil(
        lambda: window.chat_view.model.rowCount() >= 2 and bool(last_reply(window).content),
        timeout=WAIT,
    )
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Escape)
    wait_idle(qtbot, window)
    ollama_server.wait_closed_early()
    reply = last_reply(window)
    assert reply.status == "stopped" and reply.content
    assert any("Stopped" in w for w in warning_lines(reply))
    stored = on_owner(window._svc).conversations.get_message(reply.id)
    assert stored is not None
    assert stored.status == "stopped" and stored.content == reply.content


def test_server_error_shows_banner_and_loses_nothing(qtbot, open_window, halext_server) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    window.picker.set_current("halext/ollama:llama3.1:8b")
    halext_server.fail_next("/ai/chat/stream")
    send(qtbot, window, "please survive a 500")
    wait_idle(qtbot, window)
    banner = window.chat_view.banner
    assert any("500" in w for w in warning_lines(last_reply(window)))
    assert banner.isVisible() and banner.action_id == ACTION_RETRY and "500" not in banner.text
    rows = on_owner(window._svc).conversations.messages(window.controller.conversation_id)
    assert rows[-2].content == "please survive a 500" and rows[-1].status == "error"
    assert on_owner(window._svc).usage.recent(1)[0].status.value == "error"


def test_expired_sign_in_shows_sign_in_banner(qtbot, open_window, halext_server) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    window.picker.set_current("halext/ollama:llama3.1:8b")
    halext_server.expire_all_tokens()
    send(qtbot, window, "still there?")
    wait_idle(qtbot, window)
    banner = window.chat_view.banner
    assert any("Signed out" in w for w in warning_lines(last_reply(window)))
    assert banner.text == "Sign in again, then Retry." and banner.action_id == ACTION_SIGN_IN
    rows = on_owner(window._svc).conversations.messages(window.controller.conversation_id)
    assert rows[-2].content == "still there?"
    with qtbot.waitSignal(window.chat_view.sig_banner_action, timeout=WAIT):
        banner.action_button.click()
    assert window._settings_dialog.isVisible()


def test_search_finds_an_old_message(qtbot, open_window) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "the zebra crossing question")
    wait_idle(qtbot, window)
    window.new_chat()
    send(qtbot, window, "something else")
    wait_idle(qtbot, window)
    target = on_owner(window._svc).conversations.list()[-1].id
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.sidebar.search_edit, timeout=WAIT)
    qtbot.keyClicks(window.sidebar.search_edit, "zebra")

    def hits() -> list[tuple[str, str | None]]:
        return [r for r in window.sidebar.visible_rows() if r[0] != "Search results"]

    qtbot.waitUntil(lambda: len(hits()) == 1, timeout=WAIT)
    title, snippet = hits()[0]
    assert title == "the zebra crossing question" and "zebra" in (snippet or "")
    with qtbot.waitSignal(window.sidebar.sig_conversation_selected, timeout=WAIT):
        qtbot.keyClick(window.sidebar.search_edit, Qt.Key.Key_Return)
    assert window.controller.conversation_id == target


def test_window_opens_at_once_with_nothing_reachable(
    qtbot, open_window, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    ollama_server.stop()
    halext_server.stop()
    window = open_window()
    assert window._listing.models == []
    assert "ollama serve" in window.chat_view.banner.text


def test_task_assistant_on_a_local_model_with_cloud_off(qtbot, open_window, halext_server) -> None:
    window = open_window(disable_cloud=True)
    dialog = window.open_assistants("task")
    page = dialog.page("task")
    page.set_model("ollama/qwen2.5:7b")
    qtbot.keyClicks(page.title_edit, "Ship the release")
    page.description_edit.setPlainText("Tag, build, publish, announce")
    with qtbot.waitSignal(page.sig_finished, timeout=WAIT):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert page.lists["subtasks"].items()
    # Health checks may reach halext (cloud off is not offline); no text went there.
    assert [r for r in halext_server.requests if r.method == "POST"] == []
    row = on_owner(window._svc).usage.recent(1)[0]
    assert row.endpoint.startswith("assist:task") and row.status.value == "ok"


def test_side_windows_open_from_the_header(qtbot, open_window) -> None:
    window = open_window()
    for button, attr in (
        (window.providers_button, "_providers"),
        (window.usage_button, "_usage"),
        (window.assistants_button, "_assistants"),
    ):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        widget = getattr(window, attr)
        assert widget is not None and widget.isVisible()
        widget.close()


def trigger(window: MainWindow, message_id: int, label: str) -> None:
    menu = window.chat_view.context_menu_for(message_id)
    assert menu is not None
    action = next(a for a in menu.actions() if a.text() == label)
    action.trigger()
    menu.close()


def test_regenerate_uses_the_model_selected_now(qtbot, open_window, ollama_server) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "answer twice")
    wait_idle(qtbot, window)
    first = last_reply(window)
    pick(qtbot, window, "ollama/qwen3:4b")
    with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
        trigger(window, first.id, "Regenerate")
    wait_idle(qtbot, window)
    reply = last_reply(window)
    assert chip_text(reply) == "AI • qwen3:4b · local" and reply.id != first.id
    assert ollama_server.requests_to("/api/chat")[-1].json["model"] == "qwen3:4b"
    stored = on_owner(window._svc).conversations.messages(window.controller.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[0].content == "answer twice"


def test_edit_and_resend_replaces_the_message_and_what_followed(
    qtbot, open_window, ollama_server
) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "first draft")
    wait_idle(qtbot, window)
    user_row = window.chat_view.model.item(0)
    trigger(window, user_row.id, "Edit and resend")
    assert window.composer.text() == "first draft"
    window.composer.set_text("")
    send(qtbot, window, "second draft")
    wait_idle(qtbot, window)
    stored = on_owner(window._svc).conversations.messages(window.controller.conversation_id)
    assert [m.content for m in stored if m.role == "user"] == ["second draft"]
    assert len(stored) == 2 and stored[1].status == "ok"
    assert ollama_server.requests_to("/api/chat")[-1].json["messages"] == [
        {"role": "user", "content": "second draft"}
    ]
