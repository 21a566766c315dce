"""Selecting part of a message, by mouse and by keyboard, as a user does it: real presses,
drags, double and triple clicks, Shift+arrows, Ctrl+A and Ctrl+C on the chat list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QContextMenuEvent, QGuiApplication, QTextLine, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from halext_desktop.ui.chat_view import ChatView
from tests.ui.test_chat_view import Msg, history, reply, row_index, visible_in_viewport

CODE_REPLY = "Run this:\n\n```python\nprint(1)\n    x = 2\n```\n\nThen it prints one."


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[ChatView]:
    v = ChatView()
    v.resize(760, 560)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    yield v


@pytest.fixture
def slow_double_click() -> Iterator[None]:
    """A generous double-click interval, so a triple click is one even on a loaded machine
    (the text view times the third press against it)."""
    hints = QGuiApplication.styleHints()
    before = hints.mouseDoubleClickInterval()
    hints.setMouseDoubleClickInterval(10_000)
    yield
    hints.setMouseDoubleClickInterval(before)


def load(view: ChatView, qtbot: QtBot, messages: list[Any]) -> None:
    view.load(messages)
    last = messages[-1].id
    qtbot.waitUntil(lambda: visible_in_viewport(view, last))


def char_point(view: ChatView, mid: int, offset: int, *, after: bool = False) -> QPoint:
    """Where character ``offset`` of message ``mid``'s rendered text is drawn (viewport
    coordinates): its left edge, or its right edge with ``after``."""
    item = view.model.item_by_id(mid)
    assert item is not None
    rl = view.delegate.layout_for(item)
    doc = rl.doc
    assert doc is not None
    block = doc.findBlock(offset)
    layout = block.layout()
    pos_in_block = offset - block.position() + (1 if after else 0)
    line = layout.lineForTextPosition(min(pos_in_block, max(0, block.length() - 1)))
    result: Any = line.cursorToX(pos_in_block, QTextLine.Edge.Leading)
    x = float(result[0] if isinstance(result, tuple) else result)
    origin = doc.documentLayout().blockBoundingRect(block).topLeft()
    row = view.list_view.visualRect(row_index(view, mid)).topLeft()
    point = QPointF(row) + rl.body.topLeft() + origin + QPointF(x, line.y() + line.height() / 2)
    return point.toPoint()


def offset_of(view: ChatView, mid: int, text: str) -> int:
    """Where ``text`` starts in message ``mid``'s rendered document."""
    item = view.model.item_by_id(mid)
    assert item is not None
    doc = view.delegate.layout_for(item).doc
    assert doc is not None
    found = doc.find(text)
    assert not found.isNull(), f"{text!r} is not in message {mid}"
    return found.selectionStart()


def drag(qtbot: QtBot, view: ChatView, start: QPoint, end: QPoint) -> None:
    viewport = view.list_view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, (start + end) / 2)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


def test_drag_selects_part_of_a_message_and_ctrl_c_copies_only_that(
    view: ChatView, qtbot: QtBot
) -> None:
    load(view, qtbot, [Msg(1, "user", "hello"), reply(2, "The quick brown fox jumps over it")])
    start = offset_of(view, 2, "quick")
    end = offset_of(view, 2, "fox") + len("fox") - 1
    drag(qtbot, view, char_point(view, 2, start), char_point(view, 2, end, after=True))
    assert view.selected_text() == "quick brown fox"
    assert view.text_view.hasFocus()
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied.args == ["quick brown fox"]
    assert QGuiApplication.clipboard().text() == "quick brown fox"
    # Told, not silent: a short note says what was copied.
    assert view.toast.isVisible() and "15 characters" in view.toast.text()


def text_view_on_its_row(view: ChatView) -> bool:
    """The text view sits exactly over its message's text."""
    mid = view.text_view.message_id
    if mid is None or not view.text_view.isVisible():
        return False
    item = view.model.item_by_id(mid)
    assert item is not None
    row = view.list_view.visualRect(row_index(view, mid)).topLeft()
    body = view.delegate.layout_for(item).body
    return view.text_view.pos() == (QPointF(row) + body.topLeft()).toPoint()


def test_dragging_does_not_scroll_the_list(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, history(1, 30))
    sb = view.list_view.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.value() == sb.maximum() and view.is_at_bottom())
    # The message above the last one (its top may be above the viewport).
    mid = view.model.items[-2].id
    start = char_point(view, mid, 0)  # (lays the list out: the points are where rows are)
    end = char_point(view, mid, offset_of(view, mid, "line 1") + 5, after=True)
    value = sb.value()
    drag(qtbot, view, start, end)
    assert sb.value() == value
    assert view.selected_text().startswith(f"Message {mid}, line 0")
    assert view.selected_text().endswith("line 1")


def test_double_click_selects_a_word(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [reply(1, "alpha bravo charlie delta")])
    point = char_point(view, 1, offset_of(view, 1, "charlie") + 2)
    qtbot.mouseDClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert view.selected_text() == "charlie"


def test_triple_click_selects_a_paragraph(
    view: ChatView, qtbot: QtBot, slow_double_click: None
) -> None:
    text = "First paragraph, two clauses.\n\nSecond paragraph here, also short."
    load(view, qtbot, [reply(1, text)])
    point = char_point(view, 1, offset_of(view, 1, "also") + 1)
    viewport = view.list_view.viewport()
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    assert view.selected_text() == "also"
    qtbot.mouseClick(
        view.text_view.viewport(), Qt.MouseButton.LeftButton, pos=point - view.text_view.pos()
    )
    assert view.selected_text() == "Second paragraph here, also short."


def test_selection_inside_a_code_block(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [reply(1, CODE_REPLY)])
    start = offset_of(view, 1, "print")
    end = offset_of(view, 1, "x = 2") + len("x = 2") - 1
    drag(qtbot, view, char_point(view, 1, start), char_point(view, 1, end, after=True))
    assert view.selected_text() == "print(1)\n    x = 2"


def test_ctrl_a_and_ctrl_c_copy_the_text_without_code_block_furniture(
    view: ChatView, qtbot: QtBot
) -> None:
    load(view, qtbot, [Msg(1, "user", "how?"), reply(2, CODE_REPLY)])
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 2))
    qtbot.keyClick(view.list_view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert view.text_view.hasFocus() and view.text_view.message_id == 2
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    # The code block's label ("python") and its Copy link are not text to copy.
    assert copied.args == ["Run this:\nprint(1)\n    x = 2\n\nThen it prints one."]


def test_shift_arrows_select_from_the_focused_message(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "question"), reply(2, "Answer in words")])
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 2))
    # The first Shift+Right starts a selection at the message's start...
    qtbot.keyClick(view.list_view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.text_view.hasFocus()
    # ...and the next ones extend it, as in any text.
    for _ in range(5):
        qtbot.keyClick(view.text_view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_text() == "Answer"
    qtbot.keyClick(view.text_view, Qt.Key.Key_End, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_text() == "Answer in words"
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied.args == ["Answer in words"]
    # Esc gives the keyboard back to the list, on the same message.
    qtbot.keyClick(view.text_view, Qt.Key.Key_Escape)
    assert view.list_view.hasFocus()
    assert view.selected_text() == ""
    assert int(view.list_view.currentIndex().data(view.model.IdRole)) == 2


def test_shift_left_selects_from_the_end(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [reply(1, "ends with tail")])
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 1))
    qtbot.keyClick(view.list_view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    for _ in range(3):
        qtbot.keyClick(view.text_view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert view.selected_text() == "tail"


def test_ctrl_c_without_a_selection_still_copies_the_whole_message(
    view: ChatView, qtbot: QtBot
) -> None:
    load(view, qtbot, [reply(1, "**bold** source")])
    point = char_point(view, 1, 1)
    qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert view.text_view.hasFocus() and view.selected_text() == ""
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied.args == ["**bold** source"]  # the Markdown source, as the Copy button


def test_the_menu_offers_copy_for_a_selection(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "q"), reply(2, "one two three")])
    point = char_point(view, 2, offset_of(view, 2, "two") + 1)
    qtbot.mouseDClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    menu = view.context_menu_for(2)
    assert menu is not None
    assert [a.text() for a in menu.actions()][:2] == ["Copy", "Copy message"]
    with qtbot.waitSignal(view.sig_copied) as copied:
        menu.actions()[0].trigger()
    menu.close()
    assert copied.args == ["two"]


def test_code_block_copy_link_works_over_the_text_view(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [reply(1, CODE_REPLY)])
    # Put the text view over the message first (a click on its text).
    qtbot.mouseClick(
        view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=char_point(view, 1, 1)
    )
    assert view.text_view.isVisible()
    link = view.anchor_rect(1, "copy:0")
    assert link is not None
    target = view.text_view.viewport()
    local = target.mapFrom(view.list_view.viewport(), link.center())
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=local)
    assert copied.args == ["print(1)\n    x = 2"]


def test_click_beside_the_text_ends_the_selection(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "q"), reply(2, "some words here")])
    qtbot.mouseDClick(
        view.list_view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=char_point(view, 2, offset_of(view, 2, "words") + 1),
    )
    assert view.selected_text() == "words"
    rect = view.list_view.visualRect(row_index(view, 2))
    # The header line (the chip's row) is not text: a click there clears the selection.
    qtbot.mouseClick(
        view.list_view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(rect.right() - 4, rect.top() + 6),
    )
    assert view.selected_text() == "" and not view.text_view.isVisible()
    assert view.delegate.text_id is None


def test_wheel_over_the_text_scrolls_the_conversation(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, history(1, 40))
    mid = view.model.items[-1].id
    qtbot.mouseDClick(
        view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=char_point(view, mid, 2)
    )
    assert view.text_view.isVisible()
    sb = view.list_view.verticalScrollBar()
    before_value, before_y = sb.value(), view.text_view.y()
    target = view.text_view.viewport()
    center = QPointF(target.rect().center())
    wheel = QWheelEvent(
        center,
        QPointF(target.mapToGlobal(center.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(target, wheel)
    qtbot.waitUntil(lambda: sb.value() < before_value)
    # The text view moved with its message, and still sits on its text.
    qtbot.waitUntil(lambda: text_view_on_its_row(view))
    assert view.text_view.y() > before_y


def test_a_selection_survives_new_streamed_text(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "go"), reply(2, "Streaming starts", status="pending")])
    view.stream_begin(2)
    qtbot.mouseDClick(
        view.list_view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=char_point(view, 2, offset_of(view, 2, "starts") + 1),
    )
    assert view.selected_text() == "starts"
    view.stream_delta(2, " and goes on for a while")
    view.flush_stream()
    assert "goes on" in view.text_view.toPlainText()
    assert view.selected_text() == "starts"


def test_only_one_row_has_a_text_view_and_only_after_a_press(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "first"), reply(2, "second")])
    assert view.delegate.text_id is None and not view.text_view.isVisible()
    viewport = view.list_view.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=char_point(view, 1, 1))
    assert view.delegate.text_id == 1
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=char_point(view, 2, 1))
    assert view.delegate.text_id == 2 and view.text_view.message_id == 2
    view.load([Msg(5, "user", "another chat")])
    assert view.delegate.text_id is None and not view.text_view.isVisible()


def test_keyboard_menu_of_a_tall_message_opens_inside_the_window(
    view: ChatView, qtbot: QtBot
) -> None:
    tall = "\n\n".join(f"Paragraph {n} of a very long answer." for n in range(150))
    load(view, qtbot, [Msg(1, "user", "long please"), reply(2, tall), Msg(3, "user", "thanks")])
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, 2))
    rect = view.list_view.visualRect(row_index(view, 2))
    assert rect.height() > 3 * view.list_view.viewport().height()  # taller than the window
    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Keyboard, QPoint(5, 5), view.list_view.mapToGlobal(QPoint(5, 5))
    )
    QApplication.sendEvent(view.list_view, event)
    menu = view.menu
    assert menu is not None
    qtbot.waitUntil(menu.isVisible)
    window = QRect(view.mapToGlobal(QPoint(0, 0)), view.size())
    assert window.contains(menu.geometry().topLeft())
    assert menu.actions()[0].text() == "Copy message"
    menu.close()
