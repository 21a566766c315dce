"""The chat header's system prompt and parameters: a compact row above the messages, and
the dialog that edits them (with presets the user saves and reuses).

What the row says depends on the route of the model in use, so nothing is dropped
silently: halext takes only the system prompt (its chat request has prompt, history and
model), OpenAI-compatible endpoints cannot set the context length.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.types import ChatOptions, options_not_sent
from halext_desktop.storage.chat_settings import ChatSettings, parse_value
from halext_desktop.ui import theme

FIELDS = (
    ("temperature", "Temperature", "0 to 2"),
    ("top_p", "Top-p", "0 to 1"),
    ("num_ctx", "Context length", "tokens (Ollama only)"),
    ("max_tokens", "Max tokens", "longest reply"),
    ("seed", "Seed", "for repeatable replies"),
)
SYSTEM_PREVIEW = 70


def route_note(settings: ChatSettings, route_kind: str | None) -> str:
    """What the route of the model in use cannot carry of ``settings`` ("" when all)."""
    if route_kind is None:
        return ""
    labels = options_not_sent(route_kind, settings.options(ChatOptions()))
    if not labels:
        return ""
    if route_kind == "halext":
        return f"halext takes only the system prompt: {', '.join(labels)} not sent"
    return f"{', '.join(labels)} not sent to this route"


class ChatSettingsBar(QFrame):
    """One line above the messages: the system prompt (its start) and the parameters of
    the conversation, what the route cannot carry, and Edit.

    Signals:
        sig_edit(): the user wants to edit them.
    """

    sig_edit = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatSettingsBar")
        self.summary = QLabel(self)
        self.summary.setObjectName("chatSettingsSummary")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.note = QLabel(self)
        self.note.setObjectName("chatSettingsNote")
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.edit_button = QToolButton(self)
        self.edit_button.setText("System prompt && parameters…")
        self.edit_button.setAccessibleName("Edit system prompt and parameters")
        self.edit_button.setToolTip("Edit this conversation's system prompt and parameters")
        self.edit_button.setAutoRaise(True)
        self.edit_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.edit_button.clicked.connect(self.sig_edit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 4, 12, 4)
        layout.setSpacing(10)
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.note, 0)
        layout.addWidget(self.edit_button, 0)
        self.settings = ChatSettings()
        self.route_kind: str | None = None
        self._restyle()
        self.set_state(ChatSettings(), None)

    def set_state(self, settings: ChatSettings, route_kind: str | None) -> None:
        self.settings, self.route_kind = settings, route_kind
        parts = []
        if settings.system:
            flat = " ".join(settings.system.split())
            if len(flat) > SYSTEM_PREVIEW:
                flat = flat[: SYSTEM_PREVIEW - 1] + "…"
            parts.append(f"System: {flat}")
        if settings.summary():
            parts.append(settings.summary())
        self.summary.setText(" · ".join(parts) or "No system prompt · model defaults")
        self.summary.setToolTip(settings.system or "")
        note = route_note(settings, route_kind)
        self.note.setText(f"⚠ {note}" if note else "")
        self.note.setVisible(bool(note))

    def _restyle(self) -> None:
        pal = self.palette()
        muted = theme.css(theme.muted_text(pal))
        warn = theme.css(theme.warning_color(pal))
        line = theme.css(
            theme.mix(pal.color(pal.ColorRole.Mid), pal.color(pal.ColorRole.Window), 0.5)
        )
        self.setStyleSheet(
            f"QFrame#chatSettingsBar {{ border-bottom: 1px solid {line}; }}"
            f"QLabel#chatSettingsSummary {{ color: {muted}; }}"
            f"QLabel#chatSettingsNote {{ color: {warn}; }}"
        )


class ChatSettingsDialog(QDialog):
    """Edit a conversation's system prompt and parameters; apply, save and delete presets.

    Signals:
        sig_save_preset(str, object): save the fields as a preset (name, ChatSettings).
        sig_delete_preset(str): delete the preset of that name.
    """

    sig_save_preset = Signal(str, object)
    sig_delete_preset = Signal(str)

    def __init__(
        self,
        settings: ChatSettings,
        presets: Sequence[tuple[str, ChatSettings]],
        route_kind: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("System prompt and parameters")
        self.setObjectName("chatSettingsDialog")
        self._presets = dict(presets)
        self._route_kind = route_kind
        self.result_settings = settings

        self.preset_box = QComboBox(self)
        self.preset_box.setAccessibleName("Presets")
        self.preset_name = QLineEdit(self)
        self.preset_name.setPlaceholderText("Preset name")
        self.preset_name.setAccessibleName("Preset name")
        self.save_preset_button = QPushButton("Save as preset", self)
        self.delete_preset_button = QPushButton("Delete preset", self)
        self._fill_presets()
        self.preset_box.activated.connect(self._apply_preset)
        self.save_preset_button.clicked.connect(self._save_preset)
        self.delete_preset_button.clicked.connect(self._delete_preset)
        presets_row = QHBoxLayout()
        presets_row.addWidget(self.preset_box, 1)
        presets_row.addWidget(self.delete_preset_button)
        save_row = QHBoxLayout()
        save_row.addWidget(self.preset_name, 1)
        save_row.addWidget(self.save_preset_button)

        self.system_edit = QPlainTextEdit(self)
        self.system_edit.setAccessibleName("System prompt")
        self.system_edit.setPlaceholderText("System prompt (sent first, on every route)")
        self.system_edit.setTabChangesFocus(True)
        self.fields: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for name, label, hint in FIELDS:
            edit = QLineEdit(self)
            edit.setPlaceholderText(f"model default ({hint})")
            edit.setAccessibleName(label)
            edit.textChanged.connect(self._update_note)
            self.fields[name] = edit
            form.addRow(label, edit)

        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setObjectName("chatSettingsError")
        self.error.setWordWrap(True)
        self.error.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons

        layout = QVBoxLayout(self)
        layout.addLayout(presets_row)
        layout.addWidget(QLabel("System prompt", self))
        layout.addWidget(self.system_edit, 1)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addLayout(save_row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 520)
        self.set_fields(settings)

    # ---- fields --------------------------------------------------------------------------

    def set_fields(self, settings: ChatSettings) -> None:
        self.system_edit.setPlainText(settings.system or "")
        for name, edit in self.fields.items():
            value = getattr(settings, name)
            edit.setText(
                "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
            )
        self._update_note()

    def read_fields(self) -> ChatSettings:
        """The settings typed. Raises ValueError naming the field and what is allowed."""
        values = {"system": parse_value("system", self.system_edit.toPlainText())}
        for name, edit in self.fields.items():
            values[name] = parse_value(name, edit.text())
        return ChatSettings(**values)

    def _update_note(self) -> None:
        try:
            settings = self.read_fields()
        except ValueError:
            return
        note = route_note(settings, self._route_kind)
        self.note.setText(f"⚠ {note}" if note else "")
        self.note.setVisible(bool(note))

    def accept(self) -> None:
        try:
            self.result_settings = self.read_fields()
        except ValueError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        super().accept()

    # ---- presets -------------------------------------------------------------------------

    def _fill_presets(self) -> None:
        self.preset_box.clear()
        self.preset_box.addItem("Presets…" if self._presets else "No presets yet", None)
        for name in sorted(self._presets):
            self.preset_box.addItem(name, name)
        self.delete_preset_button.setEnabled(False)

    def set_presets(self, presets: Sequence[tuple[str, ChatSettings]]) -> None:
        self._presets = dict(presets)
        self._fill_presets()

    def _apply_preset(self, row: int) -> None:
        name = self.preset_box.itemData(row)
        self.delete_preset_button.setEnabled(name is not None)
        if name is not None and name in self._presets:
            self.set_fields(self._presets[name])
            self.preset_name.setText(name)

    def _save_preset(self) -> None:
        name = " ".join(self.preset_name.text().split())
        if not name:
            self.error.setText("Give the preset a name first")
            self.error.show()
            return
        try:
            settings = self.read_fields()
        except ValueError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.error.hide()
        self._presets[name] = settings
        self._fill_presets()
        self.preset_box.setCurrentIndex(self.preset_box.findData(name))
        self.sig_save_preset.emit(name, settings)

    def _delete_preset(self) -> None:
        name = self.preset_box.currentData()
        if name is None:
            return
        self._presets.pop(name, None)
        self._fill_presets()
        self.sig_delete_preset.emit(name)
