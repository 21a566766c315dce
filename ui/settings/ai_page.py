"""Settings → AI: the two switches, the default model, the fallback order, Reset."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
)

from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import ModelListing
from halext_desktop.storage.settings import AI_KEYS
from halext_desktop.ui.settings.common import FieldError, Page, error_text, muted

if TYPE_CHECKING:
    from halext_desktop.ui.settings.dialog import SettingsDialog


class AiPage(Page):
    """The two switches, default model, fallback order, Reset to default."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.disable_cloud = QCheckBox("Disable cloud providers", self)
        self.disable_cloud.setAccessibleName("Disable cloud providers")
        self.disable_cloud.setToolTip("Never send text to OpenAI, Gemini or other hosted providers")
        self.disable_cloud.toggled.connect(
            lambda on: self.write("disable_cloud", on, self.switch_error)
        )
        cloud_note = muted(
            QLabel(
                "Cloud models (OpenAI, Gemini, public endpoints) stay listed but disabled; "
                "halext requests always name a non-cloud model.",
                self,
            )
        )
        self.offline = QCheckBox("Offline — local models only", self)
        self.offline.setAccessibleName("Offline — local models only")
        self.offline.setToolTip("Contact nothing but the configured Ollama hosts")
        self.offline.toggled.connect(lambda on: self.write("offline", on, self.switch_error))
        offline_note = muted(
            QLabel(
                "Only the Ollama hosts below are contacted — no halext, no endpoints, "
                "not even a model list or health check.",
                self,
            )
        )

        self.default_model = QComboBox(self)
        self.default_model.setEditable(True)
        self.default_model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.default_model.setAccessibleName("Default model")
        self.default_model.setToolTip(
            "Used for new chats, e.g. ollama/llama3.1:8b; empty: the first local model"
        )
        line = self.default_model.lineEdit()
        assert line is not None
        line.setPlaceholderText("none — the first allowed local model")
        line.editingFinished.connect(self._commit_default)
        self.default_model.activated.connect(lambda _i: self._commit_default())
        self.default_error = FieldError("Default model", self)

        self.fallbacks = QListWidget(self)
        self.fallbacks.setAccessibleName("Fallback order")
        self.fallbacks.setToolTip(
            "Tried in this order when the chosen model fails before answering"
        )
        self.fallbacks.setMaximumHeight(120)
        self.fallbacks.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.fallback_input = QComboBox(self)
        self.fallback_input.setEditable(True)
        self.fallback_input.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.fallback_input.setAccessibleName("Fallback model to add")
        fb_line = self.fallback_input.lineEdit()
        assert fb_line is not None
        fb_line.setPlaceholderText("model reference, e.g. ollama/qwen2.5:7b")
        fb_line.returnPressed.connect(self._add_fallback)
        self.fallback_add = self._button(
            "Add", "Add this model to the end of the fallback order", self._add_fallback
        )
        self.fallback_remove = self._button(
            "Remove", "Remove the selected fallback", self._remove_fallback
        )
        self.fallback_up = self._button(
            "Up", "Try the selected fallback earlier", lambda: self._move_fallback(-1)
        )
        self.fallback_down = self._button(
            "Down", "Try the selected fallback later", lambda: self._move_fallback(1)
        )
        self.fallback_error = FieldError("Fallback order", self)

        self.reset_button = self._button(
            "Reset to default…",
            "Restore every setting to its default (keys and passwords are kept)",
            self._reset,
        )

        switches = QVBoxLayout()
        switches.setSpacing(2)
        for w in (self.disable_cloud, cloud_note):
            switches.addWidget(w)
        switches.addSpacing(8)
        for w in (self.offline, offline_note, self.switch_error):
            switches.addWidget(w)

        fb_add_row = QHBoxLayout()
        fb_add_row.addWidget(self.fallback_input, 1)
        fb_add_row.addWidget(self.fallback_add)
        fb_buttons = QVBoxLayout()
        for b in (self.fallback_remove, self.fallback_up, self.fallback_down):
            fb_buttons.addWidget(b)
        fb_buttons.addStretch(1)
        fb_row = QHBoxLayout()
        fb_row.addWidget(self.fallbacks, 1)
        fb_row.addLayout(fb_buttons)
        fb_box = QVBoxLayout()
        fb_box.addLayout(fb_row)
        fb_box.addLayout(fb_add_row)
        fb_box.addWidget(self.fallback_error)

        default_box = QVBoxLayout()
        default_box.addWidget(self.default_model)
        default_box.addWidget(self.default_error)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Default model:", default_box)
        form.addRow("Fallback order:", fb_box)

        layout = QVBoxLayout(self)
        layout.addLayout(switches)
        layout.addSpacing(12)
        layout.addLayout(form)
        layout.addStretch(1)
        reset_row = QHBoxLayout()
        reset_row.addStretch(1)
        reset_row.addWidget(self.reset_button)
        layout.addLayout(reset_row)
        self.reload()

    def _button(self, text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
        b = QPushButton(text, self)
        b.setToolTip(tip)
        b.setAccessibleName(tip if text in ("Up", "Down") else text.rstrip("…"))
        b.clicked.connect(lambda _checked=False: slot())
        return b

    # -- listing

    def set_listing(self, listing: ModelListing) -> None:
        refs = [str(m.ref) for m in listing.models]
        for combo in (self.default_model, self.fallback_input):
            text = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(refs)
            combo.setEditText(text)
            combo.blockSignals(False)

    # -- default model

    def _commit_default(self) -> None:
        text = self.default_model.currentText().strip()
        if text != self.settings.default_model:
            self.write("default_model", text, self.default_error, revert=False)

    # -- fallbacks

    def _fallback_values(self) -> list[str]:
        return [self.fallbacks.item(i).text() for i in range(self.fallbacks.count())]

    def _add_fallback(self) -> None:
        text = self.fallback_input.currentText().strip()
        if not text:
            return
        try:
            ModelRef.parse(text)
        except ModelRefError as exc:
            self.fallback_error.show_error(str(exc))
            return
        if self.write(
            "fallback_models", [*self.settings.fallback_models, text], self.fallback_error
        ):
            self.fallback_input.setEditText("")

    def _remove_fallback(self) -> None:
        row = self.fallbacks.currentRow()
        if row < 0:
            return
        values = self._fallback_values()
        del values[row]
        self.write("fallback_models", values, self.fallback_error)
        self.fallbacks.setCurrentRow(min(row, self.fallbacks.count() - 1))

    def _move_fallback(self, delta: int) -> None:
        row = self.fallbacks.currentRow()
        values = self._fallback_values()
        new = row + delta
        if row < 0 or not 0 <= new < len(values):
            return
        values[row], values[new] = values[new], values[row]
        if self.write("fallback_models", values, self.fallback_error):
            self.fallbacks.setCurrentRow(new)

    # -- reset

    def _reset(self) -> None:
        if not self.dialog.confirm(
            "Reset to default",
            "Reset the AI settings to their defaults? Cloud providers are allowed again, "
            "offline mode is turned off, and the default and fallback models are cleared. "
            "Your connections, sign-in and API keys are kept.",
        ):
            return
        try:
            self.settings.reset(AI_KEYS)
        except OSError as exc:
            self.switch_error.show_error(error_text(exc))
            return
        self.dialog.reload_all()
        self.dialog.sig_reset_done.emit()

    # -- reflect

    def reload(self, key: str | None = None) -> None:
        s = self.settings
        if key in (None, "disable_cloud"):
            self.disable_cloud.blockSignals(True)
            self.disable_cloud.setChecked(s.disable_cloud)
            self.disable_cloud.blockSignals(False)
        if key in (None, "offline"):
            self.offline.blockSignals(True)
            self.offline.setChecked(s.offline)
            self.offline.blockSignals(False)
        if key in (None, "default_model") and self.default_model.currentText() != s.default_model:
            self.default_model.blockSignals(True)
            self.default_model.setEditText(s.default_model)
            self.default_model.blockSignals(False)
        if key in (None, "fallback_models") and self._fallback_values() != s.fallback_models:
            row = self.fallbacks.currentRow()
            self.fallbacks.clear()
            self.fallbacks.addItems(s.fallback_models)
            if 0 <= row < self.fallbacks.count():
                self.fallbacks.setCurrentRow(row)
