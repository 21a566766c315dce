"""Close and Esc for the app's side windows (Providers, Usage): one bottom-right Close
button and the Esc key, as every dialog has; the window's state is kept for the next time
it is opened."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QDialogButtonBox, QHBoxLayout, QPushButton, QWidget


def close_row(window: QWidget, what: str) -> tuple[QHBoxLayout, QPushButton]:
    """A row holding a Close button for ``window`` (``what``: its name, for the accessible
    name), and Esc anywhere in it closes it too. Returns the row (to add to the window's
    layout, widgets may go before the button) and the button."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, window)
    close = buttons.button(QDialogButtonBox.StandardButton.Close)
    close.setAccessibleName(f"Close {what}")
    close.setToolTip("Close (Esc)")
    close.setAutoDefault(False)
    buttons.rejected.connect(window.close)
    escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), window)
    escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    escape.activated.connect(window.close)
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(buttons)
    return row, close
