"""Selectable text for the chat list: one read-only text view laid over one message.

The list paints every message itself (chat_delegate.py), which keeps a 10,000-message
history fast but leaves nothing to select. When the user presses on a message's text (or
reaches it with Shift+arrows, Ctrl+A), ChatView lays this view over that row's body,
holding the very QTextDocument the delegate rendered for it, so Qt's own text interaction
applies: drag, double-click a word, triple-click a paragraph (a line in a code block),
Shift+arrows, Ctrl+A, Ctrl+C, links and the code blocks' Copy links. Every other row stays
painted; whatever renders a row's document, the selection works on it.

What goes on the clipboard is the text as read, not the rendering's furniture: a code
block's header row (its language label and Copy link) is left out, table cells are
separated by tabs, a quote's bar is left out, and non-breaking spaces become spaces.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
    QTextFrame,
    QTextLength,
    QTextTable,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QFrame, QTextBrowser, QWidget

from halext_desktop.ui.markdown import COPY_SCHEME

# Characters the rich-text layout uses that mean something else in plain text.
_PLAIN = str.maketrans({"\u2028": "\n", "\u2029": "\n", "\xa0": " ", "\ufffc": None})
# The widest fixed column taken for a quote's bar (markdown.py draws it 3 px wide).
QUOTE_BAR_MAX_PX = 6
# Auto-scroll while a drag goes past the top or bottom of the list (ms between steps).
AUTOSCROLL_MS = 30


def plain_text(doc: QTextDocument) -> str:
    """The text of ``doc`` as a person reads it: code blocks without their header row
    (label and Copy link), table cells separated by tabs, one line per paragraph."""
    lines = _frame_lines(doc.rootFrame())
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def fragment_text(fragment: QTextDocumentFragment) -> str:
    """``plain_text`` of a selection (a fragment of a rendered message)."""
    doc = QTextDocument()
    QTextCursor(doc).insertFragment(fragment)
    return plain_text(doc)


def _frame_lines(frame: QTextFrame) -> list[str]:
    lines: list[str] = []
    it = frame.begin()
    while not it.atEnd():
        child = it.currentFrame()
        if child is None:
            text = it.currentBlock().text().translate(_PLAIN)
            ahead = QTextFrame.iterator(it)
            ahead += 1
            # Rich text that starts with a table (a quote, a code block) gets an empty
            # paragraph before it: layout, not a line anyone wrote.
            if text or lines or ahead.atEnd() or ahead.currentFrame() is None:
                lines.append(text)
        elif isinstance(child, QTextTable):
            lines.extend(_table_lines(child))
        else:
            lines.extend(_frame_lines(child))
        it += 1
    return lines


def _has_copy_link(table: QTextTable, row: int) -> bool:
    doc = table.document()
    for col in range(table.columns()):
        cell = table.cellAt(row, col)
        block = doc.findBlock(cell.firstPosition())
        while block.isValid() and block.position() <= cell.lastPosition():
            it = block.begin()
            while not it.atEnd():
                if it.fragment().charFormat().anchorHref().startswith(COPY_SCHEME):
                    return True
                it += 1
            block = block.next()
    return False


def _is_quote_bar(table: QTextTable, col: int) -> bool:
    """A quote's coloured bar: the one column of fixed width a few pixels wide (markdown.py
    draws a quote as [bar | text]); data tables never fix a column's width."""
    widths = table.format().columnWidthConstraints()
    return (
        col < len(widths)
        and widths[col].type() == QTextLength.Type.FixedLength
        and widths[col].rawValue() <= QUOTE_BAR_MAX_PX
    )


def _table_lines(table: QTextTable) -> list[str]:
    doc = table.document()
    lines: list[str] = []
    for row in range(table.rows()):
        if _has_copy_link(table, row):
            continue  # a code block's header: its language label and Copy link
        cells: list[str] = []
        col = 0
        while col < table.columns():
            cell = table.cellAt(row, col)
            if _is_quote_bar(table, col):
                pass  # decoration: copying a quote gives its text, not a tab before it
            elif cell.row() == row:  # not the lower part of a cell spanning rows
                cursor = QTextCursor(doc)
                cursor.setPosition(cell.firstPosition())
                cursor.setPosition(cell.lastPosition(), QTextCursor.MoveMode.KeepAnchor)
                cells.append(cursor.selection().toPlainText().translate(_PLAIN))
            col += max(1, cell.columnSpan())
        lines.extend("\t".join(cells).split("\n"))
    return lines


class MessageText(QTextBrowser):
    """The read-only view ChatView lays over the message whose text is being selected.

    It shows a document it is given (the delegate's, never a copy), is exactly as wide as
    the row's text column and as tall as its text, and never scrolls itself: the wheel
    scrolls the conversation. The keyboard leaves it the way it came in: Esc, or Up on
    the first line and Down on the last one.

    Signals:
        sig_copied(str): text was put on the clipboard (a selection, or the whole message
            when nothing is selected); carries it.
        sig_leave(int): the keyboard left the message: -1 above (Up), +1 below (Down), 0
            back to the list (Esc).
        sig_anchor(str): a link was clicked (a web link or a code block's ``copy:N``).
        sig_menu(QPoint): the context menu was asked for, at this point of the view.
    """

    sig_copied = Signal(str)
    sig_leave = Signal(int)
    sig_anchor = Signal(str)
    sig_menu = Signal(QPoint)

    def __init__(self, viewport: QWidget, scroll: Callable[[int], None]) -> None:
        super().__init__(viewport)
        self.setObjectName("chatMessageText")
        self.setAccessibleName("Message text")
        self._scroll = scroll
        self._empty = QTextDocument(self)
        self.message_id: int | None = None
        self.whole_text: Callable[[], str] | None = None  # the message's source (no selection)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QTextBrowser.LineWrapMode.FixedPixelWidth)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.setContentsMargins(0, 0, 0, 0)
        self.setViewportMargins(0, 0, 0, 0)
        # Transparent: the row (a user's bubble, the focus ring) is painted by the list.
        self.setAutoFillBackground(False)
        self.viewport().setAutoFillBackground(False)
        self._clear_base()
        self.anchorClicked.connect(lambda url: self.sig_anchor.emit(url.toString()))
        self._pressed = False  # the left button went down on this view and is still down
        self._drag_x = 0.0  # where a drag is: x in this view, y in the list's viewport
        self._drag_y: float | None = None
        self._autoscroll = QTimer(self)
        self._autoscroll.setInterval(AUTOSCROLL_MS)
        self._autoscroll.timeout.connect(self._autoscroll_step)
        self.hide()

    # ---- the document ----------------------------------------------------------------------

    def show_document(self, message_id: int, doc: QTextDocument, width: int) -> None:
        """Show ``doc`` (the row's rendering) at ``width``; the selection is kept when it is
        the same message (a streamed reply gets a new document with more text)."""
        same = message_id == self.message_id
        cursor = self.textCursor()
        anchor, position = cursor.anchor(), cursor.position()
        if doc is not self.document():
            # The editor adopts the document's own wrap mode, so it lays out as painted.
            self.setWordWrapMode(doc.defaultTextOption().wrapMode())
            self.setLineWrapColumnOrWidth(width)
            self.setDocument(doc)
            if same:
                end = max(0, doc.characterCount() - 1)
                restored = QTextCursor(doc)
                restored.setPosition(min(anchor, end))
                restored.setPosition(min(position, end), QTextCursor.MoveMode.KeepAnchor)
                self.setTextCursor(restored)
        elif self.lineWrapColumnOrWidth() != width:
            self.setLineWrapColumnOrWidth(width)
        self.message_id = message_id

    def release(self) -> None:
        """Let go of the message (its document goes back to being only painted)."""
        self._stop_drag()
        self.message_id = None
        self.whole_text = None
        self.setDocument(self._empty)
        self.hide()

    def has_selection(self) -> bool:
        return self.textCursor().hasSelection()

    def selected_text(self) -> str:
        """The selection as plain text (see ``fragment_text``); "" when nothing is selected."""
        cursor = self.textCursor()
        return fragment_text(cursor.selection()) if cursor.hasSelection() else ""

    def copy_selection(self) -> str:
        """Ctrl+C: the selection, or the whole message when nothing is selected."""
        text = self.selected_text()
        if not text and self.whole_text is not None:
            text = self.whole_text()
        if text:
            QGuiApplication.clipboard().setText(text)
            self.sig_copied.emit(text)
        return text

    def createMimeDataFromSelection(self) -> QMimeData:  # noqa: N802 (Qt override)
        # Drag and drop and the X11 selection take the same text as Ctrl+C.
        data = QMimeData()
        data.setText(self.selected_text())
        return data

    # ---- input -------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
            return
        key, mods = event.key(), event.modifiers()
        plain = not mods & (
            Qt.KeyboardModifier.ShiftModifier
            | Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
        )
        if key == Qt.Key.Key_Escape and self.has_selection():
            cursor = self.textCursor()
            cursor.clearSelection()
            self.setTextCursor(cursor)
            self.sig_leave.emit(0)
            return
        if key == Qt.Key.Key_Escape:
            self.sig_leave.emit(0)
            return
        if plain and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            before = self.textCursor().position()
            super().keyPressEvent(event)
            if self.textCursor().position() == before:
                # Already on the first (last) line: on to the message above (below).
                self.sig_leave.emit(-1 if key == Qt.Key.Key_Up else 1)
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        # The conversation scrolls, not the message (which never has more than it shows).
        parent = self.parentWidget()
        if parent is None:
            event.ignore()
            return
        local = QPointF(self.mapToParent(event.position().toPoint()))
        forwarded = QWheelEvent(
            local,
            event.globalPosition(),
            event.pixelDelta(),
            event.angleDelta(),
            event.buttons(),
            event.modifiers(),
            event.phase(),
            event.inverted(),
        )
        QApplication.sendEvent(parent, forwarded)
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 (Qt override)
        if event.reason() == QContextMenuEvent.Reason.Mouse:
            pos = event.pos()
        else:
            # The menu key: at the text cursor, as in any editor.
            pos = self.cursorRect().bottomLeft()
        self.sig_menu.emit(pos)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        self._pressed = event.button() == Qt.MouseButton.LeftButton
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        super().mouseMoveEvent(event)
        if self._pressed and event.buttons() & Qt.MouseButton.LeftButton:
            self._track_drag(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        super().mouseReleaseEvent(event)
        self._stop_drag()

    def focusOutEvent(self, event: QEvent) -> None:  # type: ignore[override]  # noqa: N802
        self._stop_drag()
        super().focusOutEvent(event)  # type: ignore[arg-type]

    # ---- dragging past the edge of the list scrolls it --------------------------------------

    def _track_drag(self, local: QPointF) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        y = self.mapToParent(local.toPoint()).y()
        self._drag_x = local.x()
        self._drag_y = float(y)
        outside = y < 0 or y > parent.height()
        if outside and not self._autoscroll.isActive():
            self._autoscroll.start()
        elif not outside:
            self._autoscroll.stop()

    def _autoscroll_step(self) -> None:
        parent = self.parentWidget()
        if parent is None or self._drag_y is None or not self._pressed:
            self._stop_drag()
            return
        y = self._drag_y
        distance = y if y < 0 else y - parent.height()
        if distance == 0:
            return
        step = int(max(-60, min(60, distance)))
        self._scroll(step)
        # Extend the selection to where the pointer now is over the moved text.
        local = QPointF(self._drag_x, float(self.mapFromParent(QPoint(0, int(y))).y()))
        move = QMouseEvent(
            QEvent.Type.MouseMove,
            local,
            QPointF(self.viewport().mapToGlobal(local.toPoint())),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(self.viewport(), move)

    def _stop_drag(self) -> None:
        self._pressed = False
        self._autoscroll.stop()
        self._drag_y = None

    def _clear_base(self) -> None:
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Base, Qt.GlobalColor.transparent)
        self.setPalette(pal)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        super().changeEvent(event)
        if (
            event.type() == QEvent.Type.PaletteChange
            and self.palette().color(QPalette.ColorRole.Base).alpha() != 0
        ):
            # A theme change hands down a new palette: keep the base see-through.
            self._clear_base()
