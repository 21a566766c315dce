"""The conversation sidebar against a real database behind its owner thread, its reads and
writes delivered through a real Bridge; the test reads and seeds the database on the owner
thread too (tests.helpers.storage), never on the GUI thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QListWidgetItem, QSplitter, QWidget
from pytestqt.qtbot import QtBot

from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.db import Database
from halext_desktop.storage.store import Storage
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.sidebar import (
    GROUP_OLDER,
    GROUP_RESULTS,
    GROUP_TODAY,
    GROUP_WEEK,
    GROUP_YESTERDAY,
    ConversationSidebar,
    ItemRole,
    group_label,
)
from tests.helpers.storage import on_owner

# The offscreen platform warns that it cannot propagate a shown window's size hints.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(Database(tmp_path / "chats.db"))
    st.wait_open()
    yield st
    st.close()


@pytest.fixture
def store(storage: Storage) -> ConversationStore:
    """The synchronous store, each call run on the owner thread (for seeding and checks)."""
    return on_owner(storage).conversations


@pytest.fixture
def bridge(qtbot: QtBot) -> Iterator[Bridge]:
    lt = LoopThread().start()
    yield Bridge(lt)
    lt.stop()


def backdate(store: ConversationStore, cid: int, when: datetime) -> None:
    """Move a conversation in time through the public delete/restore pair."""
    snap = store.delete(cid)
    conv = dataclasses.replace(snap.conversation, created_at=when, updated_at=when)
    store.restore(dataclasses.replace(snap, conversation=conv))


def make_sidebar(
    qtbot: QtBot, storage: Storage, bridge: Bridge, **kw: object
) -> ConversationSidebar:
    sidebar = ConversationSidebar(storage.conversations, bridge, clock=lambda: NOW, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(sidebar)
    sidebar.resize(280, 480)
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.show()
    qtbot.waitExposed(sidebar)
    return sidebar


def refreshed(qtbot: QtBot, sidebar: ConversationSidebar) -> None:
    """Reload the list and wait until it shows what the database answered."""
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.refresh()


def item_for(sidebar: ConversationSidebar, cid: int) -> QListWidgetItem:
    for i in range(sidebar.list.count()):
        item = sidebar.list.item(i)
        if item.data(ItemRole.ID) == cid:
            return item
    raise AssertionError(f"conversation {cid} is not listed")


def click(qtbot: QtBot, sidebar: ConversationSidebar, cid: int) -> None:
    rect = sidebar.list.visualItemRect(item_for(sidebar, cid))
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def editor_of(sidebar: ConversationSidebar) -> QLineEdit:
    # A closed editor lingers until deleteLater runs: take the one that is shown.
    editors = [e for e in sidebar.list.viewport().findChildren(QLineEdit) if e.isVisible()]
    assert len(editors) == 1, "expected exactly one open inline editor"
    return editors[0]


def test_group_label_boundaries() -> None:
    assert group_label(NOW - timedelta(minutes=5), NOW) == GROUP_TODAY
    assert group_label(NOW - timedelta(days=1), NOW) == GROUP_YESTERDAY
    assert group_label(NOW - timedelta(days=2), NOW) == GROUP_WEEK
    assert group_label(NOW - timedelta(days=7), NOW) == GROUP_WEEK
    assert group_label(NOW - timedelta(days=8), NOW) == GROUP_OLDER
    assert group_label(NOW.replace(tzinfo=None) - timedelta(days=40), NOW) == GROUP_OLDER


def test_list_is_grouped_by_day_newest_first(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    for title, age in (("Ancient", 30), ("Three days", 3), ("Fresh", 0), ("Day old", 1)):
        backdate(store, store.create(title).id, NOW - timedelta(days=age, hours=1))
    sidebar = make_sidebar(qtbot, storage, bridge)
    assert [text for text, _ in sidebar.visible_rows()] == [
        GROUP_TODAY,
        "Fresh",
        GROUP_YESTERDAY,
        "Day old",
        GROUP_WEEK,
        "Three days",
        GROUP_OLDER,
        "Ancient",
    ]
    header = sidebar.list.item(0)
    assert not header.flags() & Qt.ItemFlag.ItemIsSelectable


def test_new_chat_button(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    sidebar = make_sidebar(qtbot, storage, bridge)
    assert "No conversations yet" in sidebar.empty_label.text()
    with qtbot.waitSignal(sidebar.sig_new_requested, timeout=2000):
        qtbot.mouseClick(sidebar.new_button, Qt.MouseButton.LeftButton)


def test_click_selects_and_programmatic_select_is_silent(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    a, b = store.create("Alpha"), store.create("Beta")
    sidebar = make_sidebar(qtbot, storage, bridge)
    with qtbot.waitSignal(sidebar.sig_conversation_selected, timeout=2000) as blocker:
        click(qtbot, sidebar, a.id)
    assert blocker.args == [a.id]
    with qtbot.assertNotEmitted(sidebar.sig_conversation_selected):
        sidebar.select(b.id)
    assert sidebar.selected_id() == b.id
    assert sidebar.list.currentItem().data(ItemRole.ID) == b.id
    sidebar.select(None)
    assert sidebar.list.currentItem() is None


def test_rename_with_f2(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    conv = store.create("Old title")
    sidebar = make_sidebar(qtbot, storage, bridge)
    click(qtbot, sidebar, conv.id)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    assert sidebar.list.state() == QAbstractItemView.State.EditingState
    editor = editor_of(sidebar)
    editor.selectAll()
    qtbot.keyClicks(editor, "Week planning")
    with qtbot.waitSignal(sidebar.sig_conversation_renamed, timeout=2000) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == [conv.id, "Week planning"]
    row = store.get(conv.id)
    assert row is not None and row.title == "Week planning"
    qtbot.waitUntil(lambda: sidebar.visible_titles() == ["Week planning"], timeout=5000)


def test_rename_from_double_click_and_context_action(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    conv = store.create("Draft")
    sidebar = make_sidebar(qtbot, storage, bridge)
    rect = sidebar.list.visualItemRect(item_for(sidebar, conv.id))
    # A real double-click is press, release, double-click: the view edits only the index
    # the press landed on.
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sidebar.list.state() == QAbstractItemView.State.EditingState
    qtbot.keyClick(editor_of(sidebar), Qt.Key.Key_Escape)  # cancel: nothing written
    assert store.get(conv.id).title == "Draft"  # type: ignore[union-attr]

    sidebar.rename_action.trigger()
    editor = editor_of(sidebar)
    editor.selectAll()
    qtbot.keyClicks(editor, "SQL question")
    with qtbot.waitSignal(sidebar.sig_conversation_renamed, timeout=2000):
        qtbot.keyClick(editor, Qt.Key.Key_Enter)
    assert store.get(conv.id).title == "SQL question"  # type: ignore[union-attr]


def test_an_empty_title_is_not_saved(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    conv = store.create("Keep me")
    sidebar = make_sidebar(qtbot, storage, bridge)
    click(qtbot, sidebar, conv.id)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    editor = editor_of(sidebar)
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    with qtbot.assertNotEmitted(sidebar.sig_conversation_renamed):
        qtbot.keyClick(editor, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: sidebar.visible_titles() == ["Keep me"], timeout=2000)
    assert store.get(conv.id).title == "Keep me"  # type: ignore[union-attr]


def test_delete_key_then_undo_restores_messages(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    keep = store.create("Keep")
    gone = store.create("Release notes")
    store.add_message(gone.id, "user", "Write the release notes")
    store.add_message(gone.id, "assistant", "Here they are")
    sidebar = make_sidebar(qtbot, storage, bridge)
    click(qtbot, sidebar, gone.id)
    with qtbot.waitSignal(sidebar.sig_conversation_deleted, timeout=2000) as deleted:
        qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    assert deleted.args == [gone.id]
    assert sidebar.visible_titles() == ["Keep"]  # off the list at once
    qtbot.waitUntil(sidebar.undo_pending, timeout=5000)  # the database has the snapshot
    assert store.get(gone.id) is None
    assert sidebar.undo_bar.isVisible()
    assert sidebar.undo_bar.label.text() == "Deleted “Release notes” —"

    with (
        qtbot.waitSignal(sidebar.sig_conversation_restored, timeout=2000) as restored,
        qtbot.waitSignal(sidebar.sig_conversation_selected, timeout=2000) as reopened,
    ):
        qtbot.mouseClick(sidebar.undo_bar.undo_button, Qt.MouseButton.LeftButton)
    assert restored.args == [gone.id] and reopened.args == [gone.id]
    row = store.get(gone.id)
    assert row is not None and row.message_count == 2
    qtbot.waitUntil(lambda: len(sidebar.visible_titles()) == 2, timeout=5000)
    assert sorted(sidebar.visible_titles()) == ["Keep", "Release notes"]
    assert not sidebar.undo_bar.isVisible()
    assert store.get(keep.id) is not None


def test_delete_from_context_action_and_undo_expires(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    conv = store.create("Short-lived")
    sidebar = make_sidebar(qtbot, storage, bridge, undo_timeout_ms=50)
    click(qtbot, sidebar, conv.id)
    sidebar.delete_action.trigger()
    qtbot.waitUntil(sidebar.undo_pending, timeout=5000)
    assert store.get(conv.id) is None
    qtbot.waitUntil(lambda: not sidebar.undo_pending(), timeout=3000)
    assert not sidebar.undo_bar.isVisible()
    sidebar.undo_delete()  # too late: nothing to restore
    assert store.get(conv.id) is None
    assert sidebar.visible_titles() == []


def test_search_matches_titles_and_content_with_snippets(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    plan = store.create("Week planning")
    store.add_message(plan.id, "user", "Plan my week around the SQL migration and taxes")
    store.create("Release notes")
    sidebar = make_sidebar(qtbot, storage, bridge)

    qtbot.keyClicks(sidebar.search_edit, "MIGRATION")
    qtbot.waitUntil(lambda: sidebar.visible_titles() == ["Week planning"], timeout=3000)
    rows = sidebar.visible_rows()
    assert rows[0] == (GROUP_RESULTS, None)
    assert "SQL migration" in (rows[1][1] or "")

    sidebar.search_edit.clear()
    qtbot.keyClicks(sidebar.search_edit, "release")
    qtbot.waitUntil(lambda: sidebar.visible_titles() == ["Release notes"], timeout=3000)
    assert sidebar.visible_rows()[1] == ("Release notes", None)  # title hit: no snippet

    sidebar.search_edit.clear()
    qtbot.keyClicks(sidebar.search_edit, "zebra")
    qtbot.waitUntil(lambda: sidebar.visible_titles() == [], timeout=3000)
    assert sidebar.empty_label.text() == "No conversation mentions “zebra”"

    sidebar.search_edit.clear()
    qtbot.waitUntil(lambda: len(sidebar.visible_titles()) == 2, timeout=3000)
    assert sidebar.visible_rows()[0] == (GROUP_TODAY, None)


def test_enter_in_search_opens_the_first_hit(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    target = store.create("Taxes 2025")
    store.create("Groceries")
    sidebar = make_sidebar(qtbot, storage, bridge)
    qtbot.keyClicks(sidebar.search_edit, "taxes")
    with qtbot.waitSignal(sidebar.sig_conversation_selected, timeout=2000) as blocker:
        qtbot.keyClick(sidebar.search_edit, Qt.Key.Key_Return)
    assert blocker.args == [target.id]


def test_focus_search_and_refresh_keep_selection(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    a = store.create("Alpha")
    sidebar = make_sidebar(qtbot, storage, bridge)
    sidebar.activateWindow()
    sidebar.select(a.id)
    sidebar.focus_search()
    qtbot.waitUntil(sidebar.search_edit.hasFocus, timeout=2000)
    b = store.create("Beta")
    refreshed(qtbot, sidebar)
    assert sidebar.visible_titles() == ["Beta", "Alpha"]
    assert sidebar.list.currentItem().data(ItemRole.ID) == a.id
    assert b.id != a.id


def test_the_undo_bar_does_not_widen_the_sidebar(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    long_title = "A very long conversation title about planning the whole quarter in detail"
    gone = store.create(long_title)
    store.create("Keep")
    sidebar = ConversationSidebar(storage.conversations, bridge, clock=lambda: NOW)
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(sidebar)
    splitter.addWidget(QWidget())
    qtbot.addWidget(splitter)
    splitter.resize(900, 500)
    splitter.setSizes([200, 700])
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        splitter.show()
    qtbot.waitExposed(splitter)
    width = sidebar.width()
    sidebar.delete_conversation(gone.id)
    qtbot.waitUntil(sidebar.undo_pending, timeout=5000)
    qtbot.waitUntil(sidebar.undo_bar.isVisible)
    assert sidebar.width() == width
    assert sidebar.minimumSizeHint().width() <= width
    # The title is shortened to fit, and whole in the tooltip.
    assert sidebar.undo_bar.label.text().endswith("” —")
    assert long_title in sidebar.undo_bar.label.toolTip()
    assert sidebar.undo_bar.undo_button.isVisible()
    assert sidebar.undo_bar.geometry().right() <= sidebar.rect().right()
