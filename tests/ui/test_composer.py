"""The composer, typed into with real key events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from halext_desktop.ui.composer import MAX_LINES, PLACEHOLDER, Composer


@pytest.fixture
def composer(qtbot: QtBot) -> Iterator[Composer]:
    c = Composer()
    c.resize(600, 120)
    qtbot.addWidget(c)
    c.show()
    qtbot.waitExposed(c)
    c.editor.setFocus()
    yield c


def press_enter(qtbot: QtBot, c: Composer, modifier: Qt.KeyboardModifier | None = None) -> None:
    mods = modifier if modifier is not None else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(c.editor, Qt.Key.Key_Return, mods)


def test_enter_sends_and_clears_but_remembers(composer: Composer, qtbot: QtBot) -> None:
    assert composer.editor.placeholderText() == PLACEHOLDER
    qtbot.keyClicks(composer.editor, "hello there")
    with qtbot.waitSignal(composer.sig_send, timeout=1000) as sent:
        press_enter(qtbot, composer)
    assert sent.args == ["hello there"]
    assert composer.text() == ""
    assert composer.last_sent == "hello there"


def test_shift_enter_inserts_a_new_line(composer: Composer, qtbot: QtBot) -> None:
    with qtbot.assertNotEmitted(composer.sig_send):
        qtbot.keyClicks(composer.editor, "first")
        press_enter(qtbot, composer, Qt.KeyboardModifier.ShiftModifier)
        qtbot.keyClicks(composer.editor, "second")
    assert composer.text() == "first\nsecond"
    with qtbot.waitSignal(composer.sig_send) as sent:
        press_enter(qtbot, composer)
    assert sent.args == ["first\nsecond"]


def test_keypad_enter_sends_too(composer: Composer, qtbot: QtBot) -> None:
    qtbot.keyClicks(composer.editor, "via keypad")
    with qtbot.waitSignal(composer.sig_send) as sent:
        qtbot.keyClick(composer.editor, Qt.Key.Key_Enter, Qt.KeyboardModifier.KeypadModifier)
    assert sent.args == ["via keypad"]


def test_blank_message_is_not_sent(composer: Composer, qtbot: QtBot) -> None:
    with qtbot.assertNotEmitted(composer.sig_send):
        press_enter(qtbot, composer)
        qtbot.keyClicks(composer.editor, "   ")
        press_enter(qtbot, composer)
    assert composer.text() == "   "
    assert not composer.send_button.isEnabled()
    assert composer.last_sent is None


def test_send_button_sends(composer: Composer, qtbot: QtBot) -> None:
    qtbot.keyClicks(composer.editor, "  padded  ")
    assert composer.send_button.isEnabled()
    with qtbot.waitSignal(composer.sig_send) as sent:
        qtbot.mouseClick(composer.send_button, Qt.MouseButton.LeftButton)
    assert sent.args == ["padded"]


def test_button_turns_into_stop_while_streaming(composer: Composer, qtbot: QtBot) -> None:
    composer.set_streaming(True)
    assert composer.send_button.text() == "Stop"
    assert composer.send_button.accessibleName() == "Stop"
    assert composer.send_button.isEnabled()
    with qtbot.waitSignal(composer.sig_stop, timeout=1000):
        qtbot.mouseClick(composer.send_button, Qt.MouseButton.LeftButton)
    # Enter does not send while a reply streams; the text stays for later.
    qtbot.keyClicks(composer.editor, "next question")
    with qtbot.assertNotEmitted(composer.sig_send):
        press_enter(qtbot, composer)
    assert composer.text() == "next question"
    with qtbot.waitSignal(composer.sig_stop, timeout=1000):
        qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)
    composer.set_streaming(False)
    assert composer.send_button.text() == "Send"
    with qtbot.assertNotEmitted(composer.sig_stop):
        qtbot.keyClick(composer.editor, Qt.Key.Key_Escape)
    with qtbot.waitSignal(composer.sig_send) as sent:
        press_enter(qtbot, composer)
    assert sent.args == ["next question"]


def test_disabled_with_a_reason(composer: Composer, qtbot: QtBot) -> None:
    composer.set_enabled_reason("Pick a model first")
    qtbot.keyClicks(composer.editor, "typed anyway")
    assert composer.text() == "typed anyway"  # typing still works
    assert not composer.send_button.isEnabled()
    assert composer.send_button.toolTip() == "Pick a model first"
    assert composer.editor.toolTip() == "Pick a model first"
    with qtbot.assertNotEmitted(composer.sig_send):
        press_enter(qtbot, composer)
    composer.set_enabled_reason(None)
    assert composer.send_button.isEnabled()
    with qtbot.waitSignal(composer.sig_send) as sent:
        press_enter(qtbot, composer)
    assert sent.args == ["typed anyway"]


def test_set_text_for_edit_and_resend(composer: Composer, qtbot: QtBot) -> None:
    composer.set_text("restored draft")
    assert composer.text() == "restored draft"
    assert composer.editor.textCursor().position() == len("restored draft")
    qtbot.keyClicks(composer.editor, "!")
    assert composer.text() == "restored draft!"


def test_grows_from_one_line_to_a_cap(composer: Composer, qtbot: QtBot) -> None:
    one = composer.editor.height()
    for _ in range(2):
        press_enter(qtbot, composer, Qt.KeyboardModifier.ShiftModifier)
    three = composer.editor.height()
    assert three > one
    line = composer.editor.fontMetrics().lineSpacing()
    assert three - one == 2 * line
    for _ in range(MAX_LINES + 4):
        press_enter(qtbot, composer, Qt.KeyboardModifier.ShiftModifier)
    capped = composer.editor.height()
    assert capped == one + (MAX_LINES - 1) * line
    composer.set_text("")
    assert composer.editor.height() == one


def test_long_line_wraps_and_grows(composer: Composer, qtbot: QtBot) -> None:
    one = composer.editor.height()
    qtbot.keyClicks(composer.editor, "word " * 60)
    assert composer.visual_lines() >= 2
    assert composer.editor.height() > one
