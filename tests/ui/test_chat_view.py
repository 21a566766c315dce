"""ChatView driven as a user would: real widgets, real clicks, real timers (no sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QHelpEvent, QPalette
from PySide6.QtWidgets import QApplication, QToolTip
from pytestqt.qtbot import QtBot

from halext_desktop.ui import theme
from halext_desktop.ui.chat_delegate import DOC_CACHE_SIZE
from halext_desktop.ui.chat_model import (
    ChatModel,
    MessageItem,
    chip_text,
    sent_text,
    stats_text,
    stats_tooltip,
    warning_lines,
)
from halext_desktop.ui.chat_view import EMPTY_HINT, EMPTY_HINT_READY, ChatView


@dataclass
class Msg:
    """The attributes of storage's MessageRow (the view is duck-typed)."""

    id: int
    role: str
    content: str
    status: str = "ok"
    model_ref: str | None = None
    requested_model: str | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    conversation_id: int = 1
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def reply(mid: int, content: str, **kw: Any) -> Msg:
    kw.setdefault("model_ref", "ollama/llama3.1:8b")
    kw.setdefault("meta", {"locality": "local"})
    return Msg(mid, "assistant", content, **kw)


def history(first: int, count: int, lines: int = 3) -> list[Msg]:
    out: list[Msg] = []
    for mid in range(first, first + count):
        text = "\n".join(f"Message {mid}, line {k} with some words." for k in range(lines))
        out.append(Msg(mid, "user", text) if mid % 2 else reply(mid, text))
    return out


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[ChatView]:
    v = ChatView()
    v.resize(760, 560)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.clear_banner()


def item_of(view: ChatView, mid: int) -> MessageItem:
    """The model's item for message ``mid`` (a test that expects it fails here if absent)."""
    item = view.model.item_by_id(mid)
    assert item is not None, f"message {mid} is not in the view"
    return item


def row_index(view: ChatView, mid: int) -> Any:
    index = view.model.index_of(mid)
    assert index.isValid()
    return index


def visible_in_viewport(view: ChatView, mid: int) -> bool:
    rect = view.list_view.visualRect(row_index(view, mid))
    return rect.intersects(view.list_view.viewport().rect())


def bottom_gap(view: ChatView) -> int:
    """Pixels between the end of the last message and the bottom of the viewport."""
    last = view.model.items[-1]
    rect = view.list_view.visualRect(row_index(view, last.id))
    content_bottom = rect.top() + view.delegate.exact_height(last)
    return view.list_view.viewport().height() - content_bottom


# ---- empty state, chip, warnings ------------------------------------------------------------


def test_empty_state_shows_hint_until_a_message_arrives(view: ChatView, qtbot: QtBot) -> None:
    assert view.empty_label.isVisible()
    assert view.empty_label.text() == EMPTY_HINT
    assert not view.list_view.isVisible()
    view.append_message(Msg(1, "user", "hello"))
    qtbot.waitUntil(lambda: view.list_view.isVisible())
    assert not view.empty_label.isVisible()
    view.load([])
    assert view.empty_label.isVisible()


def test_chip_names_what_answered_and_the_route(view: ChatView) -> None:
    view.load(
        [
            Msg(1, "user", "hi"),
            reply(
                2,
                "cloud answer",
                model_ref="halext/openai:gpt-4o-mini",
                meta={
                    "locality": "cloud",
                    "latency_ms": 1234,
                    "ttft_ms": 400,
                    "response_tokens": 312,
                    "tokens_exact": False,
                },
            ),
            reply(
                3,
                "local answer",
                model_ref="ollama/llama3.1:8b",
                meta={
                    "locality": "local",
                    "latency_ms": 800,
                    "response_tokens": 40,
                    "tokens_exact": True,
                },
            ),
        ]
    )
    chips = [view.model.data(view.model.index(r), ChatModel.ChipRole) for r in range(3)]
    assert chips == ["You", "AI • openai:gpt-4o-mini · halext", "AI • llama3.1:8b · local"]
    stats = [view.model.data(view.model.index(r), ChatModel.StatsRole) for r in (1, 2)]
    assert stats == ["0.4 s / 1.2 s · ~312 tok", "0.8 s · 40 tok"]
    # What the delegate paints is the same text.
    painted = view.delegate.layout_for(view.model.item(1))
    assert (painted.chip_text, painted.stats_text) == (chips[1], stats[0])


def test_chip_before_anything_answered_shows_the_asked_model(view: ChatView) -> None:
    view.load(
        [
            Msg(
                1,
                "assistant",
                "",
                status="pending",
                requested_model="ollama@studio/qwen2.5:14b",
                meta={"locality": "self-hosted"},
            )
        ]
    )
    assert view.model.data(view.model.index(0), ChatModel.ChipRole) == "AI • qwen2.5:14b · studio"


def test_stats_text_leaves_out_what_is_unknown() -> None:
    assert stats_text({}) == ""
    assert stats_text({"latency_ms": 15_000}) == "15 s"
    assert stats_text(
        {"ttft_ms": 50, "latency_ms": 90, "response_tokens": 3, "tokens_exact": True}
    ) == ("50 ms / 90 ms · 3 tok")
    # Nothing came yet: an estimate of nothing is not shown ("~0 tok")...
    assert stats_text({"latency_ms": 40, "response_tokens": 0, "tokens_exact": False}) == "40 ms"
    # ...but a count the server gave is, even when it is zero.
    assert stats_text({"latency_ms": 40, "response_tokens": 0, "tokens_exact": True}) == (
        "40 ms · 0 tok"
    )


def test_an_empty_finished_reply_says_so(view: ChatView) -> None:
    view.load(
        [
            Msg(1, "user", "say nothing"),
            reply(2, "", meta={"locality": "local", "response_tokens": 0, "tokens_exact": True}),
            reply(3, "", status="pending"),
        ]
    )
    assert view.model.data(view.model.index(1), ChatModel.WarningsRole) == [
        "⚠ Empty reply: the model sent no text — Regenerate, or try another model"
    ]
    assert view.model.data(view.model.index(2), ChatModel.WarningsRole) == []  # on its way


def test_tokens_per_second_only_when_the_route_measured_it() -> None:
    measured = {
        "latency_ms": 4000,
        "response_tokens": 282,
        "tokens_exact": True,
        "eval_count": 282,
        "eval_duration_ns": 4_535_599_000,  # ollama-protocol.md's example: 62.2 tokens/s
    }
    assert stats_text(measured) == "4.0 s · 282 tok · 62.2 tok/s"
    assert "Speed: 62.2 tokens/s (282 tokens in 4.5 s, measured by" in stats_tooltip(measured)
    fast = dict(measured, eval_count=500, eval_duration_ns=2_000_000_000)
    assert stats_text(fast).endswith(" · 250 tok/s")
    for missing in ({}, {"eval_count": 282}, {"eval_count": 282, "eval_duration_ns": 0}):
        estimate = {"latency_ms": 4000, "response_tokens": 70, **missing}
        assert "tok/s" not in stats_text(estimate)
        assert "Speed" not in stats_tooltip(estimate)


def test_sent_time_is_local_and_brief() -> None:
    today = date(2026, 11, 30)
    assert sent_text(datetime(2026, 11, 30, 14, 2).astimezone(), today) == "today 14:02"
    assert sent_text(datetime(2026, 11, 29, 9, 5).astimezone(), today) == "yesterday 09:05"
    assert sent_text(datetime(2026, 3, 3, 23, 59).astimezone(), today) == "3 Mar 23:59"
    assert sent_text(datetime(2025, 11, 3, 8, 0).astimezone(), today) == "3 Nov 2025"
    assert sent_text(None, today) == ""
    # The database keeps UTC without a zone: shown in local time.
    utc_naive = datetime(2026, 11, 30, 12, 0)
    local = utc_naive.replace(tzinfo=UTC).astimezone()
    assert sent_text(utc_naive, local.date()) == f"today {local.hour:02d}:{local.minute:02d}"


def test_on_a_new_day_today_becomes_yesterday(view: ChatView, qtbot: QtBot) -> None:
    written = datetime(2026, 11, 30, 23, 58).astimezone()
    view.delegate.today = lambda: written.date()
    view.delegate._day_checked = -10.0  # check the date at the next layout
    view.load([Msg(1, "user", "late question", created_at=written)])
    qtbot.waitUntil(lambda: visible_in_viewport(view, 1))
    assert view.delegate.layout_for(item_of(view, 1)).sent_text == "today 23:58"
    view.delegate.today = lambda: written.date() + timedelta(days=1)
    view.delegate._day_checked = -10.0
    assert view.delegate.layout_for(item_of(view, 1)).sent_text == "yesterday 23:58"


def test_each_message_shows_when_it_was_written_with_the_full_date_on_hover(
    view: ChatView, qtbot: QtBot
) -> None:
    asked = datetime.now(UTC) - timedelta(minutes=3)
    answered = asked + timedelta(seconds=2)
    meta = {"locality": "local", "latency_ms": 1200, "response_tokens": 40, "tokens_exact": True}
    meta |= {"eval_count": 40, "eval_duration_ns": 800_000_000}
    view.load(
        [Msg(1, "user", "hi", created_at=asked), reply(2, "hello", meta=meta, created_at=answered)]
    )
    qtbot.waitUntil(lambda: visible_in_viewport(view, 2))
    user_rl = view.delegate.layout_for(item_of(view, 1))
    ai_rl = view.delegate.layout_for(item_of(view, 2))
    assert user_rl.sent_text == sent_text(asked) != ""
    assert ai_rl.sent_text.startswith(sent_text(answered))
    assert ai_rl.stats_text == "1.2 s · 40 tok · 50.0 tok/s"
    # Quietly on the right of the header, left of the timings, clear of the chip.
    assert ai_rl.sent.right() <= ai_rl.stats.left() + 0.5
    assert ai_rl.sent.left() > ai_rl.chip.right()
    assert user_rl.sent.right() == pytest.approx(user_rl.text_x + user_rl.text_w)

    viewport = view.list_view.viewport()
    row = view.list_view.visualRect(row_index(view, 2))
    pos = row.topLeft() + ai_rl.sent.center().toPoint()
    QApplication.sendEvent(
        viewport, QHelpEvent(QEvent.Type.ToolTip, pos, viewport.mapToGlobal(pos))
    )
    local = answered.astimezone()
    assert QToolTip.text().startswith("Answered ") and f"{local:%H:%M:%S}" in QToolTip.text()
    pos = row.topLeft() + ai_rl.stats.center().toPoint()
    QApplication.sendEvent(
        viewport, QHelpEvent(QEvent.Type.ToolTip, pos, viewport.mapToGlobal(pos))
    )
    assert "Speed: 50.0 tokens/s" in QToolTip.text()
    QToolTip.hideText()


def test_warning_lines_for_notes_stop_error_and_block(view: ChatView) -> None:
    note = "Asked ollama:qwen2.5 — the server answered with mock:llama3.1"
    view.load(
        [
            reply(1, "fallback text", meta={"locality": "self-hosted", "notes": [note]}),
            reply(2, "partial", status="stopped"),
            reply(3, "partial too", status="error", error="connection dropped"),
            reply(4, "", status="error", error="Connection refused"),
            reply(5, "", status="blocked"),
            reply(6, "all good"),
        ]
    )
    warnings = [view.model.data(view.model.index(r), ChatModel.WarningsRole) for r in range(6)]
    assert warnings[0] == [f"⚠ {note}"]
    assert warnings[1] == ["⚠ Stopped — partial reply kept"]
    assert warnings[2] == ["⚠ Failed part-way: connection dropped — partial reply kept"]
    assert warnings[3] == ["⚠ Failed: Connection refused"]
    assert warnings[4][0].startswith("⚠ Blocked")
    assert warnings[5] == []
    # The painted row carries the same lines, under the body.
    painted = view.delegate.layout_for(view.model.item(2))
    assert [text for text, _ in painted.warnings] == warnings[2]
    assert painted.warn_rect.top() >= painted.body.bottom()


# ---- code-block copy --------------------------------------------------------------------------


def test_clicking_a_code_blocks_copy_link_copies_exactly_that_code(
    view: ChatView, qtbot: QtBot
) -> None:
    first = "print('first')"
    second = 'def f(x: int) -> str:\n    return f"<b>{x}</b>"  # & not html\n\n\treturn'
    view.load([reply(7, f"Two blocks:\n\n```python\n{first}\n```\n\nand\n\n```\n{second}\n```\n")])
    QGuiApplication.clipboard().setText("before")
    qtbot.waitUntil(lambda: view.anchor_rect(7, "copy:1") is not None)
    rect = view.anchor_rect(7, "copy:1")
    assert rect is not None and view.list_view.viewport().rect().contains(rect.center())

    qtbot.mouseMove(view.list_view.viewport(), rect.center())
    qtbot.waitUntil(
        lambda: view.list_view.viewport().cursor().shape() == Qt.CursorShape.PointingHandCursor
    )
    with qtbot.waitSignal(view.sig_copied, timeout=2000) as blocker:
        qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [second]
    assert QGuiApplication.clipboard().text() == second

    first_rect = view.anchor_rect(7, "copy:0")
    assert first_rect is not None and first_rect.top() < rect.top()
    qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=first_rect.center())
    assert QGuiApplication.clipboard().text() == first


def test_a_highlighted_block_copies_byte_for_byte(view: ChatView, qtbot: QtBot) -> None:
    code = "\n# leading blank line above\ndef f(x):\n\treturn x  \n\n\n  s = 'a\tb'   \n"
    view.load([reply(3, f"Look:\n\n```python\n{code}\n```\n")])
    qtbot.waitUntil(lambda: view.anchor_rect(3, "copy:0") is not None)
    rl = view.delegate.layout_for(item_of(view, 3))
    assert rl.doc is not None
    # Highlighted: the block's characters carry several colours.
    colours = set()
    block = rl.doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            colours.add(it.fragment().charFormat().foreground().color().name())
            it += 1
        block = block.next()
    assert len(colours) >= 3
    assert code in rl.doc.toPlainText().replace("\u2029", "\n")
    rect = view.anchor_rect(3, "copy:0")
    assert rect is not None
    with qtbot.waitSignal(view.sig_copied, timeout=2000) as blocker:
        qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [code]
    assert QGuiApplication.clipboard().text() == code


def test_clicking_plain_text_copies_nothing(view: ChatView, qtbot: QtBot) -> None:
    view.load([reply(1, "```\ncode\n```\n\nJust prose here, nothing to copy.")])
    QGuiApplication.clipboard().setText("unchanged")
    item = view.model.item(0)
    rl = view.delegate.layout_for(item)
    row = view.list_view.visualRect(view.model.index(0))
    prose = QPoint(int(rl.body.left()) + 5, int(rl.body.bottom()) - 3) + row.topLeft()
    with qtbot.assertNotEmitted(view.sig_copied):
        qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=prose)
    assert QGuiApplication.clipboard().text() == "unchanged"


# ---- streaming ------------------------------------------------------------------------------


class DeltaFeeder:
    """Feeds deltas from a 1 ms timer, as the bridge delivers chunks: many small events."""

    def __init__(self, view: ChatView, mid: int, deltas: list[str]) -> None:
        self.view, self.mid, self.deltas = view, mid, deltas
        self.sent = 0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.timer.start()

    def _tick(self) -> None:
        self.view.stream_delta(self.mid, self.deltas[self.sent])
        self.sent += 1
        if self.sent == len(self.deltas):
            self.timer.stop()


def test_streaming_deltas_are_buffered_into_few_model_updates(view: ChatView, qtbot: QtBot) -> None:
    view.load(history(1, 20))
    view.append_message(
        Msg(100, "assistant", "", status="pending", requested_model="ollama/llama3.1:8b")
    )
    view.stream_begin(100)
    row = view.model.row_of(100)
    changes: list[int] = []
    resets: list[int] = []
    view.model.dataChanged.connect(
        lambda tl, br, _roles=(): changes.append(tl.row()) if tl.row() == row else None
    )
    view.model.modelReset.connect(lambda: resets.append(1))
    view.model.layoutChanged.connect(lambda *_: resets.append(1))
    deltas = [f"tok{k} " if k % 40 else f"tok{k}\n\n" for k in range(500)]
    feeder = DeltaFeeder(view, 100, deltas)
    feeder.start()
    expected = "".join(deltas)
    qtbot.waitUntil(lambda: item_of(view, 100).content == expected, timeout=20_000)
    assert feeder.sent == 500
    assert 1 <= len(changes) <= len(deltas) // 5, len(changes)
    assert resets == []
    assert view.is_streaming(100)
    assert item_of(view, 100).status == "streaming"
    assert view.delegate.layout_for(item_of(view, 100)).cursor is not None

    final = reply(100, expected, meta={"locality": "local", "latency_ms": 900})
    view.stream_end(100, final)
    item = item_of(view, 100)
    assert (item.content, item.status) == (expected, "ok")
    assert not view.is_streaming()
    assert view.delegate.layout_for(item).cursor is None


def test_stream_end_flushes_what_is_still_buffered(view: ChatView) -> None:
    view.load([Msg(1, "user", "q"), Msg(2, "assistant", "", status="pending")])
    view.stream_begin(2)
    view.stream_delta(2, "Hello ")
    view.stream_delta(2, "world")
    assert item_of(view, 2).content == ""  # buffered, not yet in the model
    view.stream_end(2, reply(2, "", status="stopped"))  # storage had nothing: keep what was shown
    item = item_of(view, 2)
    assert (item.content, item.status) == ("Hello world", "stopped")


def test_update_during_streaming_keeps_the_streamed_text(view: ChatView, qtbot: QtBot) -> None:
    view.load(
        [
            Msg(1, "user", "q"),
            Msg(2, "assistant", "", status="pending", requested_model="halext/ollama:qwen2.5"),
        ]
    )
    view.stream_begin(2)
    view.stream_delta(2, "partial answer")
    view.flush_stream()
    view.update_message(
        Msg(
            2,
            "assistant",
            "",
            status="streaming",
            model_ref="halext/mock:llama3.1",
            meta={"locality": "self-hosted"},
        )
    )
    item = item_of(view, 2)
    assert item.content == "partial answer"
    assert view.model.data(view.model.index(1), ChatModel.ChipRole) == "AI • mock:llama3.1 · halext"


def test_streaming_follows_the_bottom_when_pinned(view: ChatView, qtbot: QtBot) -> None:
    view.load(history(1, 40))
    qtbot.waitUntil(lambda: visible_in_viewport(view, 40))
    assert view.is_at_bottom()
    view.append_message(reply(41, "", status="pending"))
    view.stream_begin(41)
    for k in range(30):
        view.stream_delta(41, f"Line {k} of a reply that keeps growing.\n\n")
    view.flush_stream()
    sb = view.list_view.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 0 and abs(bottom_gap(view)) <= 1)
    assert view.is_at_bottom()


def test_streaming_does_not_move_a_view_scrolled_up(view: ChatView, qtbot: QtBot) -> None:
    view.load(history(1, 40))
    sb = view.list_view.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 400 and sb.value() == sb.maximum())
    sb.setValue(sb.maximum() // 2)  # the user scrolls up
    assert not view.is_at_bottom()
    top = view.list_view.indexAt(QPoint(1, 0))
    before = (top.row(), view.list_view.visualRect(top).top(), sb.value())
    view.append_message(reply(41, "", status="pending"))
    view.stream_begin(41)
    for k in range(30):
        view.stream_delta(41, f"Line {k}\n\n")
    view.flush_stream()
    qtbot.waitUntil(lambda: view.delegate.is_exact(item_of(view, 41)))
    top = view.list_view.indexAt(QPoint(1, 0))
    assert (top.row(), view.list_view.visualRect(top).top(), sb.value()) == before
    assert not view.is_at_bottom()


# ---- lazy loading ---------------------------------------------------------------------------


def test_scrolling_to_the_top_asks_for_older_messages_and_prepend_keeps_position(
    view: ChatView, qtbot: QtBot
) -> None:
    requests: list[int] = []
    view.sig_load_more.connect(requests.append)
    view.load(history(101, 60), has_more=True)
    sb = view.list_view.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 0 and sb.value() == sb.maximum())
    assert requests == []  # at the bottom nothing is asked for

    with qtbot.waitSignal(view.sig_load_more, timeout=2000) as blocker:
        sb.setValue(0)
    assert blocker.args == [101]
    anchor = view.list_view.indexAt(QPoint(1, 0))
    anchor_id = view.model.item(anchor.row()).id
    anchor_top = view.list_view.visualRect(anchor).top()

    view.prepend(history(41, 60), has_more=False)
    qtbot.waitUntil(lambda: sb.value() > 0)
    assert view.model.oldest_id == 41
    assert view.model.rowCount() == 120
    qtbot.waitUntil(
        lambda: view.list_view.visualRect(row_index(view, anchor_id)).top() == anchor_top
    )
    with qtbot.assertNotEmitted(view.sig_load_more):
        sb.setValue(0)
        QApplication.processEvents()
    assert requests == [101]


def test_ten_thousand_messages_load_and_show_the_newest(view: ChatView, qtbot: QtBot) -> None:
    messages = history(1, 10_000, lines=2)
    view.load(messages)
    assert view.model.rowCount() == 10_000
    qtbot.waitUntil(lambda: visible_in_viewport(view, 10_000))
    assert view.is_at_bottom()
    assert not visible_in_viewport(view, 1)
    # Only what is on screen (and a margin) was rendered.
    assert 0 < view.delegate.cached_documents <= min(DOC_CACHE_SIZE, 60)
    sb = view.list_view.verticalScrollBar()
    sb.setValue(sb.maximum() // 2)
    middle = view.model.item(view.list_view.indexAt(QPoint(1, 10)).row())
    assert 2_000 < middle.id < 8_000
    qtbot.waitUntil(lambda: view.delegate.is_exact(middle))


# ---- edits, removal, actions ----------------------------------------------------------------


def test_append_update_and_remove_from(view: ChatView) -> None:
    view.load(history(1, 6))
    view.append_message(Msg(7, "user", "new"))
    view.update_message(Msg(7, "user", "edited", status="error", error="offline"))
    item = item_of(view, 7)
    assert (item.content, item.status) == ("edited", "error")
    assert view.model.data(view.model.index(6), ChatModel.WarningsRole) == ["⚠ Not sent: offline"]
    view.remove_from(4)
    assert view.message_ids() == [1, 2, 3]
    view.remove_from(999)  # unknown id: nothing happens
    assert view.message_ids() == [1, 2, 3]


def conversation(view: ChatView) -> None:
    view.load(
        [
            Msg(1, "user", "first question"),
            reply(2, "first answer"),
            Msg(3, "user", "second question"),
            reply(4, "second answer"),
        ]
    )


def action_texts(view: ChatView, mid: int) -> list[str]:
    menu = view.context_menu_for(mid)
    assert menu is not None
    texts = [a.text() for a in menu.actions()]
    menu.close()
    return texts


def test_context_menu_offers_the_right_actions(view: ChatView, qtbot: QtBot) -> None:
    conversation(view)
    assert action_texts(view, 1) == ["Copy message", "Select all", "Edit and resend"]
    assert action_texts(view, 2) == ["Copy message", "Select all"]  # not the last reply
    assert action_texts(view, 4) == ["Copy message", "Select all", "Regenerate"]

    menu = view.context_menu_for(3)
    assert menu is not None
    with qtbot.waitSignal(view.sig_edit_requested) as edit:
        next(a for a in menu.actions() if a.text() == "Edit and resend").trigger()
    assert edit.args == [3]
    menu = view.context_menu_for(4)
    assert menu is not None
    with qtbot.waitSignal(view.sig_regenerate_requested) as regen:
        next(a for a in menu.actions() if a.text() == "Regenerate").trigger()
    assert regen.args == [4]
    menu = view.context_menu_for(2)
    assert menu is not None
    next(a for a in menu.actions() if a.text() == "Copy message").trigger()
    assert QGuiApplication.clipboard().text() == "first answer"


def test_no_edit_or_regenerate_while_a_reply_streams(view: ChatView) -> None:
    conversation(view)
    view.append_message(Msg(5, "user", "third"))
    view.append_message(reply(6, "", status="pending"))
    view.stream_begin(6)
    assert action_texts(view, 1) == ["Copy message", "Select all"]
    assert "Regenerate" not in action_texts(view, 6)


def test_hover_buttons_under_the_message(view: ChatView, qtbot: QtBot) -> None:
    conversation(view)
    qtbot.waitUntil(lambda: visible_in_viewport(view, 4))
    rect = view.list_view.visualRect(row_index(view, 4))
    qtbot.mouseMove(view.list_view.viewport(), rect.center())
    bar = view.hover_bar
    qtbot.waitUntil(lambda: bar.isVisible() and bar.message_id == 4)
    assert bar.regenerate_button.isVisible() and not bar.edit_button.isVisible()
    assert rect.contains(bar.geometry().center())
    with qtbot.waitSignal(view.sig_regenerate_requested) as regen:
        qtbot.mouseClick(bar.regenerate_button, Qt.MouseButton.LeftButton)
    assert regen.args == [4]

    rect = view.list_view.visualRect(row_index(view, 3))
    qtbot.mouseMove(view.list_view.viewport(), rect.center())
    qtbot.waitUntil(lambda: bar.message_id == 3)
    assert bar.edit_button.isVisible() and not bar.regenerate_button.isVisible()
    with qtbot.waitSignal(view.sig_edit_requested) as edit:
        qtbot.mouseClick(bar.edit_button, Qt.MouseButton.LeftButton)
    assert edit.args == [3]
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.mouseClick(bar.copy_button, Qt.MouseButton.LeftButton)
    assert copied.args == ["second question"]


def test_accessible_names(view: ChatView) -> None:
    assert view.list_view.accessibleName() == "Conversation"
    bar = view.hover_bar
    names = {b.accessibleName() for b in (bar.copy_button, bar.edit_button, bar.regenerate_button)}
    assert names == {"Copy message", "Edit and resend", "Regenerate reply"}
    view.load([Msg(1, "user", "hi")])
    assert view.model.data(view.model.index(0), Qt.ItemDataRole.AccessibleTextRole) == "You: hi"


# ---- banner ---------------------------------------------------------------------------------


def test_banner_action_close_and_clear(view: ChatView, qtbot: QtBot) -> None:
    view.show_banner("error", "Connection refused at 127.0.0.1:11434", "Retry", "retry")
    banner = view.banner
    assert banner.isVisible() and banner.kind == "error"
    assert banner.label.text() == "Connection refused at 127.0.0.1:11434"
    assert banner.action_button.text() == "Retry"
    with qtbot.waitSignal(view.sig_banner_action) as action:
        qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    assert action.args == ["retry"]
    with qtbot.waitSignal(view.sig_banner_closed) as closed:
        qtbot.mouseClick(banner.close_button, Qt.MouseButton.LeftButton)
    assert closed.args == ["retry"]
    assert not banner.isVisible()

    view.show_banner("warning", "Settings could not be read; defaults are used.")
    assert banner.isVisible() and not banner.action_button.isVisible()
    view.clear_banner()
    assert not banner.isVisible()


def test_banner_keeps_a_pinned_view_at_the_bottom(view: ChatView, qtbot: QtBot) -> None:
    view.load(history(1, 40))
    qtbot.waitUntil(lambda: visible_in_viewport(view, 40) and abs(bottom_gap(view)) <= 1)
    view.show_banner("info", "Editing a message.", "Cancel edit", "cancel_edit")
    qtbot.waitUntil(lambda: abs(bottom_gap(view)) <= 1)
    assert view.is_at_bottom()


# ---- palette --------------------------------------------------------------------------------


def test_follows_a_dark_palette(view: ChatView, qtbot: QtBot) -> None:
    view.load([Msg(1, "user", "hi"), reply(2, "`code`")])
    light_html = view.delegate.layout_for(view.model.item(1)).doc.toHtml()  # type: ignore[union-attr]
    view.setPalette(theme.dark_palette())
    qtbot.waitUntil(lambda: theme.is_dark(view.palette()))
    dark_html = view.delegate.layout_for(view.model.item(1)).doc.toHtml()  # type: ignore[union-attr]
    assert light_html != dark_html
    bubble = theme.user_bubble(view.palette())
    assert bubble.lightness() < 90
    assert theme.user_bubble(theme.light_palette()).lightness() > 200
    assert view.palette().color(QPalette.ColorRole.Base).lightness() < 60


def test_right_click_and_menu_key_open_the_message_menu(view: ChatView, qtbot: QtBot) -> None:
    conversation(view)
    qtbot.waitUntil(lambda: visible_in_viewport(view, 4))
    viewport = view.list_view.viewport()
    rect = view.list_view.visualRect(row_index(view, 3))
    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, rect.center(), viewport.mapToGlobal(rect.center())
    )
    QApplication.sendEvent(viewport, event)
    menu = view.menu
    assert menu is not None and menu.isVisible()
    assert [a.text() for a in menu.actions()] == ["Copy message", "Select all", "Edit and resend"]
    menu.close()
    qtbot.waitUntil(lambda: view.menu is None)

    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 4))
    key_event = QContextMenuEvent(
        QContextMenuEvent.Reason.Keyboard, QPoint(5, 5), view.list_view.mapToGlobal(QPoint(5, 5))
    )
    QApplication.sendEvent(view.list_view, key_event)
    menu = view.menu
    assert menu is not None
    assert [a.text() for a in menu.actions()] == ["Copy message", "Select all", "Regenerate"]
    menu.close()


def test_ctrl_c_copies_the_focused_message(view: ChatView, qtbot: QtBot) -> None:
    conversation(view)
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 2))
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.list_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied.args == ["first answer"]
    assert QGuiApplication.clipboard().text() == "first answer"


def test_tooltips_explain_timings_and_the_chip(view: ChatView, qtbot: QtBot) -> None:
    view.load(
        [
            reply(
                1,
                "answer",
                model_ref="halext/mock:llama3.1",
                requested_model="halext/ollama:llama3.1",
                meta={
                    "locality": "self-hosted",
                    "ttft_ms": 300,
                    "latency_ms": 2100,
                    "response_tokens": 55,
                    "prompt_tokens": 12,
                    "tokens_exact": False,
                },
            )
        ]
    )
    qtbot.waitUntil(lambda: visible_in_viewport(view, 1))
    viewport = view.list_view.viewport()
    row = view.list_view.visualRect(row_index(view, 1))
    painted = view.delegate.layout_for(view.model.item(0))

    def tip_at(local: QPoint) -> str:
        pos = row.topLeft() + local
        QApplication.sendEvent(
            viewport, QHelpEvent(QEvent.Type.ToolTip, pos, viewport.mapToGlobal(pos))
        )
        return QToolTip.text()

    stats_tip = tip_at(painted.stats.center().toPoint())
    assert "First token after 0.3 s" in stats_tip and "Total time 2.1 s" in stats_tip
    assert "Reply: 55 tokens (estimated)" in stats_tip
    chip_tip = tip_at(painted.chip.center().toPoint())
    assert "Answered by halext/mock:llama3.1" in chip_tip
    assert "Asked for halext/ollama:llama3.1" in chip_tip
    QToolTip.hideText()


def test_long_conversation_streams_without_a_relayout_per_flush(
    view: ChatView, qtbot: QtBot
) -> None:
    view.load(history(1, 400, lines=1))
    qtbot.waitUntil(lambda: visible_in_viewport(view, 400) and abs(bottom_gap(view)) <= 1)
    view.append_message(reply(401, "", status="pending"))
    view.stream_begin(401)
    layouts: list[int] = []
    original = view._after_layout

    def counting() -> None:
        layouts.append(1)
        original()

    view._after_layout = counting  # type: ignore[method-assign]
    sb = view.list_view.verticalScrollBar()
    for k in range(40):
        view.stream_delta(401, f"Paragraph {k} of a long streamed reply.\n\n")
        view.flush_stream()
        qtbot.waitUntil(lambda: abs(bottom_gap(view)) <= 1)
    assert item_of(view, 401).content.count("Paragraph") == 40
    assert len(layouts) <= 6, len(layouts)  # one per screen of text, not one per flush
    assert view.delegate.reserve(401) > view.delegate.exact_height(item_of(view, 401))
    # The reserved room below the text cannot be scrolled into.
    sb.setValue(sb.maximum())
    assert abs(bottom_gap(view)) <= 1

    view.stream_end(401, reply(401, item_of(view, 401).content))
    view.append_message(Msg(402, "user", "next"))
    qtbot.waitUntil(lambda: visible_in_viewport(view, 402) and abs(bottom_gap(view)) <= 1)
    assert view.delegate.reserve(401) == 0
    assert view.list_view.laid_out_height(view.model.row_of(401)) == view.delegate.exact_height(
        item_of(view, 401)
    )


def test_font_size_back_to_system_restores_the_default(qapp) -> None:
    from halext_desktop.ui.theme import apply_theme

    apply_theme(qapp, "system", 0)
    default = qapp.font().pointSize()
    apply_theme(qapp, "system", default + 6)
    assert qapp.font().pointSize() == default + 6
    apply_theme(qapp, "system", 0)
    assert qapp.font().pointSize() == default


def test_chip_names_only_what_answered() -> None:
    """A reply no model gave never shows ``AI • <model>``: why nothing was sent, or which
    route failed; a placeholder keeps what answered and its warning."""

    def chip(**kw: Any) -> str:
        return chip_text(MessageItem.from_row(Msg(1, "assistant", kw.pop("content", ""), **kw)))

    asked = "halext/openai:gpt-4o-mini"
    assert chip(
        status="blocked", requested_model=asked, meta={"not_sent": "cloud providers are disabled"}
    ) == ("Not sent — cloud providers are disabled")
    assert chip(status="blocked", requested_model=asked).startswith("Not sent — ")
    assert (
        chip(
            status="error",
            requested_model="ollama@studio/q:7b",
            meta={"failed_route": "ollama@studio"},
        )
        == "Failed — studio"
    )
    assert chip(status="error", requested_model="ollama/q:7b") == "Failed — ollama"
    # With the settings' names, the default host is called by its own name everywhere.
    names = {"ollama": "home"}
    failed = MessageItem.from_row(
        Msg(1, "assistant", "", status="error", requested_model="ollama/q")
    )
    assert chip_text(failed, names) == "Failed — home"
    answered = MessageItem.from_row(reply(2, "hi", model_ref="ollama/q:7b"))
    assert chip_text(answered, names) == "AI • q:7b · home"
    assert (
        chip(
            status="error",
            requested_model="ollama@gone/q:7b",
            meta={"not_sent": "ollama@gone is not configured"},
        )
        == "Not sent — ollama@gone is not configured"
    )
    assert chip(status="stopped", requested_model="ollama/q:7b") == "Stopped — no reply"
    # Something did answer: that is what the chip names, whatever the status.
    assert (
        chip(status="error", content="partial", model_ref="ollama/q:7b", meta={"locality": "local"})
        == "AI • q:7b · local"
    )
    placeholder = MessageItem.from_row(
        Msg(
            1,
            "assistant",
            "I am a mock AI assistant.",
            status="placeholder",
            model_ref="halext/mock:llama3.1",
            requested_model="halext/ollama:nope",
            error="halext had no working model for ollama:nope and sent its placeholder text",
            meta={"locality": "self-hosted"},
        )
    )
    assert chip_text(placeholder) == "AI • mock:llama3.1 · halext"
    assert warning_lines(placeholder) == [
        "⚠ halext had no working model for ollama:nope and sent its placeholder text"
    ]


def test_an_open_banner_follows_a_theme_switch(view: ChatView, qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    theme.apply_theme(app, "light")
    try:
        view.show_banner("info", "Ollama is running but has no models yet.")
        light = view.banner.styleSheet()
        theme.apply_theme(app, "dark")
        qtbot.waitUntil(lambda: view.banner.styleSheet() != light)
        bg, _border, text = theme.banner_colors(theme.dark_palette(), "info")
        assert f"background: {theme.css(bg)}" in view.banner.styleSheet()
        assert f"color: {theme.css(text)}" in view.banner.styleSheet()
        assert bg.lightness() < 80  # dark, not the light banner on a dark window
    finally:
        theme.apply_theme(app, "system")


def test_the_empty_hint_asks_for_a_model_only_while_none_is_chosen(view: ChatView) -> None:
    assert view.empty_label.text() == EMPTY_HINT
    view.set_model_chosen(True)
    assert "Ctrl+K" not in view.empty_label.text()
    assert view.empty_label.text() == EMPTY_HINT_READY
    view.set_model_chosen(False)
    assert view.empty_label.text() == EMPTY_HINT
