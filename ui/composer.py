"""The message composer: a text field that grows from one to about eight lines, Enter to
send, Shift+Enter for a new line, and a Send button that becomes Stop while a reply streams.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLayout,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.ui import theme

PLACEHOLDER = "Message… (Enter sends, Shift+Enter new line)"
MAX_LINES = 8


class _MessageEdit(QPlainTextEdit):
    """The text field; reports Enter, Escape and focus to the Composer."""

    def __init__(self, composer: Composer) -> None:
        super().__init__(composer)
        self._composer = composer

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        mods = event.modifiers()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            # Shift (or Alt) + Enter is a new line; plain, Ctrl or keypad Enter sends.
            if mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier):
                self.insertPlainText("\n")
                return
            self._composer.send()
            return
        if key == Qt.Key.Key_Escape and self._composer.is_streaming:
            self._composer.sig_stop.emit()
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QEvent) -> None:  # type: ignore[override]
        super().focusInEvent(event)  # type: ignore[arg-type]
        self._composer._set_focused(True)

    def focusOutEvent(self, event: QEvent) -> None:  # type: ignore[override]
        super().focusOutEvent(event)  # type: ignore[arg-type]
        self._composer._set_focused(False)


class Composer(QWidget):
    """Where the user writes.

    Signals:
        sig_send(str): Enter or Send with a non-blank message; carries the text (stripped).
            The field is cleared; ``last_sent`` keeps the text so a failed send can restore it.
        sig_stop(): Stop (or Esc) while a reply streams.
    """

    sig_send = Signal(str)
    sig_stop = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._streaming = False
        self._reason: str | None = None
        self.last_sent: str | None = None

        self.editor = _MessageEdit(self)
        self.editor.setObjectName("composerEdit")
        self.editor.setPlaceholderText(PLACEHOLDER)
        self.editor.setAccessibleName("Message")
        self.editor.setAccessibleDescription("Enter sends, Shift+Enter inserts a new line")
        self.editor.setTabChangesFocus(True)
        self.editor.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.editor.setFrameShape(QFrame.Shape.NoFrame)
        self.editor.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.editor.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.editor.document().setDocumentMargin(4)
        self.editor.textChanged.connect(self._on_text_changed)

        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("composerSend")
        self.send_button.setAccessibleName("Send")
        self.send_button.setToolTip("Send (Enter)")
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.setAutoDefault(False)
        self.send_button.clicked.connect(self._on_button)

        self.frame = QFrame(self)
        self.frame.setObjectName("composerFrame")
        inner = QHBoxLayout(self.frame)
        inner.setContentsMargins(8, 6, 6, 6)
        inner.setSpacing(8)
        inner.addWidget(self.editor, 1)
        inner.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)

        outer = QVBoxLayout(self)
        # Growing by a line must not push new minimum sizes to a top-level window.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        outer.setContentsMargins(16, 8, 16, 12)
        outer.addWidget(self.frame)
        self.setFocusProxy(self.editor)
        self._focused = False
        self._restyle()
        self._update_height()
        self._update_button()

    # ---- public API --------------------------------------------------------------------------

    @property
    def is_streaming(self) -> bool:
        return self._streaming

    @property
    def enabled_reason(self) -> str | None:
        """Why sending is disabled (shown as the tooltip), or None."""
        return self._reason

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        """Replace the text (edit-and-resend, restoring a failed send); cursor at the end."""
        self.editor.setPlainText(text)
        cursor = self.editor.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.editor.setTextCursor(cursor)
        self.editor.setFocus()

    def set_streaming(self, streaming: bool) -> None:
        """While a reply streams the button is Stop, and Esc stops too."""
        self._streaming = bool(streaming)
        self._update_button()

    def set_enabled_reason(self, reason: str | None) -> None:
        """Disable sending and say why (e.g. "Pick a model first"); None enables it.
        Typing stays possible either way."""
        self._reason = reason or None
        self._update_button()

    def can_send(self) -> bool:
        return not self._streaming and self._reason is None and bool(self.text().strip())

    def send(self) -> bool:
        """Send what is typed, if anything; returns True when ``sig_send`` was emitted."""
        if not self.can_send():
            return False
        text = self.text().strip()
        self.last_sent = text
        self.editor.clear()
        self.sig_send.emit(text)
        return True

    # ---- internals ---------------------------------------------------------------------------

    def _on_button(self) -> None:
        if self._streaming:
            self.sig_stop.emit()
        else:
            self.send()

    def _on_text_changed(self) -> None:
        self._update_height()
        self._update_button()

    def _update_button(self) -> None:
        button = self.send_button
        if self._streaming:
            button.setText("Stop")
            button.setAccessibleName("Stop")
            button.setToolTip("Stop the reply (Esc)")
            button.setEnabled(True)
            return
        button.setText("Send")
        button.setAccessibleName("Send")
        if self._reason:
            button.setEnabled(False)
            button.setToolTip(self._reason)
            self.editor.setToolTip(self._reason)
        else:
            button.setEnabled(bool(self.text().strip()))
            button.setToolTip("Send (Enter)")
            self.editor.setToolTip("")

    def visual_lines(self) -> int:
        """Lines the text takes at the field's width (wrapped lines count)."""
        doc = self.editor.document()
        lines = 0
        block = doc.begin()
        while block.isValid() and lines <= MAX_LINES:
            layout = block.layout()
            count = layout.lineCount() if layout is not None else 0
            lines += max(1, count)
            block = block.next()
        return max(1, lines)

    def _update_height(self) -> None:
        lines = min(MAX_LINES, self.visual_lines())
        line_h = self.editor.fontMetrics().lineSpacing()
        margin = 2 * int(self.editor.document().documentMargin()) + 2 * self.editor.frameWidth()
        height = lines * line_h + margin + 2
        if self.editor.height() != height or self.editor.minimumHeight() != height:
            self.editor.setFixedHeight(height)

    def resizeEvent(self, event: QEvent) -> None:  # type: ignore[override]
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._update_height()  # the wrap width changed

    def minimumSizeHint(self) -> QSize:
        # Constant, so growing by a line never changes a window's minimum size.
        return QSize(200, 48)

    def _set_focused(self, focused: bool) -> None:
        if focused != self._focused:
            self._focused = focused
            self._restyle()

    def _restyle(self) -> None:
        pal = self.palette()
        base = theme.css(pal.color(pal.ColorRole.Base))
        border = theme.css(
            pal.color(pal.ColorRole.Highlight)
            if self._focused
            else theme.mix(pal.color(pal.ColorRole.Mid), pal.color(pal.ColorRole.Base), 0.3)
        )
        sheet = (
            f"QFrame#composerFrame {{ background: {base}; border: 1px solid {border}; "
            f"border-radius: 10px; }}"
            "QPlainTextEdit#composerEdit { background: transparent; border: none; }"
        )
        if self.frame.styleSheet() != sheet:
            self.frame.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._restyle()
