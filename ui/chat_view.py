"""The conversation: a virtualized list of messages, streaming without stalls, lazy loading
of long histories, per-message actions and an inline banner.

How it stays smooth (ux.md: "the UI freezes while a long chat streams"):

* Streamed text is buffered and flushed to the model on a timer (~25 ms, longer if a
  flush itself gets slow), one ``dataChanged`` for that row, never a model reset.
* A row's height only changes the list's layout when it actually changes; in long
  conversations a streaming row reserves room ahead so the list (whose relayout costs
  O(rows)) is relaid out every few screens of text instead of every line.
* Rows are rendered only when about to scroll into view (see chat_delegate.py).

Scroll behaviour: the view follows new text while it is at the bottom ("pinned"); once the
user scrolls up it stays where it is, and older messages prepended at the top do not move
what the user is reading.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QFont,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QPixmap,
    QResizeEvent,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QListView,
    QMenu,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.storage import versions
from halext_desktop.ui import theme, thumbnail_decoder
from halext_desktop.ui.banner import Banner
from halext_desktop.ui.chat_delegate import THUMB_PX, ChatDelegate
from halext_desktop.ui.chat_model import STATUS_STREAMING, ChatModel, MessageItem
from halext_desktop.ui.chat_selection import MessageText
from halext_desktop.ui.markdown import COPY_SCHEME

EMPTY_HINT = "Start a conversation — pick a model with Ctrl+K"
# Once a model is chosen there is nothing to pick: only what to do next.
EMPTY_HINT_READY = "Start a conversation — type below; Enter sends"


def context_note(reply: Any) -> str:
    """ "Earlier messages are not sent to <model> — …": the marker's text for a reply whose
    history was cut to fit the model's context (its meta says how much was sent)."""
    raw = str(getattr(reply, "requested_model", None) or getattr(reply, "model_ref", "") or "")
    try:
        name = ModelRef.parse(raw).model if raw else "the model"
    except ModelRefError:
        name = raw
    tokens = (getattr(reply, "meta", None) or {}).get("context_tokens")
    held = (
        f"its context holds about {int(tokens):,} tokens of this chat, from here on"
        if (isinstance(tokens, int | float) and tokens > 0)
        else "its context holds this chat from here on"
    )
    return f"Earlier messages are not sent to {name} — {held}"


class _ChatListView(QListView):
    """QListView with the hooks ChatView needs: after-layout, resize and hover callbacks."""

    def __init__(self, owner: ChatView) -> None:
        super().__init__(owner)
        self._owner = owner

    def layout_width(self) -> int:
        """Rows are laid out as if the scroll bar were always shown, so its appearing does
        not change every row's height (and cannot oscillate)."""
        extent = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return max(120, self.width() - 2 * self.frameWidth() - extent)

    def doItemsLayout(self) -> None:
        super().doItemsLayout()
        self._owner._after_layout()

    def laid_out_height(self, row: int) -> int | None:
        """The height row ``row`` has in the current layout. (``visualRect`` cannot tell:
        it takes the position from the layout but the size from a fresh sizeHint.)"""
        model = self.model()
        top = self.rectForIndex(model.index(row, 0))
        if not top.isValid():
            return None
        if row + 1 < model.rowCount():
            below = self.rectForIndex(model.index(row + 1, 0))
            return below.top() - top.top() if below.isValid() else None
        return self.contentsSize().height() - top.top()

    def dataChanged(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        # QListView answers any dataChanged with a relayout of every row (O(rows): ~25 ms
        # at 5,000 rows, per streamed flush). ChatView relayouts itself when a row's height
        # really changes, so a one-row change only needs the repaint QAbstractItemView does.
        if top_left == bottom_right:
            QAbstractItemView.dataChanged(self, top_left, bottom_right, list(roles))
        else:
            super().dataChanged(top_left, bottom_right, list(roles))

    def updateGeometries(self) -> None:
        super().updateGeometries()
        # QListView derives the wheel step from item sizes; chat wants a few lines.
        step = max(12, self.fontMetrics().height() * 2)
        if self.verticalScrollBar().singleStep() != step:
            self.verticalScrollBar().setSingleStep(step)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._owner._before_resize()
        super().resizeEvent(event)
        self._owner._after_resize()

    # ---- mouse: a press on a message's text hands it to the text view ----------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._owner._press_text(event):
            return
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._owner._press_text(event):
            return
        super().mouseDoubleClickEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._owner._drag_text(event):
            return
        super().mouseMoveEvent(event)
        self._owner._on_hover(event.position().toPoint())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._owner._drag_text(event):
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        super().leaveEvent(event)
        self._owner._on_leave()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if event.reason() == QContextMenuEvent.Reason.Mouse:
            self._owner._on_context_menu(event.pos())
        else:
            # Menu key / Shift+F10: the message with keyboard focus, not whatever the
            # middle of the viewport happens to show.
            self._owner._keyboard_context_menu()
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._owner._key_for_text(event):
            return
        if event.matches(QKeySequence.StandardKey.Copy):
            index = self.currentIndex()
            if index.isValid():
                self._owner.copy_message(int(index.data(ChatModel.IdRole)))
                return
        super().keyPressEvent(event)


class _HoverBar(QFrame):
    """The small action buttons shown under the message the mouse is over."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("chatHoverBar")
        self.message_id: int | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.copy_button = self._button("Copy", "Copy message", "Copy the whole message")
        self.edit_button = self._button(
            "Edit", "Edit and resend", "Edit this message and send it again"
        )
        self.regenerate_button = self._button(
            "Regenerate", "Regenerate reply", "Answer again with the model selected now"
        )
        for button in (self.copy_button, self.edit_button, self.regenerate_button):
            layout.addWidget(button)
        self.hide()

    def _button(self, text: str, name: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setAccessibleName(name)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the context menu serves the keyboard
        font = QFont(button.font())
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 0.88)
        button.setFont(font)
        return button


class ChatView(QWidget):
    """The messages of one conversation, the inline banner and the empty state.

    Signals:
        sig_load_more(int): the user scrolled to the top and older messages exist; carries
            the oldest shown message id. Answer with ``prepend``.
        sig_edit_requested(int): "Edit and resend" on a user message.
        sig_regenerate_requested(int): "Regenerate" on the last assistant reply.
        sig_banner_action(str): the banner's action button; carries its action id.
        sig_banner_closed(str): the user dismissed the banner; carries its action id or "".
        sig_copied(str): text was put on the clipboard (a code block or a whole message).
        sig_version_requested(int, int): ‹ / › (or the menu) on a regenerated reply; the
            message id and the version to show. Answer with ``update_message``.
        sig_thumbnail_needed(str): an image attachment is on screen without its thumbnail;
            its sha256. Answer with ``set_thumbnail``.
        sig_image_requested(str, str): a thumbnail was clicked: show the image (sha256,
            file name).
    """

    sig_load_more = Signal(int)
    sig_edit_requested = Signal(int)
    sig_regenerate_requested = Signal(int)
    sig_banner_action = Signal(str)
    sig_banner_closed = Signal(str)
    sig_copied = Signal(str)
    sig_version_requested = Signal(int, int)
    sig_thumbnail_needed = Signal(str)
    sig_image_requested = Signal(str, str)

    FLUSH_INTERVAL_MS = 25
    MAX_FLUSH_INTERVAL_MS = 200
    # Below this many rows a relayout costs about a millisecond: no reserve needed.
    RESERVE_MIN_ROWS = 300
    # The model stays bounded while the view follows the end of the chat: older pages the
    # user scrolled up to are dropped once they are back at the bottom (or send), keeping
    # the newest KEEP_ROWS; scrolling up loads them again. (Qt relayouts every row when one
    # is inserted: at 5,000 rows that is ~30 ms, at 200 about one.)
    MAX_ROWS_PINNED = 400
    KEEP_ROWS = 200
    PIN_SLOP_PX = 4
    TOAST_MS = 1600

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Qt calls back into the hooks below while the widgets are being set up.
        self._ready = False
        self._pinned = True
        self._programmatic = 0
        # The scroll value as last seen or set here. A different value means the user's
        # scroll is being applied and its valueChanged has not reached us yet.
        self._last_value = 0
        self._anchor: tuple[int, int] | None = None  # (message id, top in viewport)
        self._has_more = False
        self._load_more_pending = False
        # Where the model's context starts: (message id, note shown above it), or None.
        self._context: tuple[int, str] | None = None
        self._streaming: set[int] = set()
        self._pending: dict[int, list[str]] = {}
        # Finished replies still holding their streaming reserve: it is released at the
        # next relayout that happens anyway, instead of costing one of its own.
        self._stale_reserve: set[int] = set()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(self.FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush_stream)
        self._relayout_queued = False
        self._in_refine = False
        # Rows were inserted or removed and the list has not laid them out yet (it does so
        # at the next turn of the event loop): asking it for a row's geometry meanwhile
        # would make it lay out every row at once, inside the caller's event.
        self._layout_pending = False
        self.menu: QMenu | None = None  # the context menu last shown (tests use it)
        self.model = ChatModel(self)
        self.list_view = _ChatListView(self)
        self.delegate = ChatDelegate(self.model, self.list_view)
        self.delegate.on_height_mismatch = self._on_height_mismatch
        self.delegate.laid_out_height = self.list_view.laid_out_height
        lv = self.list_view
        lv.setObjectName("chatList")
        lv.setAccessibleName("Conversation")
        lv.setItemDelegate(self.delegate)
        lv.setModel(self.model)
        lv.setUniformItemSizes(False)
        lv.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        lv.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lv.setResizeMode(QListView.ResizeMode.Fixed)  # width changes are handled here
        lv.setLayoutMode(QListView.LayoutMode.SinglePass)
        lv.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        lv.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lv.setFrameShape(QFrame.Shape.NoFrame)
        lv.setSpacing(0)
        lv.setMouseTracking(True)
        lv.viewport().setMouseTracking(True)
        lv.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.empty_label = QLabel(EMPTY_HINT, self)
        self.empty_label.setObjectName("chatEmptyHint")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAccessibleName(EMPTY_HINT)
        self._stack = QStackedWidget(self)
        self._stack.addWidget(lv)
        self._stack.addWidget(self.empty_label)

        self.banner = Banner(self)
        self.banner.sig_action.connect(self.sig_banner_action)
        self.banner.sig_closed.connect(self.sig_banner_closed)
        banner_row = QWidget(self)
        bl = QVBoxLayout(banner_row)
        bl.setContentsMargins(16, 4, 16, 6)
        bl.addWidget(self.banner)
        self._banner_row = banner_row
        banner_row.hide()

        layout = QVBoxLayout(self)
        # A banner appearing must not change a window's minimum size (a top-level ChatView
        # would otherwise push new size hints to the platform window on every banner).
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._stack, 1)
        layout.addWidget(banner_row, 0)
        self.setFocusProxy(lv)

        self.hover_bar = _HoverBar(lv.viewport())
        self.hover_bar.copy_button.clicked.connect(self._hover_copy)
        self.hover_bar.edit_button.clicked.connect(self._hover_edit)
        self.hover_bar.regenerate_button.clicked.connect(self._hover_regenerate)

        # The one message whose text can be selected (laid over its row on a press).
        self.text_view = MessageText(lv.viewport(), self._scroll_by)
        self.text_view.sig_copied.connect(self._copied)
        self.text_view.sig_leave.connect(self._leave_text)
        self.text_view.sig_anchor.connect(self._text_anchor)
        self.text_view.sig_menu.connect(self._text_menu)
        self._forwarding = False  # a press on a row's text: its drag goes to the text view

        # "Copied": a short note over the conversation after anything is copied.
        self.toast = QLabel(self)
        self.toast.setObjectName("chatToast")
        self.toast.setAccessibleName("Copied")
        self.toast.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.toast.hide()
        self._toast_timer = QTimer(self)
        self._toast_timer.setSingleShot(True)
        self._toast_timer.setInterval(self.TOAST_MS)
        self._toast_timer.timeout.connect(self.toast.hide)

        self.delegate.sig_copied.connect(self._copied)
        self.delegate.sig_version_requested.connect(self._on_version_requested)
        self.delegate.sig_thumbnail_activated.connect(self.sig_image_requested)
        # Attachment thumbnails by sha256 (the bytes come from the database owner, asked
        # for through sig_thumbnail_needed once per image).
        self._thumbs: dict[str, QPixmap] = {}
        self._decoding: thumbnail_decoder.Delivery | None = (
            None  # thumbnail_decoder's delivery, once asked
        )
        self._thumbs_asked: set[str] = set()
        self.delegate.thumbnail = self._thumbnail
        sb = lv.verticalScrollBar()
        sb.valueChanged.connect(self._on_scroll_value)
        sb.rangeChanged.connect(self._on_scroll_range)
        self.model.rowsAboutToBeInserted.connect(self._drop_stale_reserves)
        self.model.rowsAboutToBeRemoved.connect(self._drop_stale_reserves)
        self.model.modelAboutToBeReset.connect(self._drop_stale_reserves)
        self.model.rowsInserted.connect(self._mark_layout_pending)
        self.model.rowsRemoved.connect(self._mark_layout_pending)
        self.model.modelReset.connect(self._mark_layout_pending)
        self.model.rowsInserted.connect(self._update_empty_state)
        self.model.rowsRemoved.connect(self._update_empty_state)
        self.model.modelReset.connect(self._update_empty_state)

        self._ready = True
        self._apply_palette()
        self._update_empty_state()

    # ---- loading -----------------------------------------------------------------------------

    def load(self, messages: Sequence[Any], *, has_more: bool = False) -> None:
        """Show these messages (oldest first) instead of the current ones, at the bottom.

        With ``has_more``, scrolling to the top asks for older ones with ``sig_load_more``.
        """
        self._drop_streams()
        self._hide_hover()
        self._release_text()
        items = [MessageItem.from_row(m) for m in messages]
        self._context = None
        self.delegate.clear_caches()
        self._has_more = False
        self._load_more_pending = False
        self._pinned = True
        self._anchor = None
        self._sync_width()
        self._prefetch_tail(items)
        self.model.set_items(items)
        self._has_more = bool(has_more)
        if self.isVisible():
            QTimer.singleShot(0, self, self._maybe_load_more)

    def prepend(self, messages: Sequence[Any], has_more: bool = False) -> None:
        """Older messages above the current ones; what the user is reading stays put."""
        self._load_more_pending = False
        self._has_more = bool(has_more)
        items = [MessageItem.from_row(m) for m in messages]
        if self._context is not None:
            for item in items:
                if item.id == self._context[0]:
                    item.context_note = self._context[1]
        if items:
            if not self._pinned and self._anchor is None:
                self._anchor = self._capture_anchor()
            self.model.insert_front(items)
        else:
            self._maybe_load_more()

    def append_message(self, msg: Any) -> None:
        """Add a message at the end (or refresh it if its id is already shown)."""
        item = MessageItem.from_row(msg)
        if item.role == "user":
            self._pinned = True  # the user just sent it: show it and the reply to come
        if self._pinned:
            self.trim_to_bottom()
        if self.isVisible():
            exact = self.delegate.exact_height(item)  # laid out once, before the list does
            if item.is_live and self._use_reserve():
                # Its reserve goes into the insertion's layout: no second one at stream_begin.
                self.delegate.set_reserve(item.id, exact + self._reserve_step())
        if not self._pinned and self._anchor is None:
            self._anchor = self._capture_anchor()
        self.model.append_item(item)
        self._refresh_hover()

    def update_message(self, msg: Any) -> None:
        """Refresh a shown message by id (status, chip, content). While it streams, the
        streamed text is kept if ``msg`` has less of it."""
        mid = int(msg.id)
        streaming = mid in self._streaming
        if streaming:
            self._flush_one(mid)
        row = self.model.update_item(msg, keep_content=streaming)
        if row < 0:
            return
        item = self.model.item(row)
        if streaming:
            item.status = STATUS_STREAMING
        self._refit(item)
        self._refresh_hover()
        if mid == self.delegate.text_id:
            self._place_text_view()

    def remove_from(self, message_id: int) -> None:
        """Remove that message and every later one (edit-and-resend, regenerate)."""
        row = self.model.row_of(message_id)
        if row < 0:
            return
        for item in self.model.items[row:]:
            self._streaming.discard(item.id)
            self._pending.pop(item.id, None)
            self.delegate.forget(item.id)
        self._hide_hover()
        if not self._pinned and self._anchor is None:
            self._anchor = self._capture_anchor()
        self.model.remove_from(message_id)

    # ---- where the model's context starts ------------------------------------------------

    def show_context_of(self, reply: Any) -> None:
        """The marker of ``reply`` (an assistant row; None clears it): when older turns did
        not fit the model's context, a note above the oldest message that was sent."""
        meta = getattr(reply, "meta", None) or {}
        first = meta.get("context_from_id")
        if reply is None or not isinstance(first, int):
            self.set_context_start(None, None)
            return
        self.set_context_start(first, context_note(reply))

    def set_context_start(self, message_id: int | None, note: str | None) -> None:
        """Show ``note`` above ``message_id`` (a page not loaded yet gets it when it comes);
        None clears the marker."""
        new = (message_id, note) if message_id is not None and note else None
        old, self._context = self._context, new
        if old is not None and (new is None or old[0] != new[0]):
            self._set_note(old[0], None)
        if new is not None:
            self._set_note(new[0], new[1])

    def context_start(self) -> tuple[int, str] | None:
        """(message id, note) of the marker, or None."""
        return self._context

    def _set_note(self, message_id: int, note: str | None) -> None:
        row = self.model.set_context_note(message_id, note)
        if row >= 0:
            self._refit(self.model.item(row))

    def trim_to_bottom(self) -> int:
        """While the view follows the end: drop the oldest rows beyond ``KEEP_ROWS`` once
        there are more than ``MAX_ROWS_PINNED`` (scrolling up loads them again). Returns
        how many went."""
        count = self.model.rowCount()
        if not self._pinned or count <= self.MAX_ROWS_PINNED:
            return 0
        drop = count - self.KEEP_ROWS
        # A row the user is selecting text in, or one still being written, stays.
        ids = [*self._streaming, self.delegate.text_id]
        held = [self.model.row_of(mid) for mid in ids if mid is not None]
        keep_from = min([drop, *(row for row in held if row >= 0)])
        if keep_from <= 0:
            return 0
        self._hide_hover()
        # (The delegate's caches keep their entries: dropping 5,000 of them costs more than
        # they weigh, and rows loaded again replace them.)
        gone = self.model.remove_front(keep_from)
        self._has_more = True
        self._load_more_pending = False
        return len(gone)

    def before_send(self) -> None:
        """The user sent a message: the view follows the end again, and older pages go now
        (in this event, not in the one that shows the reply)."""
        self._pinned = True
        self.trim_to_bottom()

    def _trim_if_pinned(self) -> None:
        if self._pinned and not self._user_scroll_in_flight():
            self.trim_to_bottom()

    def message_ids(self) -> list[int]:
        return [item.id for item in self.model.items]

    # ---- streaming ---------------------------------------------------------------------------

    def stream_begin(self, message_id: int) -> None:
        """The reply ``message_id`` (already appended) starts streaming."""
        item = self.model.item_by_id(message_id)
        if item is None:
            return
        self._streaming.add(message_id)
        self.model.set_status(message_id, STATUS_STREAMING)
        self._refit(item)
        self._refresh_hover()

    def stream_delta(self, message_id: int, text: str) -> None:
        """More text for a streaming reply. Buffered: the model sees it at the next flush."""
        if not text:
            return
        if message_id not in self._streaming:
            if self.model.row_of(message_id) < 0:
                return
            self.stream_begin(message_id)
        self._pending.setdefault(message_id, []).append(text)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def stream_end(self, message_id: int, final_msg: Any) -> None:
        """The reply is complete (or stopped/failed): show what storage holds for it."""
        self._flush_one(message_id)
        self._streaming.discard(message_id)
        if self.delegate.reserve(message_id):
            self._stale_reserve.add(message_id)
        if final_msg is not None and self.model.row_of(message_id) >= 0:
            # Storage is the truth; an empty stored text (a failed save) keeps what was shown.
            self.model.update_item(final_msg, keep_content=not (final_msg.content or ""))
        else:
            item = self.model.item_by_id(message_id)
            if item is not None and item.is_live:
                self.model.set_status(message_id, "ok")
        item = self.model.item_by_id(message_id)
        if item is not None:
            self._refit(item)
        self._refresh_hover()
        if message_id == self.delegate.text_id:
            self._place_text_view()

    def is_streaming(self, message_id: int | None = None) -> bool:
        return bool(self._streaming) if message_id is None else message_id in self._streaming

    def flush_stream(self) -> None:
        """Move buffered text into the model now (the timer normally does this)."""
        self._flush_timer.stop()
        if not self._pending:
            return
        started = time.perf_counter()
        pending, self._pending = self._pending, {}
        relayout = False
        for mid, parts in pending.items():
            row = self.model.append_text(mid, "".join(parts))
            if row >= 0:
                relayout |= self._fit(self.model.item(row))
        if relayout:
            self._request_relayout()
        elif self._pinned:
            self._scroll_to_bottom()
        if self.hover_bar.isVisible() and self.hover_bar.message_id in pending:
            self._refresh_hover()
        if self.delegate.text_id in pending:
            self._place_text_view()  # its text grew: the selection stays, on the new text
        # A slow flush (a very long reply) spaces the next ones out, keeping input responsive.
        elapsed_ms = (time.perf_counter() - started) * 1000
        interval = min(self.MAX_FLUSH_INTERVAL_MS, max(self.FLUSH_INTERVAL_MS, int(elapsed_ms * 3)))
        self._flush_timer.setInterval(interval)

    def _flush_one(self, message_id: int) -> None:
        if message_id in self._pending:
            self.flush_stream()

    def _drop_streams(self) -> None:
        self._drop_stale_reserves()
        self._flush_timer.stop()
        self._pending.clear()
        self._streaming.clear()

    def set_model_chosen(self, chosen: bool) -> None:
        """The empty chat's hint: pick a model (none chosen yet), or just type."""
        hint = EMPTY_HINT_READY if chosen else EMPTY_HINT
        self.empty_label.setText(hint)
        self.empty_label.setAccessibleName(hint)

    def set_route_names(self, names: dict[str, str]) -> None:
        """What each route is called in the chips (its host's name in the settings)."""
        if names != self.model.route_names:
            self.model.route_names = dict(names)
            self.delegate.forget_renderings()
            self.list_view.viewport().update()
            self._place_text_view()

    # ---- banner ------------------------------------------------------------------------------

    def show_banner(
        self,
        kind: str,
        text: str,
        action_label: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """An inline banner under the conversation: ``kind`` is error, warning or info."""
        self.banner.show_message(kind, text, action_label, action_id)
        self._banner_row.show()

    def clear_banner(self) -> None:
        self.banner.clear()
        self._banner_row.hide()

    # ---- actions -----------------------------------------------------------------------------

    def copy_message(self, message_id: int) -> None:
        """Put the whole message (its Markdown source) on the clipboard."""
        item = self.model.item_by_id(message_id)
        if item is None:
            return
        QGuiApplication.clipboard().setText(item.content)
        self._copied(item.content)

    def can_edit(self, message_id: int) -> bool:
        item = self.model.item_by_id(message_id)
        return item is not None and item.role == "user" and not self._streaming

    def can_regenerate(self, message_id: int) -> bool:
        return (
            not self._streaming
            and self.model.last_assistant_id() == message_id
            and not self.model.item_by_id(message_id).is_live  # type: ignore[union-attr]
        )

    def context_menu_for(self, message_id: int, href: str | None = None) -> QMenu | None:
        """The actions for a message (built, not shown). ``href`` is the link under the
        mouse, which adds "Copy code block" for a code block's copy link; a selection in
        the message adds "Copy" (the selection) before "Copy message"."""
        item = self.model.item_by_id(message_id)
        if item is None:
            return None
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if href and href.startswith(COPY_SCHEME):
            code = QAction("Copy code block", menu)
            code.triggered.connect(lambda: self.delegate.activate_anchor(item, href))
            menu.addAction(code)
        if self.text_view.message_id == message_id and self.text_view.has_selection():
            selection = QAction("Copy", menu)
            selection.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))
            selection.triggered.connect(self.text_view.copy_selection)
            menu.addAction(selection)
        copy = QAction("Copy message", menu)
        copy.triggered.connect(lambda: self.copy_message(message_id))
        menu.addAction(copy)
        if item.content:
            select = QAction("Select all", menu)
            select.setShortcut(QKeySequence(QKeySequence.StandardKey.SelectAll))
            select.triggered.connect(lambda: self.select_all_text(message_id))
            menu.addAction(select)
        if self.can_edit(message_id):
            edit = QAction("Edit and resend", menu)
            edit.triggered.connect(lambda: self.sig_edit_requested.emit(message_id))
            menu.addAction(edit)
        if item.role == "assistant" and self.can_regenerate(message_id):
            regen = QAction("Regenerate", menu)
            regen.triggered.connect(lambda: self.sig_regenerate_requested.emit(message_id))
            menu.addAction(regen)
        shown = versions.info(item.meta) if item.role == "assistant" else None
        if shown is not None and not self._streaming:
            index, count = shown
            for label, target in (("Previous version", index - 1), ("Next version", index + 1)):
                act = QAction(f"{label} ({index + 1}/{count})", menu)
                act.setEnabled(0 <= target < count)
                act.triggered.connect(
                    lambda _=False, t=target: self.sig_version_requested.emit(message_id, t)
                )
                menu.addAction(act)
        return menu

    def _on_version_requested(self, message_id: int, index: int) -> None:
        if not self._streaming:
            self.sig_version_requested.emit(message_id, index)

    def _thumbnail(self, sha256: str) -> QPixmap | None:
        found = self._thumbs.get(sha256)
        if found is None and sha256 not in self._thumbs_asked:
            self._thumbs_asked.add(sha256)
            # Asked after this paint: a slot may answer at once (a test fake).
            QTimer.singleShot(0, self, lambda: self.sig_thumbnail_needed.emit(sha256))
        return found

    def set_thumbnail(self, sha256: str, data: bytes | None) -> None:
        """The bytes of an image attachment (None: it is not there; its name stays). They
        are decoded on a worker thread; the thumbnail shows when ready."""
        if not data:
            return
        if self._decoding is None:
            self._decoding = thumbnail_decoder.delivery()
            self._decoding.sig_decoded.connect(self._on_thumbnail_decoded)
        side = round(THUMB_PX * self.devicePixelRatioF()) - 4
        thumbnail_decoder.request(id(self), sha256, data, side)

    def _on_thumbnail_decoded(self, token: object, sha256: str, image: QImage) -> None:
        if token != id(self) or image.isNull():
            return
        pix = QPixmap.fromImage(image)
        pix.setDevicePixelRatio(self.devicePixelRatioF())
        self._thumbs[sha256] = pix
        self.list_view.viewport().update()

    def has_thumbnail(self, sha256: str) -> bool:
        return sha256 in self._thumbs

    def anchor_rect(self, message_id: int, href: str) -> QRect | None:
        """Where link ``href`` (``copy:0``...) of a message is drawn, in viewport coordinates."""
        index = self.model.index_of(message_id)
        if not index.isValid():
            return None
        item = self.model.item(index.row())
        return self.delegate.anchor_rect(item, self.list_view.visualRect(index), href)

    def _on_context_menu(self, pos: QPoint) -> None:
        """The mouse's menu at ``pos`` (viewport coordinates)."""
        index = self.list_view.indexAt(pos)
        if not index.isValid():
            index = self.list_view.currentIndex()
        if not index.isValid():
            return
        item = self.model.item(index.row())
        href = self.delegate.anchor_at(item, self.list_view.visualRect(index), pos)
        if self.text_view.message_id != item.id:
            self._release_text()  # a menu for another message: its selection is over
        self._popup(self.context_menu_for(item.id, href), pos)

    def _keyboard_context_menu(self) -> None:
        """Menu key / Shift+F10 on the list: the current message's menu, at the start of
        its text where it is on screen (a tall message's middle may be far off-window)."""
        index = self.list_view.currentIndex()
        if not index.isValid():
            return
        self.list_view.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        viewport = self.list_view.viewport()
        rect = self.list_view.visualRect(index)
        visible = rect.intersected(viewport.rect())
        if visible.isEmpty():
            return
        item = self.model.item(index.row())
        rl = self.delegate.layout_for(item)
        x = rect.left() + int(rl.text_x)
        y = max(visible.top(), rect.top() + int(rl.header.top())) + self.fontMetrics().height()
        self._popup(self.context_menu_for(item.id), QPoint(x, min(y, visible.bottom())))

    def _popup(self, menu: QMenu | None, pos: QPoint) -> None:
        """Show ``menu`` at ``pos`` (list viewport coordinates), inside the window."""
        if menu is None:
            return
        self.menu = menu
        menu.destroyed.connect(self._forget_menu)
        viewport = self.list_view.viewport()
        inside = QPoint(
            max(0, min(pos.x(), viewport.width() - 1)), max(0, min(pos.y(), viewport.height() - 1))
        )
        target = viewport.mapToGlobal(inside)
        window = self.window()
        area = QRect(window.mapToGlobal(QPoint(0, 0)), window.size())
        size = menu.sizeHint()
        # Open upwards/leftwards rather than past the window's edge, when it fits.
        if target.y() + size.height() > area.bottom() and target.y() - size.height() >= area.top():
            target.setY(target.y() - size.height())
        if target.x() + size.width() > area.right():
            target.setX(max(area.left(), area.right() - size.width()))
        menu.popup(target)

    def _forget_menu(self, *_args: object) -> None:
        self.menu = None

    def _hover_copy(self) -> None:
        if self.hover_bar.message_id is not None:
            self.copy_message(self.hover_bar.message_id)

    def _hover_edit(self) -> None:
        mid = self.hover_bar.message_id
        if mid is not None and self.can_edit(mid):
            self.sig_edit_requested.emit(mid)

    def _hover_regenerate(self) -> None:
        mid = self.hover_bar.message_id
        if mid is not None and self.can_regenerate(mid):
            self.sig_regenerate_requested.emit(mid)

    # ---- selectable text ---------------------------------------------------------------------

    def select_text(self, message_id: int, *, focus: bool = True) -> MessageText | None:
        """Lay the text view over message ``message_id``'s text so it can be selected (the
        mouse, Shift+arrows, Ctrl+A); None when the message has no text shown."""
        index = self.model.index_of(message_id)
        if not index.isValid():
            return None
        item = self.model.item(index.row())
        rl = self.delegate.layout_for(item)
        if rl.doc is None or rl.body.isNull():
            return None
        if self.text_view.message_id not in (None, message_id):
            self._release_text()
        self.text_view.whole_text = lambda: self._content_of(message_id)
        self.delegate.text_id = message_id
        self._place_text_view()
        # The message under the pointer becomes the current one, without the item view's
        # scroll-to-current: a press on a message's text must not move it.
        self.list_view.setAutoScroll(False)
        try:
            self.list_view.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.NoUpdate
            )
        finally:
            self.list_view.setAutoScroll(True)
        if focus:
            self.text_view.setFocus(Qt.FocusReason.OtherFocusReason)
        return self.text_view

    def select_all_text(self, message_id: int) -> None:
        """Select the whole text of a message (Ctrl+A on it, or the menu's Select all)."""
        view = self.select_text(message_id)
        if view is not None:
            view.selectAll()

    def selected_text(self) -> str:
        """What is selected in the conversation (plain text), "" when nothing is."""
        return self.text_view.selected_text() if self.text_view.message_id is not None else ""

    def _content_of(self, message_id: int) -> str:
        item = self.model.item_by_id(message_id)
        return item.content if item is not None else ""

    def _place_text_view(self) -> None:
        """Keep the text view over its row's text (after a scroll, a relayout, new text)."""
        mid = self.delegate.text_id
        if mid is None:
            return
        index = self.model.index_of(mid)
        if not index.isValid():
            self._release_text()
            return
        rl = self.delegate.layout_for(self.model.item(index.row()))
        if rl.doc is None or rl.body.isNull():
            self._release_text()
            return
        self.text_view.show_document(mid, rl.doc, int(rl.body.width()))
        top_left = self.list_view.visualRect(index).topLeft()
        body = rl.body.translated(QPointF(top_left)).toAlignedRect()
        # +2: the delegate's clip lets italics and the last glyph overhang the column.
        geometry = QRect(body.x(), body.y(), body.width() + 2, body.height())
        if self.text_view.geometry() != geometry:
            self.text_view.setGeometry(geometry)
        if not self.text_view.isVisible():
            self.text_view.show()

    def _release_text(self) -> None:
        mid = self.text_view.message_id
        if mid is None and self.delegate.text_id is None:
            return
        self._forwarding = False
        had_focus = self.text_view.hasFocus()
        self.text_view.release()
        self.delegate.text_id = None
        if had_focus:
            self.list_view.setFocus(Qt.FocusReason.OtherFocusReason)
        index = self.model.index_of(mid) if mid is not None else QModelIndex()
        if index.isValid():
            self.list_view.viewport().update(self.list_view.visualRect(index))

    def _scroll_by(self, pixels: int) -> None:
        sb = self.list_view.verticalScrollBar()
        sb.setValue(sb.value() + pixels)

    def _press_text(self, event: QMouseEvent) -> bool:
        """A left press (or double-click) on the list: on a message's text it goes to the
        text view, which takes the drag from there. True when it was taken."""
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        pos = event.position().toPoint()
        index = self.list_view.indexAt(pos)
        if not index.isValid():
            self._release_text()
            return False
        item = self.model.item(index.row())
        rect = self.list_view.visualRect(index)
        if self.delegate.anchor_at(item, rect, pos):
            return False  # a link: the delegate opens it (or copies the code block)
        rl = self.delegate.layout_for(item)
        local = QPointF(pos - rect.topLeft())
        if rl.doc is None or not rl.body.adjusted(0, 0, 2, 0).contains(local):
            self._release_text()  # a click beside the text ends a selection, as anywhere
            return False
        if self.select_text(item.id) is None:
            return False
        self._forwarding = True
        self._forward_mouse(event)
        return True

    def _drag_text(self, event: QMouseEvent) -> bool:
        """Moves and the release after a press that went to the text view follow it."""
        if not self._forwarding:
            return False
        if event.type() == QEvent.Type.MouseButtonRelease:
            self._forwarding = False
        if self.text_view.isVisible():
            self._forward_mouse(event)
        return True

    def _forward_mouse(self, event: QMouseEvent) -> None:
        target = self.text_view.viewport()
        local = target.mapFrom(self.list_view.viewport(), event.position().toPoint())
        forwarded = QMouseEvent(
            event.type(),
            QPointF(local),
            event.globalPosition(),
            event.button(),
            event.buttons(),
            event.modifiers(),
        )
        QApplication.sendEvent(target, forwarded)

    def _key_for_text(self, event: QKeyEvent) -> bool:
        """Keys on the list that select text in the current message: Shift+arrows
        (Home/End) start a selection at its start or end, Ctrl+A selects all of it, Ctrl+C
        copies what is selected in it."""
        index = self.list_view.currentIndex()
        if not index.isValid():
            return False
        mid = int(index.data(ChatModel.IdRole))
        if event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_all_text(mid)
            return self.text_view.message_id == mid
        if event.matches(QKeySequence.StandardKey.Copy):
            if self.text_view.message_id == mid and self.text_view.has_selection():
                self.text_view.copy_selection()
                return True
            return False
        mods = event.modifiers()
        keys = (
            Qt.Key.Key_Left,
            Qt.Key.Key_Right,
            Qt.Key.Key_Up,
            Qt.Key.Key_Down,
            Qt.Key.Key_Home,
            Qt.Key.Key_End,
        )
        if event.key() not in keys or not mods & Qt.KeyboardModifier.ShiftModifier:
            return False
        had = self.text_view.message_id == mid
        view = self.select_text(mid)
        if view is None:
            return False
        if not had or not view.has_selection():
            cursor = view.textCursor()
            forward = event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_End)
            cursor.movePosition(
                QTextCursor.MoveOperation.Start if forward else QTextCursor.MoveOperation.End
            )
            view.setTextCursor(cursor)
        copy = QKeyEvent(event.type(), event.key(), mods, event.text())
        QApplication.sendEvent(view, copy)
        return True

    def _leave_text(self, direction: int) -> None:
        """The keyboard left the message's text: back to the list, on this message or the
        one above (-1) or below (+1)."""
        mid = self.text_view.message_id
        self._release_text()
        self.list_view.setFocus(Qt.FocusReason.OtherFocusReason)
        index = self.model.index_of(mid) if mid is not None else QModelIndex()
        if not index.isValid():
            return
        row = max(0, min(self.model.rowCount() - 1, index.row() + direction))
        target = self.model.index(row, 0)
        self.list_view.setCurrentIndex(target)
        self.list_view.scrollTo(target)

    def _text_anchor(self, href: str) -> None:
        item = (
            self.model.item_by_id(self.text_view.message_id)
            if self.text_view.message_id is not None
            else None
        )
        if item is not None:
            self.delegate.activate_anchor(item, href)

    def _text_menu(self, pos: QPoint) -> None:
        mid = self.text_view.message_id
        if mid is None:
            return
        href = self.text_view.anchorAt(pos) or None
        self._popup(
            self.context_menu_for(mid, href),
            self.text_view.mapTo(self.list_view.viewport(), pos),
        )

    # ---- copied ------------------------------------------------------------------------------

    def _copied(self, text: str) -> None:
        """Anything went to the clipboard: say so for a moment, and tell the window."""
        lines = text.count("\n") + 1 if text else 0
        what = f"{lines} lines" if lines > 1 else f"{len(text)} characters"
        self.toast.setText(f"Copied {what}")
        self.toast.adjustSize()
        self.toast.resize(self.toast.width() + 24, self.toast.height() + 10)
        self._place_toast()
        self.toast.show()
        self.toast.raise_()
        self._toast_timer.start()
        self.sig_copied.emit(text)

    def _place_toast(self) -> None:
        area = self._stack.geometry()
        self.toast.move(
            area.x() + (area.width() - self.toast.width()) // 2,
            area.bottom() - self.toast.height() - 12,
        )

    # ---- hover -------------------------------------------------------------------------------

    def _on_hover(self, pos: QPoint) -> None:
        index = self.list_view.indexAt(pos)
        viewport = self.list_view.viewport()
        if not index.isValid():
            viewport.unsetCursor()
            self._hide_hover()
            return
        item = self.model.item(index.row())
        rect = self.list_view.visualRect(index)
        if self.delegate.anchor_at(item, rect, pos):
            viewport.setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            viewport.unsetCursor()
        if self.hover_bar.message_id != item.id or not self.hover_bar.isVisible():
            self._show_hover(index)

    def _on_leave(self) -> None:
        bar = self.hover_bar
        if bar.isVisible() and bar.underMouse():
            return
        self.list_view.viewport().unsetCursor()
        self._hide_hover()

    def _show_hover(self, index: QModelIndex) -> None:
        item = self.model.item(index.row())
        bar = self.hover_bar
        bar.message_id = item.id
        bar.copy_button.setVisible(bool(item.content))
        bar.edit_button.setVisible(self.can_edit(item.id))
        bar.regenerate_button.setVisible(item.role == "assistant" and self.can_regenerate(item.id))
        if not any(
            b.isVisibleTo(bar) for b in (bar.copy_button, bar.edit_button, bar.regenerate_button)
        ):
            bar.hide()
            return
        bar.adjustSize()
        rect = self.list_view.visualRect(index)
        footer = self.delegate.layout_for(item).footer
        x = rect.x() + int(footer.x()) - 6
        y = rect.y() + int(footer.y() + (footer.height() - bar.height()) / 2)
        bar.move(x, y)
        bar.show()
        bar.raise_()

    def _refresh_hover(self) -> None:
        mid = self.hover_bar.message_id
        if mid is None or not self.hover_bar.isVisible():
            return
        index = self.model.index_of(mid)
        if index.isValid():
            self._show_hover(index)
        else:
            self._hide_hover()

    def _hide_hover(self) -> None:
        self.hover_bar.hide()
        self.hover_bar.message_id = None

    # ---- scrolling and layout ----------------------------------------------------------------

    def is_at_bottom(self) -> bool:
        """True while the view follows the end of the conversation."""
        return self._pinned

    def scroll_to_bottom(self) -> None:
        self._pinned = True
        self._scroll_to_bottom()

    def _bottom_value(self) -> int:
        sb = self.list_view.verticalScrollBar()
        bottom = sb.maximum()
        count = self.model.rowCount()
        if count:
            last = self.model.item(count - 1)
            reserve = self.delegate.reserve(last.id)
            if reserve:
                bottom -= max(0, reserve - self.delegate.exact_height(last))
        return max(sb.minimum(), bottom)

    def _set_scroll(self, value: int) -> None:
        sb = self.list_view.verticalScrollBar()
        if sb.value() != value:
            self._programmatic += 1
            try:
                sb.setValue(value)
            finally:
                self._programmatic -= 1
        self._last_value = sb.value()

    def _scroll_to_bottom(self) -> None:
        self._set_scroll(self._bottom_value())

    def _user_scroll_in_flight(self) -> bool:
        return self.list_view.verticalScrollBar().value() != self._last_value

    def _on_scroll_value(self, value: int) -> None:
        if not self._ready:
            return
        if self._programmatic:
            return
        self._last_value = value
        bottom = self._bottom_value()
        if value > bottom:
            self._set_scroll(bottom)  # no scrolling into a streaming row's unused reserve
            value = bottom
        self._pinned = value >= bottom - self.PIN_SLOP_PX
        if self._pinned and self.model.rowCount() > self.MAX_ROWS_PINNED:
            QTimer.singleShot(0, self, self._trim_if_pinned)  # after this scroll is handled
        self._refine_visible()
        self._place_text_view()
        self._maybe_load_more()

    def _on_scroll_range(self, _minimum: int, _maximum: int) -> None:
        if not self._ready:
            return
        if self._pinned and not self._user_scroll_in_flight():
            self._scroll_to_bottom()

    def _capture_anchor(self) -> tuple[int, int] | None:
        """The first row on screen and its offset, to keep it still across a relayout."""
        lv = self.list_view
        index = lv.indexAt(QPoint(1, 0))
        if not index.isValid():
            return None
        return self.model.item(index.row()).id, lv.visualRect(index).top()

    def _restore_anchor(self, anchor: tuple[int, int]) -> None:
        index = self.model.index_of(anchor[0])
        if not index.isValid():
            return
        delta = self.list_view.visualRect(index).top() - anchor[1]
        if delta:
            sb = self.list_view.verticalScrollBar()
            self._set_scroll(sb.value() + delta)

    def _mark_layout_pending(self, *_args: object) -> None:
        self._layout_pending = True

    def _after_layout(self) -> None:
        self._layout_pending = False
        if not self._ready:
            return
        anchor, self._anchor = self._anchor, None
        if self._user_scroll_in_flight():
            pass  # the user's scroll wins; its valueChanged handler runs next
        elif self._pinned:
            self._scroll_to_bottom()
        elif anchor is not None:
            self._restore_anchor(anchor)
        self._refresh_hover()
        self._refine_visible()
        self._place_text_view()
        self._maybe_load_more()

    def _request_relayout(self) -> None:
        self._drop_stale_reserves()
        if not self._pinned and self._anchor is None:
            self._anchor = self._capture_anchor()
        self.list_view.scheduleDelayedItemsLayout()

    def _on_height_mismatch(self, _message_id: int) -> None:
        # Called while painting: relayout once the paint is over.
        if not self._relayout_queued:
            self._relayout_queued = True
            QTimer.singleShot(0, self, self._queued_relayout)

    def _queued_relayout(self) -> None:
        self._relayout_queued = False
        self._request_relayout()

    def _refine_visible(self) -> None:
        """Lay out for real the rows on screen and a screen above and below; one relayout
        if any estimate was off."""
        lv = self.list_view
        count = self.model.rowCount()
        if self._in_refine or not count or not lv.isVisible():
            return
        self._in_refine = True
        try:
            height = max(1, lv.viewport().height())
            top = lv.indexAt(QPoint(1, 0))
            first = top.row() if top.isValid() else 0
            # <= 0: the part of the first row above the viewport.
            offset = lv.visualRect(top).top() if top.isValid() else 0
            items = self.model.items
            delegate = self.delegate
            changed = False
            # The screen above what is shown...
            budget = height
            row = first - 1
            while row >= 0 and budget > 0:
                changed |= delegate.ensure_exact(items[row])
                budget -= delegate.row_height(items[row])
                row -= 1
            # ...what is shown, and the screen below it.
            bottom = offset
            row = first
            while row < count and bottom < 2 * height:
                changed |= delegate.ensure_exact(items[row])
                bottom += delegate.row_height(items[row])
                row += 1
        finally:
            self._in_refine = False
        if changed:
            self._request_relayout()

    def _prefetch_tail(self, items: Sequence[MessageItem]) -> None:
        """Exact heights for the newest rows, which a freshly loaded view shows first.
        (The list may still be hidden behind the empty-state hint; its size is valid.)"""
        if not self.isVisible():
            return
        budget = self.list_view.viewport().height() * 2
        for item in reversed(items):
            budget -= self.delegate.exact_height(item)
            if budget <= 0:
                break

    def _fit(self, item: MessageItem) -> bool:
        """After ``item`` changed: its exact height, streaming reserve included. True when
        the list must relayout."""
        index = self.model.index_of(item.id)
        if not index.isValid():
            return False
        if not self.isVisible():
            return True
        exact = self.delegate.exact_height(item)
        reserve = self.delegate.reserve(item.id)
        if item.id in self._streaming and self._use_reserve():
            if exact > reserve:
                self.delegate.set_reserve(item.id, exact + self._reserve_step())
        elif item.id in self._stale_reserve and reserve >= exact:
            pass  # released by the next relayout (see _drop_stale_reserves)
        elif reserve:
            self._stale_reserve.discard(item.id)
            self.delegate.set_reserve(item.id, None)
        if self._layout_pending:
            return True  # the layout on its way takes the new height (no second one)
        return self.delegate.row_height(item) != self.list_view.laid_out_height(index.row())

    def _use_reserve(self) -> bool:
        return self.model.rowCount() >= self.RESERVE_MIN_ROWS

    def _reserve_step(self) -> int:
        # About a screen of text between relayouts while a reply streams.
        return max(self.list_view.viewport().height(), 10 * self.fontMetrics().height())

    def _drop_stale_reserves(self, *_args: object) -> None:
        for mid in self._stale_reserve:
            self.delegate.set_reserve(mid, None)
        self._stale_reserve.clear()

    def _refit(self, item: MessageItem) -> None:
        if self._fit(item):
            self._request_relayout()
        elif self._pinned:
            self._scroll_to_bottom()

    def _maybe_load_more(self) -> None:
        if not self._has_more or self._load_more_pending:
            return
        oldest = self.model.oldest_id
        lv = self.list_view
        if oldest is None or not lv.isVisible():
            return
        sb = lv.verticalScrollBar()
        margin = max(0, lv.viewport().height() // 4)
        if sb.maximum() == 0 or sb.value() <= sb.minimum() + margin:
            self._load_more_pending = True
            self.sig_load_more.emit(oldest)

    # ---- size, palette, font -----------------------------------------------------------------

    def _sync_width(self) -> bool:
        return self.delegate.set_width(self.list_view.layout_width())

    def _before_resize(self) -> None:
        if not self._ready:
            return
        if not self._pinned and self._anchor is None and self.model.rowCount():
            self._anchor = self._capture_anchor()

    def _after_resize(self) -> None:
        if not self._ready:
            return
        if self._sync_width():
            self.list_view.scheduleDelayedItemsLayout()
        else:
            anchor, self._anchor = self._anchor, None
            if self._pinned:
                self._scroll_to_bottom()
            elif anchor is not None:
                self._restore_anchor(anchor)
            self._refine_visible()
        self._refresh_hover()
        self._place_text_view()
        if self.toast.isVisible():
            self._place_toast()

    def _update_empty_state(self, *_args: object) -> None:
        empty = self.model.rowCount() == 0
        self._stack.setCurrentWidget(self.empty_label if empty else self.list_view)
        if empty:
            self._hide_hover()
            self._release_text()

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.delegate.set_dark(theme.is_dark(pal))
        muted = theme.css(theme.muted_text(pal))
        self.empty_label.setStyleSheet(f"QLabel#chatEmptyHint {{ color: {muted}; }}")
        # The "Copied" note: a small dark (light, on a dark theme) pill over the messages.
        text = pal.color(QPalette.ColorRole.Text)
        base = pal.color(QPalette.ColorRole.Base)
        self.toast.setStyleSheet(
            f"QLabel#chatToast {{ background: {theme.css(theme.mix(text, base, 0.12))}; "
            f"color: {theme.css(base)}; border-radius: 8px; padding: 4px 10px; }}"
        )
        # The empty state sits on the same surface as the messages.
        self._stack.setAutoFillBackground(True)
        stack_pal = self._stack.palette()
        stack_pal.setColor(QPalette.ColorRole.Window, pal.color(QPalette.ColorRole.Base))
        self._stack.setPalette(stack_pal)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        etype = event.type()
        if etype == QEvent.Type.PaletteChange:
            self._apply_palette()
            self.list_view.viewport().update()
            self._place_text_view()  # the row was rendered again in the new colours
        elif etype == QEvent.Type.FontChange:
            self.delegate.set_font(self.font())
            self.list_view.scheduleDelayedItemsLayout()

    def minimumSizeHint(self) -> QSize:
        # Constant, so showing or hiding the banner never changes the window's minimum.
        return QSize(240, 160)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._sync_width():
            self.list_view.scheduleDelayedItemsLayout()
        QTimer.singleShot(0, self, self._refine_visible)
