"""Conversation features in the window, end to end (real widgets, the real Core, the
protocol servers): the header's system prompt and parameters and presets, ‹ 2/3 › on a
regenerated reply, attachments with thumbnails and the refusal before sending, and
export/import from the window."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from halext_desktop.storage.chat_settings import ChatSettings
from halext_desktop.ui.chat_model import warning_lines
from halext_desktop.ui.main_window import MainWindow
from tests.e2e.test_conversation_features import png_bytes
from tests.e2e.test_main_window import (  # noqa: F401 (open_window is a fixture)
    WAIT,
    last_reply,
    open_window,
    pick,
    send,
    sign_in_through_settings,
    trigger,
    wait_idle,
)
from tests.helpers.storage import on_owner
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import DEFAULT_MODELS, VISION_MODEL, OllamaServer


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    with OllamaServer(models=[*DEFAULT_MODELS, VISION_MODEL]) as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


def edit_settings(qtbot: QtBot, window: MainWindow) -> Any:
    """Open the header's dialog as a user does (the Edit button), once presets arrived."""
    qtbot.mouseClick(window.settings_bar.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.chat_settings_dialog is not None, timeout=WAIT)
    dialog = window.chat_settings_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT)
    return dialog


def test_header_settings_reach_ollama_are_kept_and_presets_come_back(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
) -> None:
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    dialog = edit_settings(qtbot, window)
    qtbot.keyClicks(dialog.system_edit, "You are a pirate.")
    qtbot.keyClicks(dialog.fields["temperature"], "0.25")
    qtbot.keyClicks(dialog.fields["num_ctx"], "4096")
    qtbot.keyClicks(dialog.fields["seed"], "11")
    qtbot.keyClicks(dialog.preset_name, "Pirate")
    qtbot.mouseClick(dialog.save_preset_button, Qt.MouseButton.LeftButton)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    with qtbot.waitSignal(window.controller.sig_chat_settings, timeout=WAIT):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert window.settings_bar.summary.text() == (
        "System: You are a pirate. · temp 0.25 · ctx 4096 · seed 11"
    )
    send(qtbot, window, "ahoy")
    wait_idle(qtbot, window)
    body = ollama_server.requests_to("/api/chat")[-1].json
    assert body["messages"][0] == {"role": "system", "content": "You are a pirate."}
    assert body["options"] == {"temperature": 0.25, "num_ctx": 4096, "seed": 11}
    cid = window.controller.conversation_id
    assert on_owner(window._svc).chat_settings.get(cid) == ChatSettings(
        system="You are a pirate.", temperature=0.25, num_ctx=4096, seed=11
    )
    window.close()

    # A restart: the conversation comes back with its settings, and the preset is there.
    again = open_window()
    # The last conversation reopens once the sidebar's list came from the database.
    qtbot.waitUntil(lambda: again.controller.conversation_id == cid, timeout=WAIT)
    qtbot.waitUntil(
        lambda: again.settings_bar.summary.text().startswith("System: You are a pirate."),
        timeout=WAIT,
    )
    send(qtbot, again, "and now?")
    wait_idle(qtbot, again)
    body = ollama_server.requests_to("/api/chat")[-1].json
    assert body["messages"][0]["content"] == "You are a pirate."
    assert body["options"]["seed"] == 11
    again.new_chat()
    qtbot.waitUntil(
        lambda: again.settings_bar.summary.text() == "No system prompt · model defaults",
        timeout=WAIT,
    )
    dialog = edit_settings(qtbot, again)
    assert dialog.preset_box.findData("Pirate") > 0
    dialog._apply_preset(dialog.preset_box.findData("Pirate"))
    assert dialog.system_edit.toPlainText() == "You are a pirate."
    assert dialog.fields["temperature"].text() == "0.25"
    dialog.reject()


def test_halext_route_says_what_it_cannot_carry(qtbot: QtBot, open_window: Any) -> None:  # noqa: F811
    window = open_window()
    window.picker.set_current("halext/client:3:qwen2.5:7b")
    window.controller.set_chat_settings(ChatSettings(system="Hi", temperature=0.5, seed=3))
    window._show_chat_settings()
    assert window.settings_bar.note.isVisibleTo(window) and window.settings_bar.note.text() == (
        "⚠ halext takes only the system prompt: temperature, seed not sent"
    )
    pick(qtbot, window, "ollama/qwen2.5:7b")
    assert not window.settings_bar.note.isVisibleTo(window)


def test_bad_values_are_said_in_the_dialog_and_nothing_changes(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
) -> None:
    window = open_window()
    dialog = edit_settings(qtbot, window)
    qtbot.keyClicks(dialog.fields["top_p"], "3")
    qtbot.mouseClick(
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
    )
    assert dialog.isVisible() and dialog.error.text() == "top_p: 3.0 is not between 0 and 1"
    assert window.controller.chat_settings == ChatSettings()
    dialog.reject()


def click_version(qtbot: QtBot, window: MainWindow, step: int) -> None:
    """Click ‹ (-1) or › (+1) on the last reply, where the delegate draws it."""
    view = window.chat_view
    item = last_reply(window)
    index = view.model.index_of(item.id)
    rect = view.list_view.visualRect(index)
    rl = view.delegate.layout_for(item)
    target = rl.prev_rect if step < 0 else rl.next_rect
    pos = rect.topLeft() + target.center().toPoint()
    with qtbot.waitSignal(view.model.dataChanged, timeout=WAIT):
        qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_versions_flip_and_the_one_shown_is_sent_as_history(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
) -> None:
    for text in ("alpha", "beta", "gamma"):
        ollama_server.queue_reply(text)
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    send(qtbot, window, "pick a word")
    wait_idle(qtbot, window)
    for _ in range(2):
        with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
            trigger(window, last_reply(window).id, "Regenerate")
        wait_idle(qtbot, window)
    reply = last_reply(window)
    assert reply.content == "gamma"
    assert window.chat_view.delegate.layout_for(reply).switch_text == "3/3"
    click_version(qtbot, window, -1)
    click_version(qtbot, window, -1)
    reply = last_reply(window)
    assert reply.content == "alpha"
    assert window.chat_view.delegate.layout_for(reply).switch_text == "1/3"
    # The menu offers the same, for the keyboard.
    menu = window.chat_view.context_menu_for(reply.id)
    labels = {a.text(): a.isEnabled() for a in menu.actions()}
    menu.close()
    assert labels["Previous version (1/3)"] is False and labels["Next version (1/3)"] is True
    send(qtbot, window, "why that one?")
    wait_idle(qtbot, window)
    body = ollama_server.requests_to("/api/chat")[-1].json
    assert body["messages"][:2] == [
        {"role": "user", "content": "pick a word"},
        {"role": "assistant", "content": "alpha"},
    ]


def test_an_image_goes_to_a_vision_model_with_a_thumbnail_and_is_refused_for_text_only(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
    tmp_path: Path,
) -> None:
    image = tmp_path / "red.png"
    image.write_bytes(png_bytes(8, 8))
    window = open_window()
    # Refused before sending: the text and the image go back to the composer.
    pick(qtbot, window, "ollama/qwen2.5:7b")
    window.composer.choose_files = lambda: [str(image)]
    qtbot.mouseClick(window.composer.attach_button, Qt.MouseButton.LeftButton)
    assert [a.ref.name for a in window.composer.attachments()] == ["red.png"]
    send(qtbot, window, "what colour?")
    wait_idle(qtbot, window)
    assert window.chat_view.banner.isVisibleTo(window)
    assert "Not sent: qwen2.5:7b cannot take images" in window.chat_view.banner.text
    assert window.composer.text() == "what colour?"
    assert [a.ref.name for a in window.composer.attachments()] == ["red.png"]
    assert ollama_server.requests_to("/api/chat") == []
    assert window.chat_view.model.rowCount() == 0

    pick(qtbot, window, "ollama/llava:7b")
    with qtbot.waitSignal(window.controller.sig_streaming, timeout=WAIT):
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    wait_idle(qtbot, window)
    (body,) = [r.json for r in ollama_server.requests_to("/api/chat")]
    assert [base64.b64decode(i) for i in body["messages"][-1]["images"]] == [image.read_bytes()]
    assert window.composer.attachments() == []
    user = window.chat_view.model.item(0)
    (att,) = user.meta["attachments"]
    qtbot.waitUntil(lambda: window.chat_view.has_thumbnail(att["sha256"]), timeout=WAIT)
    assert window.chat_view.delegate.layout_for(user).thumbs[0][1] == "red.png"
    # A click on the thumbnail shows the image at full size.
    view = window.chat_view
    rect = view.list_view.visualRect(view.model.index_of(user.id))
    thumb = view.delegate.layout_for(user).thumbs[0][2]
    pos = rect.topLeft() + thumb.center().toPoint()
    qtbot.mouseClick(view.list_view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.image_viewer is not None, timeout=WAIT)
    assert window.image_viewer.image_size.width() == 8
    window.image_viewer.close()


def test_a_too_large_file_is_refused_with_one_line(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    window = open_window()
    big = tmp_path / "huge.log"
    big.write_text("x" * (700 * 1024))
    assert window.composer.add_files([str(big)]) == 0
    assert window.composer.problem.isVisibleTo(window)
    assert window.composer.problem.text() == (
        "huge.log is 700 KB; text files can be at most 512 KB (their text goes into the message)"
    )


def test_export_and_import_from_the_window(qtbot: QtBot, open_window: Any, tmp_path: Path) -> None:  # noqa: F811
    window = open_window()
    pick(qtbot, window, "ollama/qwen2.5:7b")
    window.controller.set_chat_settings(ChatSettings(system="Short answers."))
    send(qtbot, window, "export me")
    wait_idle(qtbot, window)
    cid = window.controller.conversation_id
    target = tmp_path / "one.json"
    window.transfer.choose_save_path = lambda _name, _fmt: str(target)
    with qtbot.waitSignal(window.transfer.sig_done, timeout=WAIT) as done:
        window.export_current("json")
    assert done.args[0] == "info" and str(target) in done.args[1]
    doc = json.loads(target.read_text())
    assert doc["settings"] == {"system": "Short answers."}
    assert [m["content"] for m in doc["messages"]][0] == "export me"

    # The sidebar's menu exports Markdown.
    md = tmp_path / "one.md"
    window.transfer.choose_save_path = lambda _name, _fmt: str(md)
    with qtbot.waitSignal(window.transfer.sig_done, timeout=WAIT):
        window.sidebar.sig_export_requested.emit(cid, "markdown")
    assert "\nexport me\n" in md.read_text()

    window.transfer.choose_open_path = lambda: str(target)
    with qtbot.waitSignal(window.controller.sig_loaded, timeout=WAIT) as loaded:
        window.transfer.import_()
    new_id = loaded.args[0]
    assert new_id != cid
    assert window.controller.chat_settings == ChatSettings(system="Short answers.")
    again = tmp_path / "again.json"
    window.transfer.choose_save_path = lambda _name, _fmt: str(again)
    with qtbot.waitSignal(window.transfer.sig_done, timeout=WAIT):
        window.export_current("json")
    assert json.loads(again.read_text()) == doc


def test_halext_gets_the_system_prompt_and_the_reply_says_what_was_not_sent(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    halext_server: HalextServer,
) -> None:
    window = open_window()
    sign_in_through_settings(qtbot, window)
    pick(qtbot, window, "halext/client:3:qwen2.5:7b")
    window.controller.set_chat_settings(ChatSettings(system="Be formal.", max_tokens=50))
    assert window.settings_bar.note.text() == (
        "⚠ halext takes only the system prompt: max tokens not sent"
    )
    send(qtbot, window, "hello")
    wait_idle(qtbot, window)
    body = halext_server.requests_to("/ai/chat/stream")[-1].json
    assert body == {
        "prompt": "hello",
        "history": [{"role": "system", "content": "Be formal."}],
        "model": "client:3:qwen2.5:7b",
    }
    assert "⚠ Not sent to halext: max tokens (the halext API has no such fields)" in (
        warning_lines(last_reply(window))
    )


def test_regenerating_an_image_question_with_a_text_only_model_is_refused_and_loses_nothing(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    ollama_server: OllamaServer,
    tmp_path: Path,
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(png_bytes())
    window = open_window()
    pick(qtbot, window, "ollama/llava:7b")
    window.composer.add_files([str(image)])
    send(qtbot, window, "describe")
    wait_idle(qtbot, window)
    answer = last_reply(window).content
    pick(qtbot, window, "ollama/qwen2.5:7b")
    with qtbot.waitSignal(window.controller.sig_loaded, timeout=WAIT):
        trigger(window, last_reply(window).id, "Regenerate")
    assert "Not sent: qwen2.5:7b cannot take images" in window.chat_view.banner.text
    assert last_reply(window).content == answer and window.chat_view.model.rowCount() == 2
    assert len(ollama_server.requests_to("/api/chat")) == 1


def test_files_dropped_anywhere_on_the_window_are_attached(
    qtbot: QtBot,
    open_window: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    window = open_window()
    (tmp_path / "plan.txt").write_text("step one\n")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "plan.txt"))])
    enter = QDragEnterEvent(
        QPoint(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    window.dropEvent(drop)
    assert [a.ref.name for a in window.composer.attachments()] == ["plan.txt"]
