"""The message composer: a text field that grows from one to about eight lines, Enter to
send, Shift+Enter for a new line, and a Send button that becomes Stop while a reply streams.

Files ride along: the Attach (paperclip) button, dropping files (or an image) on it, or pasting an
image or copied files add attachments, shown as chips above the text (✕ removes one). A
file that cannot be attached (too large, neither an image nor text) is refused at once with
one line under the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QBuffer, QEvent, QIODevice, QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QKeyEvent, QTextOption
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.storage.attachments import (
    MAX_ATTACHMENTS,
    AttachmentError,
    Prepared,
    prepare_bytes,
    prepare_file,
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

    # Paste and drop: files and images become attachments, text stays text.
    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 (Qt override)
        return has_attachable(source) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt override)
        if has_attachable(source):
            self._composer.add_mime(source)
            return
        super().insertFromMimeData(source)

    def focusOutEvent(self, event: QEvent) -> None:  # type: ignore[override]
        super().focusOutEvent(event)  # type: ignore[arg-type]
        self._composer._set_focused(False)


def has_attachable(source: QMimeData) -> bool:
    """Whether pasted or dropped data holds files or an image (not just text)."""
    if source.hasImage():
        return True
    return source.hasUrls() and any(u.isLocalFile() for u in source.urls())


class Composer(QWidget):
    """Where the user writes.

    Signals:
        sig_send(str): Enter or Send with a non-blank message (or attachments); carries the
            text (stripped). The field is cleared; ``last_sent`` keeps the text and
            ``last_attachments`` the files, so a failed send can restore them.
        sig_stop(): Stop (or Esc) while a reply streams.
        sig_attachments_changed(int): attachments were added or removed; how many now.
    """

    sig_send = Signal(str)
    sig_stop = Signal()
    sig_attachments_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._streaming = False
        self._reason: str | None = None
        self.last_sent: str | None = None
        self._attachments: list[Prepared] = []
        self.last_attachments: list[Prepared] = []
        # Asks which files to attach (the paperclip); tests put a function here.
        self.choose_files: Callable[[], Sequence[str]] = self._file_dialog

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

        self.attach_button = QToolButton(self)
        self.attach_button.setObjectName("composerAttach")
        self.attach_button.setText("Attach")
        self.attach_button.setAccessibleName("Attach files")
        self.attach_button.setToolTip(
            "Attach files: images for vision models, text and code files go into the message "
            "(you can also drop or paste them)"
        )
        self.attach_button.setAutoRaise(True)
        self.attach_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.attach_button.clicked.connect(self._on_attach)

        self.frame = QFrame(self)
        self.frame.setObjectName("composerFrame")
        inner = QHBoxLayout(self.frame)
        inner.setContentsMargins(4, 6, 6, 6)
        inner.setSpacing(6)
        inner.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignBottom)
        inner.addWidget(self.editor, 1)
        inner.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)

        self.chips = QWidget(self)
        self.chips.setObjectName("composerAttachments")
        self._chips_layout = QHBoxLayout(self.chips)
        self._chips_layout.setContentsMargins(0, 0, 0, 4)
        self._chips_layout.setSpacing(6)
        self._chips_layout.addStretch(1)
        self.chips.hide()
        self.problem = QLabel(self)
        self.problem.setObjectName("composerProblem")
        self.problem.setWordWrap(True)
        self.problem.hide()

        outer = QVBoxLayout(self)
        # Growing by a line must not push new minimum sizes to a top-level window.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        outer.setContentsMargins(16, 8, 16, 12)
        outer.setSpacing(2)
        outer.addWidget(self.chips)
        outer.addWidget(self.frame)
        outer.addWidget(self.problem)
        self.setAcceptDrops(True)
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
        has_content = bool(self.text().strip()) or bool(self._attachments)
        return not self._streaming and self._reason is None and has_content

    def send(self) -> bool:
        """Send what is typed, if anything; returns True when ``sig_send`` was emitted."""
        if not self.can_send():
            return False
        text = self.text().strip()
        self.last_sent = text
        self.last_attachments = list(self._attachments)
        self.editor.clear()
        self._set_attachments([])
        self.show_problem(None)
        self.sig_send.emit(text)
        return True

    # ---- attachments -------------------------------------------------------------------------

    def attachments(self) -> list[Prepared]:
        return list(self._attachments)

    def set_attachments(self, attachments: Sequence[Prepared]) -> None:
        """Replace the attachments (restoring a send that was refused)."""
        self._set_attachments(list(attachments))

    def add_files(self, paths: Sequence[str]) -> int:
        """Attach files; returns how many were added. A file that cannot be attached is
        said in one line under the field (the others are still added)."""
        added, problem = 0, None
        for path in paths:
            try:
                added += self._add(prepare_file(path))
            except AttachmentError as exc:
                problem = str(exc)
        self.show_problem(problem)
        return added

    def add_data(self, name: str, data: bytes) -> bool:
        try:
            ok = bool(self._add(prepare_bytes(name, data)))
        except AttachmentError as exc:
            self.show_problem(str(exc))
            return False
        self.show_problem(None)
        return ok

    def add_mime(self, source: QMimeData) -> int:
        """Attach what was pasted or dropped: local files, else an image."""
        files = (
            [u.toLocalFile() for u in source.urls() if u.isLocalFile()] if source.hasUrls() else []
        )
        if files:
            return self.add_files(files)
        if source.hasImage():
            image = source.imageData()
            if isinstance(image, QImage) and not image.isNull():
                buf = QBuffer()
                buf.open(QIODevice.OpenModeFlag.WriteOnly)
                image.save(buf, "PNG")  # type: ignore[call-overload]  # str works, stubs say bytes
                return int(self.add_data("pasted image.png", bytes(buf.data().data())))
        return 0

    def show_problem(self, line: str | None) -> None:
        self.problem.setText(line or "")
        self.problem.setVisible(bool(line))

    def _add(self, prepared: Prepared) -> int:
        if any(a.ref.sha256 == prepared.ref.sha256 for a in self._attachments):
            return 0
        if len(self._attachments) >= MAX_ATTACHMENTS:
            raise AttachmentError(f"at most {MAX_ATTACHMENTS} attachments per message")
        self._set_attachments([*self._attachments, prepared])
        return 1

    def _set_attachments(self, items: list[Prepared]) -> None:
        self._attachments = items
        layout = self._chips_layout
        while layout.count() > 1:
            taken = layout.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        for i, a in enumerate(items):
            chip = QToolButton(self.chips)
            # Plain text: emoji glyphs are missing from many desktop fonts.
            chip.setText(f"{a.ref.name}  ✕")
            kind = "image" if a.ref.is_image else "text, goes into the message"
            chip.setToolTip(f"{a.ref.name} ({kind}, {a.ref.size} bytes) — click to remove")
            chip.setAccessibleName(f"Remove attachment {a.ref.name}")
            chip.setAutoRaise(False)
            chip.clicked.connect(lambda _=False, sha=a.ref.sha256: self._remove(sha))
            layout.insertWidget(i, chip)
            chip.show()
        self.chips.setVisible(bool(items))
        self._update_button()
        self.sig_attachments_changed.emit(len(items))

    def _remove(self, sha256: str) -> None:
        self._set_attachments([a for a in self._attachments if a.ref.sha256 != sha256])

    def _on_attach(self) -> None:
        paths = list(self.choose_files())
        if paths:
            self.add_files(paths)
            self.editor.setFocus()

    def _file_dialog(self) -> Sequence[str]:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Attach files",
            "",
            "Images and text (*.png *.jpg *.jpeg *.gif *.webp *.txt *.md *.py *.json *.csv);;"
            "All files (*)",
        )
        return paths

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if has_attachable(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        if has_attachable(event.mimeData()):
            self.add_mime(event.mimeData())
            event.acceptProposedAction()
        else:
            super().dropEvent(event)

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
            button.setEnabled(bool(self.text().strip()) or bool(self._attachments))
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
