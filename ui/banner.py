"""An inline banner under the conversation: one line of text (wrapped), one action, a close
button. Errors are shown here, in place, instead of in modal dialogs (ux.md)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from halext_desktop.ui import theme
from halext_desktop.ui.text import plain

KINDS: tuple[str, ...] = ("error", "warning", "info")
_KIND_NAMES = {"error": "Error", "warning": "Warning", "info": "Note"}


class Banner(QFrame):
    """A dismissible message with at most one action.

    Signals:
        sig_action(str): the action button was clicked; carries the action id.
        sig_closed(str): the user dismissed the banner; carries its action id ("" if none).
    """

    sig_action = Signal(str)
    sig_closed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatBanner")
        self._kind = "info"
        self._action_id = ""
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # error text is never markup
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setObjectName("chatBannerText")
        self.action_button = QPushButton(self)
        self.action_button.setObjectName("chatBannerAction")
        self.action_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.action_button.clicked.connect(self._on_action)
        self.close_button = QToolButton(self)
        self.close_button.setObjectName("chatBannerClose")
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName("Dismiss message")
        self.close_button.clicked.connect(self._on_close)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 6, 8)
        layout.setSpacing(10)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def text(self) -> str:
        return self.label.text()

    @property
    def action_id(self) -> str:
        return self._action_id

    def show_message(
        self,
        kind: str,
        text: str,
        action_label: str | None = None,
        action_id: str | None = None,
    ) -> None:
        """Show (or replace) the banner. Unknown kinds are shown as ``info``."""
        self._kind = kind if kind in KINDS else "info"
        text = plain(text)
        self.label.setText(text)
        if action_label:
            self._action_id = action_id or action_label
            self.action_button.setText(action_label)
            self.action_button.setAccessibleName(action_label)
            self.action_button.show()
        else:
            self._action_id = action_id or ""
            self.action_button.hide()
        self.setAccessibleName(f"{_KIND_NAMES[self._kind]}: {text}")
        self._restyle()
        self.show()

    def clear(self) -> None:
        self.hide()
        self.label.clear()
        self._action_id = ""

    def _on_action(self) -> None:
        self.sig_action.emit(self._action_id)

    def _on_close(self) -> None:
        action = self._action_id
        self.clear()
        self.sig_closed.emit(action)

    def _restyle(self) -> None:
        # The parent's palette: our own is altered by our style sheet.
        source = self.parentWidget() or self
        bg, border, text = theme.banner_colors(source.palette(), self._kind)
        sheet = (
            f"QFrame#chatBanner {{ background: {theme.css(bg)}; border: 1px solid "
            f"{theme.css(border)}; border-radius: 8px; }}"
            f"QLabel#chatBannerText {{ color: {theme.css(text)}; background: transparent; "
            f"border: none; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            # A theme switch reaches the banner before its parent has the new palette:
            # take the colours once every widget has it (an open banner follows the theme).
            QTimer.singleShot(0, self, self._restyle)
