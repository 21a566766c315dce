"""Text selection (issue 10's text view over a row) on what the markdown-it renderer
draws: highlighted code blocks, task lists, tables — selected and copied as a user does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from halext_desktop.ui.chat_view import ChatView
from tests.ui.test_chat_selection import char_point, drag, load, offset_of
from tests.ui.test_chat_view import Msg, reply, row_index

CODE = "def f(x):\n\treturn  x  \n\n    # tab above, two trailing spaces"
REPLY = (
    f"Here:\n\n```python\n{CODE}\n```\n\n"
    "- [x] highlighted\n- [ ] selectable\n\n"
    "| a | b |\n|---|--:|\n| 1 | 2 |\n\nDone."
)


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[ChatView]:
    v = ChatView()
    v.resize(760, 700)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    yield v


def copy_all(view: ChatView, qtbot: QtBot, message_id: int) -> str:
    """Ctrl+A on a message in the list, then Ctrl+C: what was copied."""
    view.list_view.setFocus()
    view.list_view.setCurrentIndex(row_index(view, message_id))
    qtbot.keyClick(view.list_view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    return str(copied.args[0])


def test_dragging_across_a_highlighted_block_selects_its_exact_text(
    view: ChatView, qtbot: QtBot
) -> None:
    load(view, qtbot, [Msg(1, "user", "show me"), reply(2, REPLY)])
    item = view.model.item_by_id(2)
    assert item is not None
    doc = view.delegate.layout_for(item).doc
    assert doc is not None
    # Highlighted: "def" and "return" are drawn in a colour of their own.
    fmt = doc.find("def").charFormat()
    assert fmt.foreground().color() != doc.find("f(x)").charFormat().foreground().color()
    start = offset_of(view, 2, "def f")
    end = offset_of(view, 2, "# tab above") + len("# tab above") - 1
    drag(qtbot, view, char_point(view, 2, start), char_point(view, 2, end, after=True))
    assert view.text_view.message_id == 2
    assert view.text_view.document() is view.delegate.layout_for(item).doc
    assert view.selected_text() == "def f(x):\n\treturn  x  \n\n    # tab above"
    with qtbot.waitSignal(view.sig_copied) as copied:
        qtbot.keyClick(view.text_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied.args == ["def f(x):\n\treturn  x  \n\n    # tab above"]
    assert QGuiApplication.clipboard().text() == copied.args[0]


def test_select_all_copies_code_tasks_and_table_as_read(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "show me"), reply(2, REPLY)])
    text = copy_all(view, qtbot, 2)
    assert f"Here:\n{CODE}\n" in text  # the block's label and Copy link left out
    assert "☑ highlighted\n☐ selectable" in text
    assert "a\tb\n1\t2" in text and text.endswith("Done.")


def test_the_copy_link_still_copies_through_the_text_view(view: ChatView, qtbot: QtBot) -> None:
    load(view, qtbot, [Msg(1, "user", "show me"), reply(2, REPLY)])
    start = offset_of(view, 2, "Here")
    drag(qtbot, view, char_point(view, 2, start), char_point(view, 2, start + 3, after=True))
    assert view.text_view.message_id == 2
    rect = view.anchor_rect(2, "copy:0")
    assert rect is not None
    with qtbot.waitSignal(view.sig_copied, timeout=2000) as copied:
        qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert copied.args == [CODE]


def test_a_quote_copies_as_its_text_and_an_empty_table_cell_keeps_its_tab(
    view: ChatView, qtbot: QtBot
) -> None:
    """A quote is drawn as [bar | text]; copying it gives the text, not a tab before it.
    A data table's empty first cell is content and keeps its tab."""
    quoted = "> Ship it on Friday.\n> After the review.\n\n|   | b |\n|---|---|\n|   | 2 |\n\nOk."
    load(view, qtbot, [Msg(1, "user", "show me"), reply(2, quoted)])
    text = copy_all(view, qtbot, 2)
    assert text.startswith("Ship it on Friday.\nAfter the review.\n"), repr(text)
    assert "\tb\n\t2" in text, repr(text)
