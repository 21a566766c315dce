"""Replies that keep streaming: switching chats or starting a new one (Ctrl+N) leaves a
reply going in the background; the sidebar marks chats that are streaming and chats with
a reply not read yet; several chats stream at once, each stoppable on its own.

The real Core on its loop thread, the Ollama protocol server (its streams held mid-reply
with ``pause_after`` so a test acts while a reply is in flight, without sleeping), real
widgets and real keys."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.ui.main_window import MainWindow
from halext_desktop.ui.sidebar import STREAMING_MARK, UNREAD_MARK
from tests.helpers.storage import on_owner
from tests.servers.conftest import ollama_server  # noqa: F401 (fixture)
from tests.servers.ollama_server import OllamaServer, reply_text
from tests.ui.test_main_window import WAIT, conversation_with_message, open_and_wait
from tests.ui.test_main_window import window as window  # noqa: F401 (fixture)

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

PROMPT = "tell me about the five rivers of the valley in some detail please"


def send(qtbot: QtBot, win: MainWindow, text: str) -> None:
    editor = win.composer.editor
    editor.setFocus()
    qtbot.keyClicks(editor, text)
    with qtbot.waitSignal(win.controller.sig_streaming, timeout=WAIT):
        qtbot.keyClick(editor, Qt.Key.Key_Return)


def held(qtbot: QtBot, win: MainWindow, pause: Any) -> int:
    """Wait until the reply just sent is held mid-stream by ``pause`` and on screen; its
    conversation's id."""
    qtbot.waitUntil(pause.reached.is_set, timeout=WAIT)
    qtbot.waitUntil(
        lambda: win.controller.conversation_id is not None and win.chat_view.is_streaming(),
        timeout=WAIT,
    )
    cid = win.controller.conversation_id
    assert cid is not None
    return cid


def model_of(win: MainWindow) -> str:
    current = win.picker.current()
    assert current is not None
    return current.split("/", 1)[1]


def stored_reply(win: MainWindow, cid: int) -> Any:
    rows = on_owner(win._svc).conversations.messages(cid)
    assert rows and rows[-1].role == "assistant"
    return rows[-1]


def title_of(win: MainWindow, cid: int) -> str:
    conv = on_owner(win._svc).conversations.get(win._svc.conversations.resolve(cid))
    assert conv is not None
    return str(conv.title)


def wait_all_done(qtbot: QtBot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.controller.any_streaming, timeout=WAIT)


def test_a_reply_keeps_streaming_after_switching_chats(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    other = conversation_with_message(qtbot, window, "Older chat", "an older question")
    pause = ollama_server.pause_after(3, path="/api/chat")
    model = model_of(window)
    send(qtbot, window, PROMPT)
    cid = held(qtbot, window, pause)
    qtbot.waitUntil(lambda: window.sidebar.is_streaming(cid), timeout=WAIT)

    # Another chat, picked in the sidebar: the reply is not stopped.
    open_and_wait(qtbot, window, other)
    assert window.controller.conversation_id == other
    assert not window.controller.streaming  # the chat on screen has none...
    assert window.controller.is_streaming_in(cid)  # ...the other one still has its reply
    assert not window.composer.is_streaming  # Send, not Stop, in this chat
    assert window.sidebar.marks() == {title_of(window, cid): STREAMING_MARK}
    pause.release()
    wait_all_done(qtbot, window)

    stored = stored_reply(window, cid)
    assert stored.status == "ok"
    assert stored.content == reply_text(model, PROMPT)
    assert ollama_server.closed_early == []  # nothing was cut off
    # Finished while not on screen: marked unread, until it is opened.
    qtbot.waitUntil(lambda: window.sidebar.is_unread(cid), timeout=WAIT)
    assert window.sidebar.marks() == {title_of(window, cid): UNREAD_MARK}
    open_and_wait(qtbot, window, cid)
    assert window.chat_view.model.items[-1].content == reply_text(model, PROMPT)
    assert not window.sidebar.is_unread(cid)
    assert window.sidebar.marks() == {}


def test_a_reply_keeps_streaming_after_ctrl_n(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    pause = ollama_server.pause_after(2, path="/api/chat")
    model = model_of(window)
    send(qtbot, window, PROMPT)
    cid = held(qtbot, window, pause)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.conversation_id is None
    assert window.chat_view.message_ids() == []
    assert window.controller.is_streaming_in(cid)
    pause.release()
    wait_all_done(qtbot, window)
    stored = stored_reply(window, cid)
    assert stored.status == "ok" and stored.content == reply_text(model, PROMPT)
    assert not window.chat_view.message_ids()  # the new chat stayed empty


def test_coming_back_shows_the_text_so_far_and_the_rest_as_it_comes(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    first = ollama_server.pause_after(4, path="/api/chat")
    model = model_of(window)
    send(qtbot, window, PROMPT)
    cid = held(qtbot, window, first)
    window.new_chat()
    assert window.chat_view.message_ids() == []
    open_and_wait(qtbot, window, cid)
    item = window.chat_view.model.items[-1]
    # Everything that had arrived is on screen, and the reply is still live there.
    qtbot.waitUntil(lambda: window.chat_view.is_streaming(item.id), timeout=WAIT)
    assert window.controller.streaming and window.composer.is_streaming
    first.release()
    wait_all_done(qtbot, window)
    assert window.chat_view.model.items[-1].content == reply_text(model, PROMPT)
    assert window.chat_view.model.items[-1].status == "ok"
    assert not window.sidebar.is_unread(cid)  # it was on screen when it ended


def test_two_chats_stream_at_once_and_each_stops_on_its_own(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    model = model_of(window)
    hold_one = ollama_server.pause_after(2, path="/api/chat")
    send(qtbot, window, "first chat: " + PROMPT)
    one = held(qtbot, window, hold_one)
    window.new_chat()
    hold_two = ollama_server.pause_after(2, path="/api/chat")
    send(qtbot, window, "second chat: " + PROMPT)
    two = held(qtbot, window, hold_two)
    assert one is not None and two is not None and one != two
    resolve = window._svc.conversations.resolve
    assert window.controller.streaming_conversations() == {resolve(one), resolve(two)}
    # Both rows of the sidebar say so (the second row appears once the list is re-read).
    qtbot.waitUntil(lambda: len(window.sidebar.marks()) == 2, timeout=WAIT)
    titles = {c.title for c in on_owner(window._svc).conversations.list()}
    assert window.sidebar.marks() == dict.fromkeys(titles, STREAMING_MARK)

    # Stop the first one from the sidebar (it is not on screen); the second goes on.
    window.sidebar.select(resolve(one))
    window.sidebar.stop_action.trigger()
    qtbot.waitUntil(lambda: not window.controller.is_streaming_in(one), timeout=WAIT)
    assert window.controller.is_streaming_in(two)
    hold_one.release()
    hold_two.release()
    wait_all_done(qtbot, window)
    assert stored_reply(window, resolve(one)).status == "stopped"
    second = stored_reply(window, two)
    assert second.status == "ok"
    assert second.content == reply_text(model, "second chat: " + PROMPT)


def test_stop_in_the_chat_on_screen_stops_only_that_reply(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    hold_bg = ollama_server.pause_after(2, path="/api/chat")
    send(qtbot, window, "background: " + PROMPT)
    background = held(qtbot, window, hold_bg)
    window.new_chat()
    hold_fg = ollama_server.pause_after(2, path="/api/chat")
    send(qtbot, window, "foreground: " + PROMPT)
    foreground = held(qtbot, window, hold_fg)
    assert background is not None and foreground is not None
    # The Stop button stops the chat on screen, not the other one.
    with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
        qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
    assert not window.controller.streaming
    assert window.controller.is_streaming_in(background)
    hold_fg.release()
    hold_bg.release()
    wait_all_done(qtbot, window)
    resolve = window._svc.conversations.resolve
    assert stored_reply(window, resolve(foreground)).status == "stopped"
    assert stored_reply(window, resolve(background)).status == "ok"
