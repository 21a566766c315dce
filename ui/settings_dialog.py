"""Settings (Ctrl+,): AI · Connections · Appearance · Data.

Every change is written through ``settings.set`` the moment a box is ticked or a field is
left (no OK/Apply), so it takes effect at once; a rejected value shows the SettingsError's
message next to its field and the field goes back to the stored value. The dialog also
follows changes made elsewhere (the CLI, a sign-in on the loop thread, Reset) through the
SettingsNotifier.

Secrets never pass through settings: an endpoint's API key goes to the SecretStore as
``openai-key:<name>`` and the password only to ``services.sign_in``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.netloc import host_of, is_loopback_url
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.types import Health, ModelListing
from halext_desktop.storage import paths
from halext_desktop.storage.settings import AI_KEYS, SettingsError

if TYPE_CHECKING:
    from halext_desktop.storage.settings import Settings
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.qt_settings import SettingsNotifier
    from halext_desktop.ui.services import Services

KEY_PREFIX = "openai-key:"
TAB_NAMES = ("ai", "connections", "appearance", "data")
THEMES = (("system", "Follow system"), ("light", "Light"), ("dark", "Dark"))
FONT_SYSTEM_SENTINEL = 7  # the spin box's minimum, shown as "System", stored as 0

Confirm = Callable[[str, str], bool]


def error_text(exc: BaseException) -> str:
    """One line for the user. Unknown exceptions are named, not echoed: their text may
    carry a URL with credentials or a library's internals."""
    if isinstance(exc, RouteError):
        return exc.one_line()
    if isinstance(exc, SettingsError | OSError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}); see the log for details"


def health_text(health: Health) -> str:
    """``✓ Ollama 0.12.3 · 7 models · 4 ms`` or ``✗ <the exact failure>``."""
    if health.ok:
        if health.detail:
            return f"✓ {health.detail}"
        latency = f" · {health.latency_ms} ms" if health.latency_ms is not None else ""
        return f"✓ reachable{latency}"
    return f"✗ {health.detail or 'not reachable'}"


def _muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setWordWrap(True)
    return label


class FieldError(QLabel):
    """The inline message under a field; hidden while there is nothing to say."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAccessibleName(f"{name} error")
        self.hide()

    def show_error(self, message: str | None) -> None:
        self.setText(f"⚠ {message}" if message else "")
        self.setVisible(bool(message))

    def message(self) -> str:
        return self.text().removeprefix("⚠ ")


class _Page(QWidget):
    """Shared plumbing of the tabs: write-through with inline errors."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.switch_error = FieldError("Switches", self)
        self.dialog = dialog
        self.settings: Settings = dialog.services.settings

    def write(self, key: str, value: Any, error: FieldError, *, revert: bool = True) -> bool:
        """``settings.set`` with the refusal shown under the field.

        ``revert=False`` keeps what the user typed in a text field so it can be corrected;
        switches, tables and spin boxes go back to the stored value.
        """
        try:
            self.settings.set(key, value)
        except (SettingsError, OSError) as exc:
            error.show_error(error_text(exc))
            if revert:
                self.reload(key)
            return False
        error.show_error(None)
        return True

    def reload(self, key: str | None = None) -> None:
        """Show the stored value of ``key`` (None: every key this page shows)."""


# ---- AI ----------------------------------------------------------------------------------------


class AiPage(_Page):
    """The two switches, default model, fallback order, Reset to default."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.disable_cloud = QCheckBox("Disable cloud providers", self)
        self.disable_cloud.setAccessibleName("Disable cloud providers")
        self.disable_cloud.setToolTip("Never send text to OpenAI, Gemini or other hosted providers")
        self.disable_cloud.toggled.connect(
            lambda on: self.write("disable_cloud", on, self.switch_error)
        )
        cloud_note = _muted(
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
        offline_note = _muted(
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


# ---- Connections -----------------------------------------------------------------------------


class _HostTable(QTableWidget):
    """A name/URL table whose edits are written through as a whole list."""

    def __init__(self, name: str, columns: list[str], parent: QWidget | None = None) -> None:
        super().__init__(0, len(columns), parent)
        self.setAccessibleName(name)
        self.setHorizontalHeaderLabels(columns)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for c in range(2, len(columns)):
            self.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        self.setMinimumHeight(84)
        self.setMaximumHeight(120)

    def entries(self) -> list[dict[str, str]]:
        out = []
        for r in range(self.rowCount()):
            name, url = self.item(r, 0), self.item(r, 1)
            out.append(
                {
                    "name": name.text().strip() if name else "",
                    "url": url.text().strip() if url else "",
                }
            )
        return out

    def selected_row(self) -> int:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else -1


class ConnectionsPage(_Page):
    """halext URL and sign-in, Ollama hosts, OpenAI-compatible endpoints."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.secrets = dialog.services.secrets
        self._filling = False
        self.sign_status_error = FieldError("Sign-in", self)

        # -- halext
        self.halext_url = QLineEdit(self)
        self.halext_url.setAccessibleName("halext server URL")
        self.halext_url.setPlaceholderText("https://org.halext.org/api — empty: do not use halext")
        self.halext_url.setToolTip("Base URL of the halext API; applied when you leave the field")
        self.halext_url.editingFinished.connect(self._commit_url)
        self.url_error = FieldError("halext server URL", self)
        self.url_note = _muted(QLabel(self))
        self.url_note.hide()

        self.username = QLineEdit(self)
        self.username.setAccessibleName("halext username")
        self.username.setPlaceholderText("username")
        self.password = QLineEdit(self)
        self.password.setAccessibleName("halext password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        self.password.returnPressed.connect(self.sign_in)
        self.remember = QCheckBox("Remember me", self)
        self.remember.setAccessibleName("Remember me")
        self.remember.setToolTip(
            "Keep the password in the system keyring to sign in again when the token expires"
        )
        self.remember.toggled.connect(
            lambda on: self.write("halext_remember", on, self.sign_status_error)
        )
        self.sign_in_button = QPushButton("Sign in", self)
        self.sign_in_button.setAccessibleName("Sign in")
        self.sign_in_button.setToolTip("Sign in to the halext server (Enter in the password field)")
        self.sign_in_button.clicked.connect(self.sign_in)
        self.sign_out_button = QPushButton("Sign out", self)
        self.sign_out_button.setAccessibleName("Sign out")
        self.sign_out_button.setToolTip("Forget the token (and the remembered password)")
        self.sign_out_button.clicked.connect(self.sign_out)
        self.sign_status = QLabel(self)
        self.sign_status.setAccessibleName("Sign-in status")
        self.sign_status.setWordWrap(True)
        self.keyring_note = _muted(QLabel(self))
        self.keyring_note.setAccessibleName("Keyring note")
        self.keyring_note.setVisible(not self.secrets.persistent and bool(self.secrets.note))
        self.keyring_note.setText(f"Note: {self.secrets.note}" if self.secrets.note else "")

        # -- Ollama hosts
        self.hosts = _HostTable("Ollama hosts", ["Name", "URL"], self)
        self.hosts.setToolTip(
            "The first host is the default route (ollama/<model>); double-click to edit"
        )
        self.hosts.itemChanged.connect(lambda _i: self._commit_hosts())
        self.host_name = QLineEdit(self)
        self.host_name.setAccessibleName("New Ollama host name")
        self.host_name.setPlaceholderText("name, e.g. studio")
        self.host_url = QLineEdit(self)
        self.host_url.setAccessibleName("New Ollama host URL")
        self.host_url.setPlaceholderText("http://192.168.1.20:11434")
        self.host_url.returnPressed.connect(self._add_host)
        self.host_add = self._button("Add", "Add an Ollama host", self._add_host)
        self.host_remove = self._button(
            "Remove", "Remove the selected Ollama host", self._remove_host
        )
        self.host_test = self._button(
            "Test", "Check the selected host (version, models, latency)", self._test_host
        )
        self.host_result = _muted(QLabel(self))
        self.host_result.setAccessibleName("Ollama test result")
        self.host_error = FieldError("Ollama hosts", self)

        # -- OpenAI-compatible endpoints
        self.endpoints = _HostTable("OpenAI-compatible endpoints", ["Name", "URL", "API key"], self)
        self.endpoints.setToolTip("Keys live in the system keyring, never in the settings file")
        self.endpoints.itemChanged.connect(lambda _i: self._commit_endpoints())
        self.endpoints.itemSelectionChanged.connect(self._update_key_buttons)
        self.ep_name = QLineEdit(self)
        self.ep_name.setAccessibleName("New endpoint name")
        self.ep_name.setPlaceholderText("name, e.g. groq")
        self.ep_url = QLineEdit(self)
        self.ep_url.setAccessibleName("New endpoint URL")
        self.ep_url.setPlaceholderText("https://api.example.com/v1")
        self.ep_url.returnPressed.connect(self._add_endpoint)
        self.ep_add = self._button("Add", "Add an OpenAI-compatible endpoint", self._add_endpoint)
        self.ep_remove = self._button(
            "Remove", "Remove the selected endpoint and its key", self._remove_endpoint
        )
        self.ep_test = self._button(
            "Test", "Check the selected endpoint with its key", self._test_endpoint
        )
        self.api_key = QLineEdit(self)
        self.api_key.setAccessibleName("API key for the selected endpoint")
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("API key for the selected endpoint")
        self.api_key.returnPressed.connect(self._save_key)
        self.key_save = self._button(
            "Save key", "Store the key in the system keyring", self._save_key
        )
        self.key_delete = self._button(
            "Remove key", "Delete the selected endpoint's key from the keyring", self._delete_key
        )
        self.ep_result = _muted(QLabel(self))
        self.ep_result.setAccessibleName("Endpoint test result")
        self.ep_error = FieldError("OpenAI-compatible endpoints", self)

        # -- layout
        halext_box = QGroupBox("halext", self)
        hform = QFormLayout(halext_box)
        hform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        url_col = QVBoxLayout()
        url_col.setSpacing(2)
        url_col.addWidget(self.halext_url)
        url_col.addWidget(self.url_note)
        url_col.addWidget(self.url_error)
        hform.addRow("Server URL:", url_col)
        creds = QHBoxLayout()
        creds.addWidget(self.username, 1)
        creds.addWidget(self.password, 1)
        hform.addRow("Account:", creds)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remember)
        buttons.addStretch(1)
        buttons.addWidget(self.sign_in_button)
        buttons.addWidget(self.sign_out_button)
        hform.addRow("", buttons)
        status_col = QVBoxLayout()
        status_col.setSpacing(2)
        status_col.addWidget(self.sign_status)
        status_col.addWidget(self.sign_status_error)
        status_col.addWidget(self.keyring_note)
        hform.addRow("Status:", status_col)

        hosts_box = QGroupBox("Ollama hosts", self)
        hl = QVBoxLayout(hosts_box)
        hl.addWidget(self.hosts)
        add_row = QHBoxLayout()
        add_row.addWidget(self.host_name, 1)
        add_row.addWidget(self.host_url, 2)
        add_row.addWidget(self.host_add)
        hl.addLayout(add_row)
        act_row = QHBoxLayout()
        act_row.addWidget(self.host_remove)
        act_row.addWidget(self.host_test)
        act_row.addWidget(self.host_result, 1)
        hl.addLayout(act_row)
        hl.addWidget(self.host_error)

        ep_box = QGroupBox("OpenAI-compatible endpoints", self)
        el = QVBoxLayout(ep_box)
        el.addWidget(self.endpoints)
        ep_add_row = QHBoxLayout()
        ep_add_row.addWidget(self.ep_name, 1)
        ep_add_row.addWidget(self.ep_url, 2)
        ep_add_row.addWidget(self.ep_add)
        el.addLayout(ep_add_row)
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.key_save)
        key_row.addWidget(self.key_delete)
        el.addLayout(key_row)
        ep_act = QHBoxLayout()
        ep_act.addWidget(self.ep_remove)
        ep_act.addWidget(self.ep_test)
        ep_act.addWidget(self.ep_result, 1)
        el.addLayout(ep_act)
        el.addWidget(self.ep_error)

        layout = QVBoxLayout(self)
        layout.addWidget(halext_box)
        layout.addWidget(hosts_box)
        layout.addWidget(ep_box)
        layout.addStretch(1)
        self.reload()
        self.refresh_sign_in_state()

    def _button(self, text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
        b = QPushButton(text, self)
        b.setToolTip(tip)
        b.setAccessibleName(tip.split(" (")[0])
        b.clicked.connect(lambda _checked=False: slot())
        return b

    # -- halext URL

    def _commit_url(self) -> None:
        text = self.halext_url.text().strip()
        # editingFinished also fires on focus loss: an unchanged value is not a new change
        # (and must not ask for the same confirmation twice).
        if text.rstrip("/") == self.settings.halext_url:
            return
        if text.lower().startswith("http://") and not is_loopback_url(text):
            host = host_of(text) or text
            if not self.dialog.confirm(
                "Unencrypted connection",
                f"Your password and chats would travel unencrypted to {host} (plain http://). "
                "Anyone on the network path could read them.\n\n"
                "Use https:// unless this is a test server on a network you trust. Use it anyway?",
            ):
                self.reload("halext_url")
                self.url_error.show_error(None)
                return
        self.write("halext_url", text, self.url_error, revert=False)

    # -- sign in / out

    def refresh_sign_in_state(self) -> None:
        user = self.dialog.services.signed_in_user()
        offline = self.settings.offline
        self.sign_status.setText(f"Signed in as {user}" if user else "Not signed in")
        self.sign_out_button.setEnabled(bool(user))
        self.sign_in_button.setEnabled(not offline and bool(self.settings.effective_halext_url()))
        self.sign_in_button.setToolTip(
            "Offline mode is on: halext is not contacted (Settings → AI)"
            if offline
            else "Sign in to the halext server (Enter in the password field)"
        )

    def sign_in(self) -> None:
        if not self.sign_in_button.isEnabled():
            return
        username = self.username.text().strip()
        password = self.password.text()
        if not username or not password:
            self.sign_status_error.show_error("Enter your halext username and password")
            return
        self.sign_status_error.show_error(None)
        self.sign_in_button.setEnabled(False)
        self.sign_status.setText("Signing in…")
        self.dialog.bridge.call(
            self.dialog.services.sign_in(username, password, self.remember.isChecked()),
            self._signed_in,
            self._sign_in_failed,
        )

    def _signed_in(self, user: str) -> None:
        self.password.clear()
        self.refresh_sign_in_state()
        self.sign_status.setText(f"Signed in as {user}")
        self.sign_out_button.setEnabled(True)
        self.dialog.sig_signed_in.emit(user)

    def _sign_in_failed(self, exc: BaseException) -> None:
        self.refresh_sign_in_state()
        self.sign_status_error.show_error(error_text(exc))

    def sign_out(self) -> None:
        self.sign_out_button.setEnabled(False)
        self.dialog.bridge.call(
            self.dialog.services.sign_out(), self._signed_out, self._sign_out_failed
        )

    def _signed_out(self, _result: object) -> None:
        self.refresh_sign_in_state()
        self.sign_status_error.show_error(None)
        self.dialog.sig_signed_out.emit()

    def _sign_out_failed(self, exc: BaseException) -> None:
        self.refresh_sign_in_state()
        self.sign_status_error.show_error(error_text(exc))

    # -- Ollama hosts

    def _commit_hosts(self) -> None:
        if not self._filling:
            self.write("ollama_hosts", self.hosts.entries(), self.host_error)

    def _add_host(self) -> None:
        name, url = self.host_name.text().strip(), self.host_url.text().strip()
        if not name or not url:
            self.host_error.show_error("Give the new host a name and a URL")
            return
        if self.write(
            "ollama_hosts", [*self.hosts.entries(), {"name": name, "url": url}], self.host_error
        ):
            self.host_name.clear()
            self.host_url.clear()

    def _remove_host(self) -> None:
        row = self.hosts.selected_row()
        if row < 0:
            self.host_error.show_error("Select a host to remove")
            return
        entries = self.hosts.entries()
        del entries[row]
        if self.write("ollama_hosts", entries, self.host_error):
            self.host_result.clear()  # a Test result may name the host just removed

    def _test_host(self) -> None:
        row = self.hosts.selected_row()
        entries = self.hosts.entries()
        if row < 0 and entries:
            row = 0  # nothing selected: test the default host
        if row < 0:
            self.host_result.setText("Add a host first")
            return
        entry = entries[row]
        self.host_test.setEnabled(False)
        self.host_result.setText(f"Testing {entry['name']}…")

        def done(health: Health) -> None:
            self.host_test.setEnabled(True)
            self.host_result.setText(f"{entry['name']}: {health_text(health)}")

        def failed(exc: BaseException) -> None:
            self.host_test.setEnabled(True)
            self.host_result.setText(f"{entry['name']}: ✗ {error_text(exc)}")

        self.dialog.bridge.call(self.dialog.services.test_ollama(entry["url"]), done, failed)

    # -- OpenAI-compatible endpoints

    def _commit_endpoints(self) -> None:
        if self._filling:
            return
        before = [e.name for e in self.settings.openai_endpoints]
        entries = self.endpoints.entries()
        if self.write("openai_endpoints", entries, self.ep_error):
            # A renamed endpoint keeps its key: move it to the new name.
            for old, new in zip(before, [e["name"] for e in entries], strict=False):
                if old != new:
                    key = self.secrets.get(KEY_PREFIX + old)
                    if key is not None:
                        self.secrets.set(KEY_PREFIX + new, key)
                        self.secrets.delete(KEY_PREFIX + old)
            self.reload("openai_endpoints")

    def _add_endpoint(self) -> None:
        name, url = self.ep_name.text().strip(), self.ep_url.text().strip()
        if not name or not url:
            self.ep_error.show_error("Give the new endpoint a name and a URL")
            return
        entries = [*self.endpoints.entries(), {"name": name, "url": url}]
        if self.write("openai_endpoints", entries, self.ep_error):
            self.ep_name.clear()
            self.ep_url.clear()
            self.endpoints.selectRow(self.endpoints.rowCount() - 1)

    def _remove_endpoint(self) -> None:
        row = self.endpoints.selected_row()
        if row < 0:
            self.ep_error.show_error("Select an endpoint to remove")
            return
        entries = self.endpoints.entries()
        name = entries.pop(row)["name"]
        if self.write("openai_endpoints", entries, self.ep_error):
            self.secrets.delete(KEY_PREFIX + name)
            self._keys_changed()

    def _selected_endpoint(self) -> dict[str, str] | None:
        row = self.endpoints.selected_row()
        entries = self.endpoints.entries()
        return entries[row] if 0 <= row < len(entries) else None

    def _save_key(self) -> None:
        ep = self._selected_endpoint()
        key = self.api_key.text().strip()
        if ep is None:
            self.ep_error.show_error("Select the endpoint the key belongs to")
            return
        if not key:
            self.ep_error.show_error("Paste the API key first")
            return
        self.secrets.set(KEY_PREFIX + ep["name"], key)
        self.api_key.clear()
        self.ep_error.show_error(None)
        self._keys_changed()

    def _delete_key(self) -> None:
        ep = self._selected_endpoint()
        if ep is not None:
            self.secrets.delete(KEY_PREFIX + ep["name"])
            self._keys_changed()

    def _keys_changed(self) -> None:
        self.reload("openai_endpoints")
        # Keys are not settings, so no settings change will rebuild the routes: ask for it.
        self.dialog.bridge.call(
            self.dialog.services.rebuild_backends(),
            lambda _r: self.dialog.sig_routes_rebuilt.emit(),
            self._rebuild_failed,
        )

    def _rebuild_failed(self, exc: BaseException) -> None:
        self.ep_error.show_error(error_text(exc))

    def _update_key_buttons(self) -> None:
        ep = self._selected_endpoint()
        has_key = ep is not None and self.secrets.get(KEY_PREFIX + ep["name"]) is not None
        self.key_save.setEnabled(ep is not None)
        self.key_delete.setEnabled(has_key)
        self.ep_test.setEnabled(ep is not None)
        self.api_key.setEnabled(ep is not None)
        self.api_key.setPlaceholderText(
            f"API key for {ep['name']} (replaces the stored one)"
            if ep and has_key
            else f"API key for {ep['name']}"
            if ep
            else "select an endpoint to set its API key"
        )

    def _test_endpoint(self) -> None:
        ep = self._selected_endpoint()
        if ep is None:
            self.ep_result.setText("Select an endpoint to test")
            return
        self.ep_test.setEnabled(False)
        self.ep_result.setText(f"Testing {ep['name']}…")

        def done(health: Health) -> None:
            self.ep_test.setEnabled(True)
            self.ep_result.setText(f"{ep['name']}: {health_text(health)}")

        def failed(exc: BaseException) -> None:
            self.ep_test.setEnabled(True)
            self.ep_result.setText(f"{ep['name']}: ✗ {error_text(exc)}")

        key = self.secrets.get(KEY_PREFIX + ep["name"])
        self.dialog.bridge.call(
            self.dialog.services.test_openai(ep["name"], ep["url"], key), done, failed
        )

    # -- reflect

    def _fill(self, table: _HostTable, rows: list[list[str]], editable_cols: int) -> None:
        self._filling = True
        try:
            selected = table.selected_row()
            table.setRowCount(len(rows))
            for r, values in enumerate(rows):
                for c, value in enumerate(values):
                    item = QTableWidgetItem(value)
                    if c >= editable_cols:
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    table.setItem(r, c, item)
            if 0 <= selected < len(rows):
                table.selectRow(selected)
        finally:
            self._filling = False

    def reload(self, key: str | None = None) -> None:
        s = self.settings
        if key in (None, "halext_url"):
            if self.halext_url.text() != s.halext_url:
                self.halext_url.setText(s.halext_url)
            effective = s.effective_halext_url()
            self.url_note.setText(f"HALEXT_URL in the environment overrides this: {effective}")
            self.url_note.setVisible(effective != s.halext_url)
        if key in (None, "halext_username") and not self.username.text():
            self.username.setText(s.halext_username)
        if key in (None, "halext_remember"):
            self.remember.blockSignals(True)
            self.remember.setChecked(s.halext_remember)
            self.remember.blockSignals(False)
        if key in (None, "ollama_hosts"):
            rows = [[h.name, h.url] for h in s.ollama_hosts]
            self._fill(self.hosts, rows, 2)
            self.host_remove.setEnabled(bool(rows))
        if key in (None, "openai_endpoints"):
            rows = [
                [
                    e.name,
                    e.url,
                    "key stored in keyring" if self.secrets.get(KEY_PREFIX + e.name) else "no key",
                ]
                for e in s.openai_endpoints
            ]
            if not self.secrets.persistent:
                rows = [
                    [n, u, k.replace("in keyring", "for this session") if k != "no key" else k]
                    for n, u, k in rows
                ]
            self._fill(self.endpoints, rows, 2)
            self.ep_remove.setEnabled(bool(rows))
            self._update_key_buttons()
        if key in (None, "offline", "halext_url"):
            self.refresh_sign_in_state()

    def key_status(self, name: str) -> str:
        """The key column's text for endpoint ``name`` (for tests and accessibility)."""
        for r in range(self.endpoints.rowCount()):
            cell, status = self.endpoints.item(r, 0), self.endpoints.item(r, 2)
            if cell is not None and status is not None and cell.text() == name:
                return status.text()
        return ""


# ---- Appearance -----------------------------------------------------------------------------


class AppearancePage(_Page):
    """Theme and font size."""

    def __init__(self, dialog: SettingsDialog) -> None:
        super().__init__(dialog)
        self.theme_error = FieldError("Theme", self)
        self.theme = QComboBox(self)
        self.theme.setAccessibleName("Theme")
        self.theme.setToolTip("Follow the system's light/dark choice, or force one")
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.currentIndexChanged.connect(
            lambda _i: self.write("theme", self.theme.currentData(), self.theme_error)
        )
        self.font_size = QSpinBox(self)
        self.font_size.setAccessibleName("Font size")
        self.font_size.setToolTip("Points for the chat text; the lowest value follows the system")
        self.font_size.setRange(FONT_SYSTEM_SENTINEL, 32)
        self.font_size.setSpecialValueText("System")
        self.font_size.setSuffix(" pt")
        self.font_size.setMinimumWidth(110)
        self.font_size.valueChanged.connect(self._commit_font)
        self.font_error = FieldError("Font size", self)

        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        theme_col = QVBoxLayout()
        theme_col.addWidget(self.theme)
        theme_col.addWidget(self.theme_error)
        form.addRow("Theme:", theme_col)
        font_col = QVBoxLayout()
        font_col.addWidget(self.font_size)
        font_col.addWidget(self.font_error)
        form.addRow("Font size:", font_col)
        self.reload()

    def _commit_font(self, value: int) -> None:
        self.write("font_size", 0 if value == FONT_SYSTEM_SENTINEL else value, self.font_error)

    def reload(self, key: str | None = None) -> None:
        s = self.settings
        if key in (None, "theme"):
            i = self.theme.findData(s.theme)
            self.theme.blockSignals(True)
            self.theme.setCurrentIndex(max(i, 0))
            self.theme.blockSignals(False)
        if key in (None, "font_size"):
            self.font_size.blockSignals(True)
            self.font_size.setValue(s.font_size or FONT_SYSTEM_SENTINEL)
            self.font_size.blockSignals(False)


# ---- Data -------------------------------------------------------------------------------------


class DataPage(_Page):
    """Where the files live (read-only, with Open folder) and usage retention."""

    def __init__(self, dialog: SettingsDialog, db_file: Path, settings_file: Path | None) -> None:
        super().__init__(dialog)
        self.retention_error = FieldError("Usage retention", self)
        self.db_path = self._path_field("Database location", db_file)
        self.settings_path = self._path_field("Settings file location", settings_file)
        self.open_db = self._open_button("Database", db_file)
        self.open_settings = self._open_button("Settings", settings_file)
        self.retention = QSpinBox(self)
        self.retention.setAccessibleName("Usage retention days")
        self.retention.setToolTip(
            "Usage rows older than this are deleted; the lowest value keeps them forever"
        )
        self.retention.setRange(0, 3650)
        self.retention.setSpecialValueText("Keep forever")
        self.retention.setSuffix(" days")
        self.retention.valueChanged.connect(
            lambda v: self.write("usage_retention_days", v, self.retention_error)
        )

        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, field, button in (
            ("Database:", self.db_path, self.open_db),
            ("Settings:", self.settings_path, self.open_settings),
        ):
            row = QHBoxLayout()
            row.addWidget(field, 1)
            row.addWidget(button)
            form.addRow(label, row)
        ret_row = QHBoxLayout()
        ret_row.addWidget(self.retention)
        ret_row.addStretch(1)
        ret_col = QVBoxLayout()
        ret_col.addLayout(ret_row)
        ret_col.addWidget(self.retention_error)
        form.addRow("Keep usage for:", ret_col)
        note = _muted(
            QLabel(
                "Passwords, tokens and API keys are in the system keyring, never in these files.",
                self,
            )
        )
        form.addRow("", note)
        self.reload()

    def _path_field(self, name: str, path: Path | None) -> QLineEdit:
        field = QLineEdit(str(path) if path else "in memory (not saved)", self)
        field.setReadOnly(True)
        field.setAccessibleName(name)
        field.setToolTip(str(path) if path else "")
        return field

    def _open_button(self, what: str, path: Path | None) -> QPushButton:
        b = QPushButton("Open folder", self)
        b.setAccessibleName(f"Open {what.lower()} folder")
        b.setToolTip(f"Show the {what.lower()} folder in the file manager")
        b.setEnabled(path is not None)
        if path is not None:
            folder = path.parent
            b.clicked.connect(
                lambda _c=False: self.dialog.open_url(QUrl.fromLocalFile(str(folder)))
            )
        return b

    def reload(self, key: str | None = None) -> None:
        if key in (None, "usage_retention_days"):
            self.retention.blockSignals(True)
            self.retention.setValue(self.settings.usage_retention_days)
            self.retention.blockSignals(False)


# ---- the dialog --------------------------------------------------------------------------------


class SettingsDialog(QDialog):
    """Settings, applied as you go.

    Args:
        services: the app's services (settings, secrets, sign-in, tests).
        bridge: runs the async actions on the loop thread.
        notifier: the settings change signal (the dialog follows outside changes).
        parent: the main window.

    Attributes:
        confirm: ``confirm(title, text) -> bool``; a Yes/No QMessageBox by default.
            Tests and embedders may replace it.
        open_url: opens a folder; ``QDesktopServices.openUrl`` by default.

    Signals:
        sig_reset_done(): every setting went back to its default.
        sig_signed_in(str): sign-in succeeded as this user.
        sig_signed_out(): the user signed out.
        sig_routes_rebuilt(): an API key changed and the routes were rebuilt (refresh models).
    """

    sig_reset_done = Signal()
    sig_signed_in = Signal(str)
    sig_signed_out = Signal()
    sig_routes_rebuilt = Signal()

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        notifier: SettingsNotifier,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.bridge = bridge
        self.confirm: Confirm = self._ask
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.setSizeGripEnabled(True)

        db = getattr(getattr(services, "db", None), "path", None)
        db_file = Path(db) if db else paths.db_path()
        settings_file = services.settings.path

        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName("Settings sections")
        self.ai = AiPage(self)
        self.connections = ConnectionsPage(self)
        self.appearance = AppearancePage(self)
        self.data = DataPage(self, db_file, settings_file)
        self.tabs.addTab(self.ai, "AI")
        # The Connections page is the tallest: let it scroll on small screens.
        scroll = QScrollArea(self.tabs)
        scroll.setWidget(self.connections)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.tabs.addTab(scroll, "Connections")
        self.tabs.addTab(self.appearance, "Appearance")
        self.tabs.addTab(self.data, "Data")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setAccessibleName("Close settings")
        close.setToolTip("Changes are already applied (Esc)")
        buttons.rejected.connect(self.close)
        hint = _muted(QLabel("Changes apply at once.", self))

        bottom = QHBoxLayout()
        bottom.addWidget(hint, 1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)
        self.resize(660, 760)

        notifier.sig_changed.connect(self._on_setting_changed)

    # ---- public API -------------------------------------------------------------------------

    def set_listing(self, listing: ModelListing) -> None:
        """Offer the listed models in the default-model and fallback boxes."""
        self.ai.set_listing(listing)

    def show_tab(self, name: str) -> None:
        """``ai``, ``connections``, ``appearance`` or ``data``."""
        if name in TAB_NAMES:
            self.tabs.setCurrentIndex(TAB_NAMES.index(name))

    def reload_all(self) -> None:
        for page in (self.ai, self.connections, self.appearance, self.data):
            page.reload()

    # ---- internals ------------------------------------------------------------------------

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _on_setting_changed(self, key: str, _value: object) -> None:
        for page in (self.ai, self.connections, self.appearance, self.data):
            page.reload(key)
