"""An inline "are you sure?" strip above a list: the question, what it means, a destructive
button and Cancel (focused, so Enter or Esc never deletes by accident).

```
Delete qwen2.5:7b from Ollama local? It frees up to 4.7 GB.   [Delete]  [Cancel]
⚠ The open chat uses this model: it will need another one.
```
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from halext_desktop.ui.providers.cells import style_note


class ConfirmBar(QFrame):
    """Asks one question at a time; ``ask`` replaces any question still open.

    Signals:
        sig_answered(bool): True when confirmed, False when cancelled.
    """

    sig_answered = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ConfirmBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.question = QLabel("")
        self.question.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.confirm_button = QPushButton("Delete")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setDefault(True)
        self.confirm_button.clicked.connect(lambda: self._answer(True))
        self.cancel_button.clicked.connect(lambda: self._answer(False))
        top = QHBoxLayout()
        top.addWidget(self.question, 1)
        top.addWidget(self.confirm_button)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addLayout(top)
        layout.addWidget(self.warning)
        self._on_yes: Callable[[], None] | None = None
        self.hide()

    def ask(
        self,
        question: str,
        confirm_text: str,
        on_yes: Callable[[], None],
        warning: str = "",
    ) -> None:
        self.question.setText(question)
        self.confirm_button.setText(confirm_text)
        self.confirm_button.setAccessibleName(f"{confirm_text}: {question}")
        self.warning.setText(f"⚠ {warning}" if warning else "")
        self.warning.setVisible(bool(warning))
        style_note(self.warning, "warning", self.palette())
        self._on_yes = on_yes
        self.show()
        self.cancel_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape:
            self._answer(False)
            return
        super().keyPressEvent(event)

    def _answer(self, yes: bool) -> None:
        on_yes, self._on_yes = self._on_yes, None
        self.hide()
        self.sig_answered.emit(yes)
        if yes and on_yes is not None:
            on_yes()
