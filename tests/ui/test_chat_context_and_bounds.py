"""Where the model's context starts (a marker above the oldest message sent) and a view
that stays bounded while it follows the end of a long chat. Real widgets, pytest-qt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from halext_desktop.app.core import Core
from halext_desktop.app.gui import build_window
from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.settings import Settings
from halext_desktop.ui.chat_view import ChatView
from halext_desktop.ui.main_window import MainWindow
from tests.helpers.storage import on_owner
from tests.servers.conftest import ollama_server  # noqa: F401 (fixture)
from tests.servers.ollama_server import ModelSpec, OllamaServer
from tests.ui.test_chat_view import Msg, history, item_of, reply, view

__all__ = ["view"]  # fixture

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

WAIT = 10_000


def cut_reply(mid: int, first: int, tokens: int = 1200) -> Msg:
    return reply(
        mid,
        "The plan, again.",
        requested_model="ollama/tiny:latest",
        meta={"locality": "local", "context_from_id": first, "context_tokens": tokens},
    )


def test_the_marker_sits_above_the_oldest_message_sent_and_goes_with_a_full_reply(
    view: ChatView,
) -> None:
    rows = [*history(1, 40), cut_reply(41, 30)]
    view.load(rows)
    plain = view.delegate.exact_height(item_of(view, 30))
    view.show_context_of(rows[-1])
    start = view.context_start()
    assert start is not None and start[0] == 30
    note = start[1]
    assert note.startswith("Earlier messages are not sent to tiny:latest")
    assert "1,200 tokens" in note
    item = item_of(view, 30)
    assert item.context_note == note
    assert not view.delegate.layout_for(item).marker.isNull()
    assert view.delegate.exact_height(item) > plain  # room for the note above it
    assert all(item_of(view, mid).context_note is None for mid in range(1, 42) if mid != 30)
    # The next reply had the whole chat in its context: no marker.
    view.show_context_of(reply(42, "All of it fit."))
    assert view.context_start() is None
    assert item_of(view, 30).context_note is None
    assert view.delegate.exact_height(item_of(view, 30)) == plain


def test_a_marker_on_an_older_page_appears_when_that_page_is_loaded(view: ChatView) -> None:
    rows = [*history(21, 20), cut_reply(41, 5)]
    view.load(rows, has_more=True)
    view.show_context_of(rows[-1])
    assert view.context_start() is not None and view.model.row_of(5) < 0
    view.prepend(history(1, 20), has_more=False)
    assert item_of(view, 5).context_note == view.context_start()[1]  # type: ignore[index]


def test_back_at_the_bottom_the_view_drops_the_older_pages_it_loaded(
    qtbot: QtBot, view: ChatView
) -> None:
    view.load(history(301, 200), has_more=True)
    bar = view.list_view.verticalScrollBar()
    bar.setValue(bar.minimum())  # the user scrolls up...
    assert not view.is_at_bottom()
    view.prepend(history(1, 300), has_more=False)  # ...and older messages are loaded
    assert view.model.rowCount() == 500
    view.list_view.scrollToBottom()  # back to the end (the list lays out, then scrolls)
    qtbot.waitUntil(lambda: view.model.rowCount() == ChatView.KEEP_ROWS, timeout=WAIT)
    assert view.message_ids() == list(range(301, 501))  # the newest stay
    assert view._has_more  # scrolling up loads them again
    # A reply that streams is never dropped, however many rows come before it.
    view.append_message(Msg(501, "user", "More?"))
    view.append_message(reply(502, "", status="streaming"))
    view.stream_begin(502)
    assert view.model.row_of(502) >= 0


@pytest.fixture
def window(qtbot: QtBot, ollama_server: OllamaServer) -> Iterator[MainWindow]:  # noqa: F811
    ollama_server.set_models([ModelSpec("tiny:latest", context_length=4096)])
    settings = Settings.load()
    settings.set("halext_url", "")
    settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
    core = Core(settings=settings)
    lt = LoopThread().start()
    win = build_window(core, lt)
    assert isinstance(win, MainWindow)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win._listing is not None and bool(win.picker.current()), timeout=WAIT)
    yield win
    win.close()
    lt.run(core.aclose(), timeout=5)
    lt.stop()
    core.close()


def test_the_window_shows_where_the_models_context_starts(
    qtbot: QtBot,
    window: MainWindow,
    ollama_server: OllamaServer,  # noqa: F811
) -> None:
    """40 turns of ~1 KB to a model that takes 4,096 tokens: the newest turns are sent, and
    the chat shows a note above the oldest of them, also after the chat is opened again."""
    store = on_owner(window._svc).conversations
    conv = store.create(title="Long plan")
    for k in range(40):
        role = "user" if k % 2 == 0 else "assistant"
        store.add_message(conv.id, role, f"m{k} " + "word " * 200)
    with qtbot.waitSignal(window.controller.sig_loaded, timeout=WAIT):
        window._open_conversation(conv.id)
    assert window.chat_view.context_start() is None
    ref = window.picker.current()
    assert ref is not None and "tiny" in ref
    ended: list[Any] = []
    window.controller.sig_streaming.connect(ended.append)
    assert window.controller.send("And now?")
    qtbot.waitUntil(lambda: False in ended, timeout=WAIT)
    stored = store.messages(conv.id)
    meta = stored[-1].meta
    first = meta["context_from_id"]
    assert stored[0].id < first < stored[-2].id  # older turns were left out
    start = window.chat_view.context_start()
    assert start is not None and start[0] == first
    assert "Earlier messages are not sent to tiny" in start[1]
    assert item_of(window.chat_view, first).context_note == start[1]
    # Opened again: the stored reply says where its context started.
    window.new_chat()
    with qtbot.waitSignal(window.controller.sig_loaded, timeout=WAIT):
        window._open_conversation(conv.id)
    assert window.chat_view.context_start() == start
