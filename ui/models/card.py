"""A model card (``/api/show``): what the model is, then its parameters, prompt template,
system prompt, license, model info and Modelfile, each in a tab.

```
qwen2.5:7b                                   ollama/qwen2.5:7b
qwen2 · 7.6B · Q4_K_M · 32k context · completion, tools
[Model info] [Parameters] [Template] [System] [License] [Modelfile]
```
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.ollama_models import ModelCard
from halext_desktop.ui.providers.cells import bold, item, style_note, table
from halext_desktop.ui.providers.text import context_text

TABS: tuple[str, ...] = ("Info", "Parameters", "Template", "System", "License", "Modelfile")


def card_summary(card: ModelCard) -> str:
    """``qwen2 · 7.6B · Q4_K_M · 32k context · 3,584-dim embeddings · completion, tools``."""
    parts = [
        card.family or "",
        card.parameter_size or "",
        card.quantization or "",
        f"{context_text(card.context_length)} context" if card.context_length else "",
        ", ".join(card.capabilities),
    ]
    return " · ".join(p for p in parts if p)


def _value_text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, str):
        return value
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


class ModelCardView(QWidget):
    """The card of the model selected in the installed list.

    Attributes:
        card: what is shown (None while loading, failed or empty).
        title, summary, note, tabs: the widgets, for tests.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelCard")
        self.card: ModelCard | None = None
        self.title = bold(QLabel("Model card"), 1.15)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.note = QLabel("Select a model to see its card.")
        self.note.setWordWrap(True)
        self.info_table = table(("Key", "Value"), stretch="Value")
        self.info_table.setObjectName("ModelInfoTable")
        self.params_table = table(("Parameter", "Value"), stretch="Value")
        self.params_table.setObjectName("ParametersTable")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.texts: dict[str, QPlainTextEdit] = {}
        for name in ("Template", "System", "License", "Modelfile"):
            edit = QPlainTextEdit()
            edit.setReadOnly(True)
            edit.setFont(mono)
            edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
            edit.setAccessibleName(f"{name} of the model")
            self.texts[name] = edit
        self.tabs = QTabWidget()
        self.tabs.addTab(self.info_table, "Info")
        self.tabs.setTabToolTip(0, "model_info: architecture, sizes, tokenizer")
        self.tabs.addTab(self.params_table, "Parameters")
        for name, edit in self.texts.items():
            self.tabs.addTab(edit, name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.note)
        layout.addWidget(self.tabs, 1)
        self.clear()

    def clear(self, note: str = "Select a model to see its card.") -> None:
        self.card = None
        self.title.setText("Model card")
        self.summary.setText("")
        self._note(note, "muted")
        self.tabs.setVisible(False)

    def show_loading(self, name: str) -> None:
        self.card = None
        self.title.setText(name)
        self.summary.setText("")
        self._note("Loading the model card…", "muted")
        self.tabs.setVisible(False)

    def show_error(self, name: str, text: str) -> None:
        self.card = None
        self.title.setText(name)
        self._note(text, "error")
        self.tabs.setVisible(False)

    def show_card(self, card: ModelCard) -> None:
        self.card = card
        self.title.setText(card.name)
        self.title.setToolTip(str(card.ref))
        self.summary.setText(card_summary(card))
        modified = (
            card.modified_at.astimezone().strftime("%Y-%m-%d %H:%M") if card.modified_at else ""
        )
        self._note(f"{card.ref}" + (f" · modified {modified}" if modified else ""), "muted")
        rows = sorted(card.model_info.items())
        t = self.info_table
        t.setRowCount(len(rows))
        for i, (key, value) in enumerate(rows):
            text = _value_text(value)
            t.setItem(i, 0, item(key))
            t.setItem(i, 1, item(text, text))
        pairs = card.parameter_pairs()
        p = self.params_table
        p.setRowCount(len(pairs))
        for i, (key, value) in enumerate(pairs):
            p.setItem(i, 0, item(key))
            p.setItem(i, 1, item(value, value))
        for name, text in (
            ("Template", card.template),
            ("System", card.system),
            ("License", card.license),
            ("Modelfile", card.modelfile),
        ):
            self.texts[name].setPlainText(text or f"(this model has no {name.lower()})")
        self.tabs.setVisible(True)

    def tab_text(self, name: str) -> str:
        """What a text tab shows (Template, System, License, Modelfile)."""
        return self.texts[name].toPlainText()

    def _note(self, text: str, kind: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))
        style_note(self.note, kind, self.palette())
