"""The models of one route, below the routes: what each is, where its text would go, and
a [Copy ID] per model.

[Copy ID] puts ``str(info.ref)`` on the clipboard — exactly the reference the model picker
and ``halext-desktop ask --model`` accept.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Locality, ModelInfo
from halext_desktop.ui.providers.cells import bold, item, small_button, style_note, table
from halext_desktop.ui.providers.text import context_text, size_text, source_text
from halext_desktop.ui.theme import muted_text, warning_color

MODEL_COLUMNS: tuple[str, ...] = (
    "Model",
    "Source",
    "Locality",
    "Size",
    "Parameters",
    "Quantization",
    "Context",
    "Capabilities",
    "Reference",
    "",
)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class ModelsList(QWidget):
    """A title, a one-line note (count, "Loading…", or why there are no models) and the
    models table.

    Args:
        refusal: why policy would refuse a model (None: it may be used); such models are
            marked "(blocked)".

    Attributes:
        title, note, table: the widgets, for the panel and for tests.
    """

    def __init__(
        self, refusal: Callable[[ModelRef], str | None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._refusal = refusal
        self._models: list[ModelInfo] = []
        self._copy_buttons: dict[str, QPushButton] = {}
        self._note_kind = "muted"
        self.title = bold(QLabel("Models"))
        self.note = QLabel("Choose “Show models” on a route to list what it offers.")
        self.note.setObjectName("Muted")
        self.note.setWordWrap(True)
        self.table = table(MODEL_COLUMNS, stretch="Reference")
        self.table.setObjectName("ModelsTable")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.note, 1)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def models(self) -> list[ModelInfo]:
        """The models listed now."""
        return list(self._models)

    def copy_button(self, ref: str) -> QPushButton:
        """The [Copy ID] button of the listed model whose reference is ``ref``."""
        return self._copy_buttons[ref]

    def set_note(self, text: str, kind: str = "muted") -> None:
        """``kind``: "muted", "warning" or "error"."""
        self.note.setText(text)
        self._note_kind = kind
        self.restyle()

    def set_models(
        self, models: list[ModelInfo], note: str, *, error: bool = False, warn: bool = False
    ) -> None:
        """List ``models`` (replacing what is shown) under ``note``."""
        self._models = list(models)
        self.set_note(note, "error" if error else "warning" if warn else "muted")
        t = self.table
        t.setRowCount(len(models))
        self._copy_buttons = {}
        pal = self.palette()
        for i, info in enumerate(models):
            ref = str(info.ref)
            refusal = self._refusal(info.ref)
            locality = item(info.locality.value + (" (blocked)" if refusal else ""), refusal or "")
            if info.locality is Locality.CLOUD:
                locality.setForeground(warning_color(pal))
            caps = ", ".join(info.capabilities)
            cells = [
                item(info.name, info.name),
                item(source_text(info)),
                locality,
                item(size_text(info.size_bytes)),
                item(info.parameter_size or ""),
                item(info.quantization or ""),
                item(
                    context_text(info.context_length),
                    f"{info.context_length:,} tokens" if info.context_length else "",
                ),
                item(caps, caps),
                item(ref, "The exact reference the model picker and --model accept"),
            ]
            cells[3].setTextAlignment(_RIGHT)
            cells[6].setTextAlignment(_RIGHT)
            if not info.available:
                for cell in cells:
                    cell.setForeground(muted_text(pal))
            for c, cell in enumerate(cells):
                t.setItem(i, c, cell)
            copy = small_button("Copy ID", f"Copy {ref}")
            copy.clicked.connect(lambda _c=False, m=info: self.copy_id(m))
            holder = QWidget()
            hl = QHBoxLayout(holder)
            hl.setContentsMargins(4, 2, 4, 2)
            hl.addWidget(copy)
            t.setCellWidget(i, len(MODEL_COLUMNS) - 1, holder)
            self._copy_buttons[ref] = copy

    def copy_id(self, info: ModelInfo) -> str:
        """Put ``str(info.ref)`` on the clipboard; returns it."""
        text = str(info.ref)
        QGuiApplication.clipboard().setText(text)
        self.set_note(f"Copied {text} — paste it in the model picker or after --model")
        return text

    def restyle(self) -> None:
        """Follow the palette (light/dark): the note's colour."""
        style_note(self.note, self._note_kind, self.palette())
