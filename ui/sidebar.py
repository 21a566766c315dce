"""The conversation sidebar: new chat, search, the list grouped by day, rename, delete + undo.

```
[+ New chat]
[ Search… (Ctrl+F) ]
Today
  Week planning
  Release notes
Yesterday
  SQL question
```

Every read and write goes to the database owner's thread through the Bridge; the list is
filled when the answer arrives (``sig_refreshed``), and a load overtaken by a newer one
(typing in the search box) is ignored. Delete takes the row off the list at once and offers
Undo once the database has the snapshot to restore.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.ui.bridge import describe_error as describe

if TYPE_CHECKING:
    from halext_desktop.storage.chats import Conversations
    from halext_desktop.storage.conversations import ConversationRow, DeletedConversation
    from halext_desktop.ui.bridge import Bridge

GROUP_TODAY = "Today"
GROUP_YESTERDAY = "Yesterday"
GROUP_WEEK = "Previous 7 days"
GROUP_OLDER = "Older"
GROUP_RESULTS = "Search results"
SEARCH_DEBOUNCE_MS = 150
UNDO_TIMEOUT_MS = 8000
# Conversations read per page: the list is filled once with the first page and grows as the
# user scrolls towards its end (10,000 conversations never load at once).
LIST_PAGE = 200


class ItemRole(IntEnum):
    ID = Qt.ItemDataRole.UserRole + 1
    SNIPPET = Qt.ItemDataRole.UserRole + 2
    HEADER = Qt.ItemDataRole.UserRole + 3
    STREAMING = Qt.ItemDataRole.UserRole + 4  # a reply is on its way in this chat
    UNREAD = Qt.ItemDataRole.UserRole + 5  # a reply came while another chat was open


# The marks at the right of a row: a reply streaming in it, a reply not read yet.
STREAMING_MARK = "replying…"
UNREAD_MARK = "●"


def local_date(moment: datetime) -> date:
    """The user's calendar day of a stored time (naive times are UTC, as storage writes them)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().date()


def group_label(updated_at: datetime, now: datetime) -> str:
    """Today / Yesterday / Previous 7 days / Older, by the user's local calendar."""
    day, today = local_date(updated_at), local_date(now)
    if day >= today:
        return GROUP_TODAY
    if day == today - timedelta(days=1):
        return GROUP_YESTERDAY
    if day >= today - timedelta(days=7):
        return GROUP_WEEK
    return GROUP_OLDER


class _ItemDelegate(QStyledItemDelegate):
    """Headers as small muted captions; a search hit as title + muted snippet line."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:  # noqa: N802
        h = QFontMetrics(option.font).height()
        if index.data(ItemRole.HEADER):
            return QSize(100, h + 10)
        if index.data(ItemRole.SNIPPET):
            return QSize(100, 2 * h + 12)
        return QSize(100, h + 10)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        pal = opt.palette
        muted = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText)
        rect: QRect = opt.rect.adjusted(8, 0, -8, 0)
        text = opt.text
        if index.data(ItemRole.HEADER):
            painter.save()
            font = QFont(opt.font)
            font.setBold(True)
            font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
            painter.setFont(font)
            painter.setPen(muted)
            painter.drawText(rect.adjusted(0, 4, 0, 0), Qt.AlignmentFlag.AlignVCenter, text)
            painter.restore()
            return
        snippet = index.data(ItemRole.SNIPPET)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        fm = QFontMetrics(opt.font)
        painter.setFont(opt.font)
        painter.setPen(
            pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        )
        inner = rect.adjusted(4, 0, 0, 0)
        if snippet:
            line_h = fm.height()
            top = QRect(inner.left(), inner.top() + 5, inner.width(), line_h)
            bottom = QRect(inner.left(), top.bottom() + 2, inner.width(), line_h)
            painter.drawText(
                top,
                Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(text, Qt.TextElideMode.ElideRight, top.width()),
            )
            painter.setPen(pal.color(QPalette.ColorRole.HighlightedText) if selected else muted)
            painter.drawText(
                bottom,
                Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(
                    " ".join(str(snippet).split()), Qt.TextElideMode.ElideRight, bottom.width()
                ),
            )
        else:
            streaming = bool(index.data(ItemRole.STREAMING))
            unread = bool(index.data(ItemRole.UNREAD))
            mark = STREAMING_MARK if streaming else UNREAD_MARK if unread else ""
            title_rect = inner
            if mark:
                small = QFont(opt.font)
                if streaming:
                    small.setPointSizeF(max(small.pointSizeF() * 0.85, 6.0))
                    small.setItalic(True)
                sfm = QFontMetrics(small)
                mark_w = sfm.horizontalAdvance(mark) + 6
                title_rect = inner.adjusted(0, 0, -mark_w, 0)
                painter.save()
                painter.setFont(small)
                if not selected:
                    painter.setPen(muted if streaming else pal.color(QPalette.ColorRole.Highlight))
                painter.drawText(
                    inner.adjusted(inner.width() - mark_w, 0, 0, 0),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                    mark,
                )
                painter.restore()
            if unread:
                bold = QFont(opt.font)
                bold.setBold(True)
                painter.setFont(bold)
                fm = QFontMetrics(bold)
            painter.drawText(
                title_rect,
                Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(text, Qt.TextElideMode.ElideRight, title_rect.width()),
            )
        painter.restore()


class UndoBar(QFrame):
    """``Deleted “title” — Undo``: shown for a few seconds after a delete.

    Signals:
        sig_undo(): the user clicked Undo.
        sig_expired(): the time ran out (or another delete replaced this one).
    """

    sig_undo = Signal()
    sig_expired = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.label = QLabel(self)
        self.label.setAccessibleName("Deleted conversation")
        self.label.setWordWrap(False)
        # The bar takes the width the sidebar has, never more: the title is shortened to
        # fit (whole in the tooltip) instead of widening the sidebar.
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(0)
        self._title = ""
        self.undo_button = QToolButton(self)
        self.undo_button.setText("Undo")
        self.undo_button.setAccessibleName("Undo delete")
        self.undo_button.setToolTip("Bring the conversation back (Ctrl+Z)")
        self.undo_button.setAutoRaise(True)
        self.undo_button.clicked.connect(self.sig_undo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.undo_button)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.sig_expired)
        self.hide()

    def show_for(self, title: str, timeout_ms: int) -> None:
        self._title = title
        self.label.setToolTip(f"Deleted “{title}”")
        self._elide()
        self.timer.start(timeout_ms)
        self.show()

    def _elide(self) -> None:
        fm = QFontMetrics(self.label.font())
        room = self.label.width() if self.label.width() > 0 else 160
        room -= fm.horizontalAdvance("Deleted “” —") + 4
        short = fm.elidedText(self._title, Qt.TextElideMode.ElideRight, max(24, room))
        self.label.setText(f"Deleted “{short}” —")

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._title:
            self._elide()


class ConversationSidebar(QWidget):
    """The list of conversations, newest first, grouped by day, with search.

    Ids travel as ``object``: a conversation still waiting for a locked database has a
    provisional (negative, possibly large) id.

    Signals:
        sig_conversation_selected(object): the user opened a conversation (click, keys, undo).
        sig_new_requested(): "+ New chat" was clicked.
        sig_conversation_deleted(object): a conversation was deleted (the window clears it).
        sig_conversation_renamed(object, str): a conversation got a new title.
        sig_conversation_restored(object): Undo brought a deleted conversation back.
        sig_refreshed(): the list shows what the database answered.
        sig_failed(str): the database could not answer (the list says so too).
        sig_stop_requested(object): "Stop reply" on a chat whose reply is streaming.
        sig_typing(str): text typed while the list had the keyboard (it belongs in the
            message box); "" for Enter, which only moves there.
        sig_export_requested(object, str): "Export as Markdown/JSON" on a conversation;
            its id and the format ("markdown" or "json").
    """

    sig_conversation_selected = Signal(object)
    sig_new_requested = Signal()
    sig_conversation_deleted = Signal(object)
    sig_conversation_renamed = Signal(object, str)
    sig_conversation_restored = Signal(object)
    sig_refreshed = Signal()
    sig_failed = Signal(str)
    sig_stop_requested = Signal(object)
    sig_typing = Signal(str)
    sig_export_requested = Signal(object, str)

    def __init__(
        self,
        store: Conversations,
        bridge: Bridge,
        parent: QWidget | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        undo_timeout_ms: int = UNDO_TIMEOUT_MS,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._bridge = bridge
        self._gen = 0
        self._open_first = False
        self._clock = clock or (lambda: datetime.now(UTC))
        self._undo_timeout_ms = undo_timeout_ms
        self._selected: int | None = None
        self._populating = False
        self._pending_undo: tuple[Any, int, bool] | None = None  # (snapshot, id, was selected)
        self._streaming: set[int] = set()  # chats with a reply on its way
        self._unread: set[int] = set()  # chats with a reply that came while not open
        # Paging of the (unsearched) list: conversations listed so far, whether more exist,
        # whether the next page is on its way, and the group label of the last row shown.
        self._listed = 0
        self._more = False
        self._paging = False
        self._last_group: str | None = None

        self.new_button = QPushButton("+ New chat", self)
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.sig_new_requested)

        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Search… (Ctrl+F)")
        self.search_edit.setAccessibleName("Search conversations")
        self.search_edit.setToolTip("Search titles and messages (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.installEventFilter(self)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._populate)
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())

        self.list = QListWidget(self)
        self.list.setAccessibleName("Conversations")
        self.list.setItemDelegate(_ItemDelegate(self.list))
        self.list.setFrameShape(QFrame.Shape.NoFrame)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.installEventFilter(self)
        self.list.verticalScrollBar().valueChanged.connect(self._maybe_more)
        self.list.verticalScrollBar().rangeChanged.connect(lambda *_: self._maybe_more())

        self.empty_label = QLabel(self)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAccessibleName("Conversation list status")
        self.empty_label.hide()

        self.undo_bar = UndoBar(self)
        self.undo_bar.sig_undo.connect(self.undo_delete)
        self.undo_bar.sig_expired.connect(self._drop_undo)

        self.rename_action = QAction("Rename", self)
        self.rename_action.setShortcut(QKeySequence(Qt.Key.Key_F2))
        self.rename_action.triggered.connect(self.rename_current)
        self.delete_action = QAction("Delete", self)
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.triggered.connect(self.delete_current)
        self.stop_action = QAction("Stop reply", self)
        self.stop_action.triggered.connect(self._stop_current)
        self.export_markdown_action = QAction("Export as Markdown…", self)
        self.export_markdown_action.triggered.connect(lambda: self._export_current("markdown"))
        self.export_json_action = QAction("Export as JSON…", self)
        self.export_json_action.triggered.connect(lambda: self._export_current("json"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.undo_bar)
        self.refresh()

    # ---- public API -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload from the store now (keeps the selection and any search)."""
        self._search_timer.stop()
        self._populate()

    def touch(self, conversation_id: int) -> None:
        """A conversation was created or has new activity (a send, a reply saved): its one
        row moves to the top (the list is not read again). While a search is shown, the
        search runs again (the hits may have changed)."""
        if self.search_edit.text().strip():
            self.refresh()
            return
        gen = self._gen
        self._bridge.call(
            self._store.get(conversation_id),
            lambda row: self._move_to_top(gen, conversation_id, row),
            lambda exc: self._on_load_failed(gen, exc),
            owner=self,
        )

    def select(self, conversation_id: int | None) -> None:
        """Highlight a conversation without emitting ``sig_conversation_selected``."""
        self._selected = conversation_id
        self._populating = True
        try:
            item = self._item_for(conversation_id) if conversation_id is not None else None
            if item is None:
                self.list.setCurrentRow(-1)
                self.list.clearSelection()
            else:
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
        finally:
            self._populating = False

    def selected_id(self) -> int | None:
        return self._selected

    # ---- marks: a reply streaming, a reply not read yet -----------------------------------

    def set_streaming(self, conversation_ids: set[int]) -> None:
        """The chats with a reply on its way (all of them; the others lose the mark)."""
        self._streaming = set(conversation_ids)
        self._apply_marks()

    def mark_unread(self, conversation_id: int) -> None:
        """A reply came in a chat that was not open."""
        self._unread.add(conversation_id)
        self._apply_marks()

    def mark_read(self, conversation_id: int | None) -> None:
        if conversation_id in self._unread:
            self._unread.discard(conversation_id)
            self._apply_marks()

    def is_streaming(self, conversation_id: int) -> bool:
        return conversation_id in self._streaming

    def is_unread(self, conversation_id: int) -> bool:
        return conversation_id in self._unread

    def marks(self) -> dict[str, str]:
        """Title → its mark as shown (``replying…``, ``●``), for rows that have one."""
        out: dict[str, str] = {}
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ItemRole.STREAMING):
                out[item.text()] = STREAMING_MARK
            elif item.data(ItemRole.UNREAD):
                out[item.text()] = UNREAD_MARK
        return out

    def _apply_marks(self) -> None:
        self._populating = True
        try:
            for i in range(self.list.count()):
                self._mark(self.list.item(i))
        finally:
            self._populating = False
        self.list.viewport().update()

    def _mark(self, item: QListWidgetItem) -> None:
        cid = item.data(ItemRole.ID)
        if cid is None:
            return
        streaming, unread = cid in self._streaming, cid in self._unread
        if bool(item.data(ItemRole.STREAMING)) != streaming:
            item.setData(ItemRole.STREAMING, streaming)
        if bool(item.data(ItemRole.UNREAD)) != unread:
            item.setData(ItemRole.UNREAD, unread)
        state = ", replying" if streaming else ", new reply" if unread else ""
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{item.text()}{state}")

    def _stop_current(self) -> None:
        item = self.list.currentItem()
        cid = item.data(ItemRole.ID) if item is not None else None
        if cid is not None and cid in self._streaming:
            self.sig_stop_requested.emit(cid)

    def focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.data(ItemRole.ID) is not None:
            self.list.editItem(item)

    def delete_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.data(ItemRole.ID) is not None:
            self.delete_conversation(item.data(ItemRole.ID))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete now (off the list at once); offer Undo for a few seconds."""
        item = self._item_for(conversation_id)
        title = item.text() if item is not None else ""
        was_selected = conversation_id == self._selected
        if item is not None:
            self._populating = True
            try:
                self.list.takeItem(self.list.row(item))
            finally:
                self._populating = False
        if was_selected:
            self._selected = None
        self.sig_conversation_deleted.emit(conversation_id)

        def deleted(snapshot: DeletedConversation) -> None:
            self._pending_undo = (snapshot, conversation_id, was_selected)
            self.undo_bar.show_for(title, self._undo_timeout_ms)
            self._populate()

        self._bridge.call(
            self._store.delete(conversation_id), deleted, self._on_change_failed, owner=self
        )

    def undo_delete(self) -> None:
        """Bring back the last deleted conversation (while the Undo bar is shown)."""
        pending, self._pending_undo = self._pending_undo, None
        self.undo_bar.timer.stop()
        self.undo_bar.hide()
        if pending is None:
            return
        snapshot, cid, was_selected = pending

        def restored(_row: ConversationRow | None) -> None:
            self._populate()
            self.sig_conversation_restored.emit(cid)
            if was_selected:
                self._selected = cid
                self.sig_conversation_selected.emit(cid)

        def failed(exc: BaseException) -> None:
            # ValueError: it exists again already (restore() keeps ids); show what is stored.
            if isinstance(exc, ValueError):
                restored(None)
            else:
                self._on_change_failed(exc)

        self._bridge.call(self._store.restore(snapshot), restored, failed, owner=self)

    def undo_pending(self) -> bool:
        return self._pending_undo is not None

    def visible_titles(self) -> list[str]:
        """Titles in display order (headers excluded), for tests and accessibility checks."""
        return [
            self.list.item(i).text()
            for i in range(self.list.count())
            if not self.list.item(i).data(ItemRole.HEADER)
        ]

    def visible_rows(self) -> list[tuple[str, str | None]]:
        """(text, snippet) of every row in order; headers have snippet None and text as shown."""
        out: list[tuple[str, str | None]] = []
        for i in range(self.list.count()):
            it = self.list.item(i)
            out.append((it.text(), it.data(ItemRole.SNIPPET)))
        return out

    # ---- internals ------------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if obj is self.search_edit:
                if key == Qt.Key.Key_Down:
                    self._focus_first(open_it=False)
                    return True
                if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                    # Open the first hit of this very query, once the database answered it.
                    self._search_timer.stop()
                    self._open_first = True
                    self._populate()
                    return True
                if key == Qt.Key.Key_Escape and self.search_edit.text():
                    self.search_edit.clear()
                    return True
            elif obj is self.list and self.list.state() != QAbstractItemView.State.EditingState:
                if key == Qt.Key.Key_F2:
                    self.rename_current()
                    return True
                if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not event.modifiers():
                    self.delete_current()
                    return True
                if event.matches(QKeySequence.StandardKey.Undo) and self._pending_undo:
                    self.undo_delete()
                    return True
                if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
                    self.sig_typing.emit("")
                    return True
                text = event.text()
                typed = not event.modifiers() & ~(
                    Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
                )
                if typed and text and text.isprintable() and not text.isspace():
                    self.sig_typing.emit(text)
                    return True
        return super().eventFilter(obj, event)

    def _focus_first(self, open_it: bool) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ItemRole.ID) is not None:
                self.list.setFocus(Qt.FocusReason.OtherFocusReason)
                if open_it:
                    self.list.setCurrentItem(item)  # emits sig_conversation_selected
                elif self.list.currentItem() is None:
                    self.list.setCurrentItem(item)
                return

    def _item_for(self, conversation_id: int | None) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ItemRole.ID) == conversation_id and conversation_id is not None:
                return item
        return None

    def _populate(self) -> None:
        """Ask the database for the list's first page (or the search hits); ``_fill``
        shows them."""
        query = self.search_edit.text().strip()
        self._gen += 1
        gen = self._gen
        self._paging = False
        if query:
            # Hits show as they are found (titles at once, then the messages walked newest
            # first); a newer search overtakes this one on the database owner.
            self._bridge.stream(
                lambda: self._store.search_stream(query),
                lambda found: self._fill(gen, query, found[0], done=found[1]),
                lambda exc: self._on_load_failed(gen, exc),
                owner=self,
            )
            return
        self._bridge.call(
            self._store.list(LIST_PAGE, counted=False),
            lambda rows: self._fill(gen, query, rows),
            lambda exc: self._on_load_failed(gen, exc),
            owner=self,
        )

    def _fill(self, gen: int, query: str, rows: Any, *, done: bool = True) -> None:
        """Show the list's first page, or search hits (``done`` False: more may come)."""
        if gen != self._gen:
            return  # a newer load (the user kept typing) is on its way
        self._populating = True
        try:
            self.list.clear()
            self._last_group = None
            if query:
                hits = rows
                if hits:
                    self._add_header(GROUP_RESULTS)
                for row, snippet in hits:
                    self._add_row(row.id, row.title, snippet)
                empty = "" if hits or not done else f"No conversation mentions “{query}”"
                self._listed, self._more = 0, False
            else:
                self._append_rows(rows)
                self._listed, self._more = len(rows), len(rows) >= LIST_PAGE
                empty = (
                    "" if rows else "No conversations yet — start one with “+ New chat” (Ctrl+N)"
                )
            self.empty_label.setText(empty)
            self.empty_label.setVisible(bool(empty))
            item = self._item_for(self._selected)
            if item is not None:
                self.list.setCurrentItem(item)
        finally:
            self._populating = False
        if not done:
            return  # the search walks on: the first hit may still change
        if self._open_first:
            self._open_first = False
            self._focus_first(open_it=True)
        self.sig_refreshed.emit()
        QTimer.singleShot(0, self, self._maybe_more)  # once the list is laid out

    def _append_rows(self, rows: Sequence[ConversationRow]) -> None:
        """Rows (newest first) after those shown, under their day's header."""
        now = self._clock()
        shown = {self._store.resolve(cid) for cid in self._row_ids()} if self._listed else set()
        for row in rows:
            if self._store.resolve(row.id) in shown:
                continue  # moved up since its page was read (it has new activity)
            group = group_label(row.updated_at, now)
            if group != self._last_group:
                self._add_header(group)
                self._last_group = group
            self._add_row(row.id, row.title, None)

    def _row_ids(self) -> list[Any]:
        ids = []
        for i in range(self.list.count()):
            cid = self.list.item(i).data(ItemRole.ID)
            if cid is not None:
                ids.append(cid)
        return ids

    def has_more(self) -> bool:
        """Older conversations exist that the list has not read yet."""
        return self._more

    def load_more(self) -> None:
        """Read the next page of conversations (scrolling near the end does this)."""
        if not self._more or self._paging or self.search_edit.text().strip():
            return
        self._paging = True
        gen = self._gen
        offset = self._listed

        def got(rows: list[ConversationRow]) -> None:
            if gen != self._gen:
                return
            self._paging = False
            self._listed = offset + len(rows)
            self._more = len(rows) >= LIST_PAGE
            self._populating = True
            try:
                self._append_rows(rows)
            finally:
                self._populating = False
            self.sig_refreshed.emit()
            QTimer.singleShot(0, self, self._maybe_more)

        def failed(exc: BaseException) -> None:
            if gen == self._gen:
                self._paging = False
                self._on_load_failed(gen, exc)

        self._bridge.call(
            self._store.list(LIST_PAGE, offset=offset, counted=False), got, failed, owner=self
        )

    def _maybe_more(self, *_args: object) -> None:
        """Near the end of the list (within a screen): read the next page."""
        if not self._more or self._paging:
            return
        count = self.list.count()
        height = max(self.list.viewport().height(), 1)
        # Where the last row ends, below the top of the viewport (lays the list out first).
        end = self.list.visualItemRect(self.list.item(count - 1)).bottom() if count else 0
        if end - height <= height:
            self.load_more()

    def _move_to_top(self, gen: int, cid: Any, row: ConversationRow | None) -> None:
        if gen != self._gen or self.search_edit.text().strip():
            return  # the list was read again meanwhile (it has the row where it belongs)
        real = self._store.resolve(cid)
        self._populating = True
        try:
            i = 0
            while i < self.list.count():
                other = self.list.item(i).data(ItemRole.ID)
                if other is not None and self._store.resolve(other) == real:
                    i = self._take_row(i)
                else:
                    i += 1
            if row is not None:
                group = group_label(row.updated_at, self._clock())
                first = self.list.item(0)
                at = 0
                if first is not None and first.data(ItemRole.HEADER) and first.text() == group:
                    at = 1
                else:
                    self.list.insertItem(0, self._header_item(group))
                    at = 1
                    if self._last_group is None:
                        self._last_group = group
                self.list.insertItem(at, self._row_item(row.id, row.title, None))
                if self._store.resolve(row.id) == self._store.resolve(self._selected or 0):
                    self._selected = row.id
                    self.list.setCurrentItem(self.list.item(at))
                self.empty_label.hide()
        finally:
            self._populating = False
        self.sig_refreshed.emit()

    def _take_row(self, i: int) -> int:
        """Remove row ``i``, and its day's header when it was the header's last row;
        returns the index of the row that followed it."""
        self.list.takeItem(i)
        above = self.list.item(i - 1) if i > 0 else None
        below = self.list.item(i) if i < self.list.count() else None
        last_in_group = below is None or below.data(ItemRole.HEADER)
        if above is not None and above.data(ItemRole.HEADER) and last_in_group:
            self.list.takeItem(i - 1)
            i -= 1
            if below is None:
                last = self._last_header()
                self._last_group = last.text() if last is not None else None
        return i

    def _last_header(self) -> QListWidgetItem | None:
        for i in reversed(range(self.list.count())):
            item = self.list.item(i)
            if item.data(ItemRole.HEADER):
                return item
        return None

    def _on_load_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen:
            return
        text = f"The conversations could not be read: {describe(exc)}"
        self.empty_label.setText(text)
        self.empty_label.setVisible(True)
        self.sig_failed.emit(text)

    def _on_change_failed(self, exc: BaseException) -> None:
        text = f"The change could not be saved: {describe(exc)}"
        self.empty_label.setText(text)
        self.empty_label.setVisible(True)
        self.sig_failed.emit(text)
        self._populate()

    def _add_header(self, text: str) -> None:
        self.list.addItem(self._header_item(text))

    def _header_item(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setData(ItemRole.HEADER, True)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{text} group")
        return item

    def _add_row(self, cid: int, title: str, snippet: str | None) -> None:
        self.list.addItem(self._row_item(cid, title, snippet))

    def _row_item(self, cid: int, title: str, snippet: str | None) -> QListWidgetItem:
        # Stored as a Python object: a provisional id may not fit a C++ int.
        item = QListWidgetItem(title)
        item.setData(ItemRole.ID, cid)
        item.setData(ItemRole.SNIPPET, snippet or None)
        item.setToolTip(f"{title}\nF2 rename · Delete removes (with Undo)")
        item.setFlags(
            Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
        )
        self._mark(item)
        return item

    def _on_current_changed(
        self, current: QListWidgetItem | None, _previous: QListWidgetItem | None
    ) -> None:
        if self._populating or current is None:
            return
        cid = current.data(ItemRole.ID)
        if cid is None or cid == self._selected:
            return
        self._selected = cid
        self.sig_conversation_selected.emit(cid)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._populating:
            return
        cid = item.data(ItemRole.ID)
        if cid is None:
            return
        title = " ".join(item.text().split())
        if not title:
            # An empty title is not a rename: put the old one back (after the editor closed).
            QTimer.singleShot(0, self, self._populate)
            return

        def renamed(_none: None) -> None:
            self._after_rename(cid, title)

        def refused(exc: BaseException) -> None:
            # Deleted meanwhile, or a title storage refuses: show what is stored.
            if not isinstance(exc, ValueError | LookupError):
                self._on_change_failed(exc)
            else:
                self._populate()

        try:
            coro = self._store.rename(cid, title)
        except ValueError:
            QTimer.singleShot(0, self, self._populate)
            return
        # The list is rebuilt when the answer arrives, after the editor has closed: clearing
        # the list from inside the delegate's commit would delete the item being committed.
        self._bridge.call(coro, renamed, refused, owner=self)

    def _after_rename(self, cid: Any, title: str) -> None:
        self._populate()
        self.sig_conversation_renamed.emit(cid, title)

    def _drop_undo(self) -> None:
        self._pending_undo = None
        self.undo_bar.hide()

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(ItemRole.ID) is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        if item.data(ItemRole.ID) in self._streaming:
            menu.addAction(self.stop_action)
        menu.addAction(self.rename_action)
        menu.addAction(self.delete_action)
        menu.addSeparator()
        menu.addAction(self.export_markdown_action)
        menu.addAction(self.export_json_action)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def _export_current(self, fmt: str) -> None:
        item = self.list.currentItem()
        cid = item.data(ItemRole.ID) if item is not None else None
        if cid is not None:
            self.sig_export_requested.emit(cid, fmt)

    def title_of(self, conversation_id: Any) -> str | None:
        """The title shown for a conversation (None when it is not listed)."""
        item = self._item_for(conversation_id)
        return item.text() if item is not None else None

    def context_actions(self) -> Sequence[QAction]:
        """The actions of the right-click menu (Rename, Delete), for the window's menus."""
        return (self.rename_action, self.delete_action)
