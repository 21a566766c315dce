"""The sidebar reads its list in pages (more as the user scrolls), once; new activity moves
one row instead of reading the list again. Real widgets, a real database on its owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pytestqt.qtbot import QtBot

from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.store import Storage
from halext_desktop.ui import sidebar as sidebar_module
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.sidebar import GROUP_OLDER, GROUP_TODAY, ConversationSidebar
from tests.ui.test_sidebar import NOW, backdate, bridge, make_sidebar, storage, store

__all__ = ["bridge", "storage", "store"]  # fixtures

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

PAGE = 12


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidebar_module, "LIST_PAGE", PAGE)


def seed(store: ConversationStore, n: int) -> list[int]:
    """``n`` conversations, one a day older than the next: ``Chat 0`` is the newest."""
    ids = []
    for k in range(n):
        cid = store.create(f"Chat {k}").id
        backdate(store, cid, NOW - timedelta(days=20 + k))
        ids.append(cid)
    return ids


def small_sidebar(qtbot: QtBot, storage: Storage, bridge: Bridge) -> ConversationSidebar:
    """A sidebar whose list shows fewer rows than a page."""
    sidebar = ConversationSidebar(storage.conversations, bridge, clock=lambda: NOW)  # type: ignore[arg-type]
    qtbot.addWidget(sidebar)
    sidebar.resize(280, 150)
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.show()
    qtbot.waitExposed(sidebar)
    return sidebar


def scroll_to_end(qtbot: QtBot, sidebar: ConversationSidebar) -> None:
    qtbot.waitUntil(lambda: not sidebar._paging, timeout=5000)  # a read on its way lands
    if not sidebar.has_more():
        return
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.list.scrollToBottom()  # lays the list out, then scrolls (valueChanged)


def test_the_list_reads_one_page_and_the_next_as_the_user_scrolls(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    seed(store, 2 * PAGE + 3)
    sidebar = small_sidebar(qtbot, storage, bridge)
    # A page fills more than the screen once laid out: nothing more is read.
    qtbot.waitUntil(lambda: sidebar.list.verticalScrollBar().maximum() > 0, timeout=5000)
    sidebar._maybe_more()  # what scrolling (and the end of a fill) asks
    assert not sidebar._paging
    assert sidebar.visible_titles() == [f"Chat {k}" for k in range(PAGE)]
    assert sidebar.has_more()
    while sidebar.has_more():
        scroll_to_end(qtbot, sidebar)
    titles = sidebar.visible_titles()
    assert titles == [f"Chat {k}" for k in range(2 * PAGE + 3)]  # in order, none twice
    assert [t for t, _ in sidebar.visible_rows()].count(GROUP_OLDER) == 1


def test_new_activity_moves_one_row_to_the_top_and_pages_do_not_repeat_it(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    ids = seed(store, 2 * PAGE)
    sidebar = small_sidebar(qtbot, storage, bridge)
    oldest = ids[-1]  # not on the first page
    assert f"Chat {2 * PAGE - 1}" not in sidebar.visible_titles()
    store.add_message(oldest, "user", "back to this one")
    store.rename(ids[2], "Renamed meanwhile")  # not shown until the list is read again
    reads: list[int] = []
    sidebar.sig_refreshed.connect(lambda: reads.append(1))
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.touch(oldest)
    rows = [t for t, _ in sidebar.visible_rows()]
    assert rows[:2] == [GROUP_TODAY, f"Chat {2 * PAGE - 1}"]
    assert "Renamed meanwhile" not in rows  # one row moved: the list was not read again
    while sidebar.has_more():
        scroll_to_end(qtbot, sidebar)
    titles = sidebar.visible_titles()
    assert titles.count(f"Chat {2 * PAGE - 1}") == 1
    assert len(titles) == 2 * PAGE


def test_touching_the_only_row_of_a_day_takes_its_header_with_it(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    (cid,) = seed(store, 1)
    sidebar = make_sidebar(qtbot, storage, bridge)
    assert [t for t, _ in sidebar.visible_rows()] == [GROUP_OLDER, "Chat 0"]
    store.add_message(cid, "user", "hello again")
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.touch(cid)
    assert [t for t, _ in sidebar.visible_rows()] == [GROUP_TODAY, "Chat 0"]


def test_the_page_rows_are_not_counted(storage: Storage, store: ConversationStore) -> None:
    (cid,) = seed(store, 1)
    store.add_message(cid, "user", "one")
    assert store.list(counted=False)[0].message_count == -1
    assert store.list()[0].message_count == 1
    assert [c.title for c in store.list(1, offset=0)] == ["Chat 0"]
    assert store.list(1, offset=1) == []


def test_title_hits_show_before_the_search_has_walked_every_message(
    qtbot: QtBot, store: ConversationStore, storage: Storage, bridge: Bridge
) -> None:
    """'42' only in a title, 600 messages to walk: the list shows the title hit while the
    search still walks (no ``sig_refreshed`` yet), then the final answer."""
    titled = store.create("Chat 42").id
    other = store.create("Other").id
    for i in range(600):
        store.add_message(other, "user", "a message about tea" + "!" * (i % 5))
    sidebar = make_sidebar(qtbot, storage, bridge)
    seen: list[tuple[list[str], bool]] = []
    done: list[bool] = []
    sidebar.sig_refreshed.connect(lambda: done.append(True))
    sidebar.list.model().rowsInserted.connect(
        lambda *_: seen.append((sidebar.visible_titles(), bool(done)))
    )
    with qtbot.waitSignal(sidebar.sig_refreshed, timeout=5000):
        sidebar.search_edit.setText("42")
        sidebar.refresh()  # no debounce wait
    # Shown twice before the end: the titles at once, then the final answer.
    shown = [titles for titles, ended in seen if titles == ["Chat 42"] and not ended]
    assert len(shown) == 2
    assert sidebar.visible_titles() == ["Chat 42"]
    assert [r for r in sidebar.visible_rows() if r[0] == "Chat 42"] == [("Chat 42", None)]
    assert store.get(titled) is not None
