"""Settings → Connections: the halext URL and sign-in, Ollama hosts, OpenAI-compatible
endpoints and their keys.

Secrets never pass through settings: an endpoint's API key goes to the secret store as
``openai-key:<name>``, an Ollama host's as ``ollama-key:<name>``, and the password only to
``services.sign_in``.

A password, token or key bound for a plain ``http://`` address of another machine needs the
user's explicit consent, asked here (when the address is typed in, before signing in, before
a key is saved) and kept as the ``plain_http_ok`` setting; without it the routes do not
send them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.backends.http_guard import is_plain_http_remote, plain_http_key
from halext_desktop.routing.netloc import host_of
from halext_desktop.routing.types import Health
from halext_desktop.ui.settings.common import FieldError, Page, error_text, health_text, muted

if TYPE_CHECKING:
    from halext_desktop.ui.settings.dialog import SettingsDialog

KEY_PREFIX = "openai-key:"
OLLAMA_KEY_PREFIX = "ollama-key:"
# A host's URL cell when OLLAMA_HOST overrides it: the URL in the settings (the cell shows
# the one in use), or ENV_ONLY for a host that exists only because of the environment.
STORED_URL_ROLE = Qt.ItemDataRole.UserRole + 1
ENV_ONLY = "env-only"


class HostTable(QTableWidget):
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
        """The rows as the settings hold them (what a change writes back): a URL the
        environment overrides is the stored one, a host only the environment adds is left
        out."""
        out = []
        for r in range(self.rowCount()):
            name, url = self.item(r, 0), self.item(r, 1)
            stored = url.data(STORED_URL_ROLE) if url is not None else None
            if stored == ENV_ONLY:
                continue
            out.append(
                {
                    "name": name.text().strip() if name else "",
                    "url": stored
                    if isinstance(stored, str)
                    else (url.text().strip() if url else ""),
                }
            )
        return out

    def shown(self, row: int) -> tuple[str, str]:
        """(name, URL in use) of a row, as shown."""
        name, url = self.item(row, 0), self.item(row, 1)
        return (name.text().strip() if name else "", url.text().strip() if url else "")

    def selected_row(self) -> int:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else -1


class ConnectionsPage(Page):
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
        self.url_note = muted(QLabel(self))
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
        # Servers the user accepted plain http for (a password, token or key may go there
        # unencrypted): shown, and revocable in one click.
        self.plain_http_note = muted(QLabel(self))
        self.plain_http_note.setAccessibleName("Plain http allowed for")
        self.plain_http_note.setWordWrap(True)
        self.plain_http_forget = QPushButton("Forget", self)
        self.plain_http_forget.setAccessibleName("Forget plain http consents")
        self.plain_http_forget.setToolTip(
            "Stop sending passwords, tokens and keys to these servers over plain http"
        )
        self.plain_http_forget.clicked.connect(
            lambda _checked=False: self.write("plain_http_ok", [], self.sign_status_error)
        )
        self.keyring_note = muted(QLabel(self))
        self.keyring_note.setAccessibleName("Keyring note")
        self.keyring_note.setVisible(not self.secrets.persistent and bool(self.secrets.note))
        self.keyring_note.setText(f"Note: {self.secrets.note}" if self.secrets.note else "")

        # -- Ollama hosts
        self.hosts = HostTable("Ollama hosts", ["Name", "URL", "API key"], self)
        self.hosts.setToolTip(
            "The first host is the default route (ollama/<model>); double-click to edit. "
            "A key is sent to its own host only."
        )
        self.hosts.itemChanged.connect(lambda _i: self._commit_hosts())
        self.hosts.itemSelectionChanged.connect(self._update_host_key_buttons)
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
        self.host_key = QLineEdit(self)
        self.host_key.setAccessibleName("API key for the selected Ollama host")
        self.host_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.host_key.setPlaceholderText("API key for the selected host (most need none)")
        self.host_key.returnPressed.connect(self._save_host_key)
        self.host_key_save = self._button(
            "Save key", "Store the selected host's API key in the system keyring",
            self._save_host_key,
        )  # fmt: skip
        self.host_key_delete = self._button(
            "Remove key", "Delete the selected host's API key from the keyring",
            self._delete_host_key,
        )  # fmt: skip
        self.host_result = muted(QLabel(self))
        self.host_result.setAccessibleName("Ollama test result")
        # OLLAMA_HOST in the environment decides where the first host is: say so.
        self.host_env_note = QLabel(self)
        self.host_env_note.setAccessibleName("Environment override")
        self.host_env_note.setWordWrap(True)
        self.host_env_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.host_env_note.hide()
        self.host_error = FieldError("Ollama hosts", self)

        # -- OpenAI-compatible endpoints
        self.endpoints = HostTable("OpenAI-compatible endpoints", ["Name", "URL", "API key"], self)
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
        self.ep_result = muted(QLabel(self))
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
        plain_row = QHBoxLayout()
        plain_row.addWidget(self.plain_http_note, 1)
        plain_row.addWidget(self.plain_http_forget)
        hform.addRow("", plain_row)

        hosts_box = QGroupBox("Ollama hosts", self)
        hl = QVBoxLayout(hosts_box)
        hl.addWidget(self.hosts)
        hl.addWidget(self.host_env_note)
        add_row = QHBoxLayout()
        add_row.addWidget(self.host_name, 1)
        add_row.addWidget(self.host_url, 2)
        add_row.addWidget(self.host_add)
        hl.addLayout(add_row)
        host_key_row = QHBoxLayout()
        host_key_row.addWidget(self.host_key, 1)
        host_key_row.addWidget(self.host_key_save)
        host_key_row.addWidget(self.host_key_delete)
        hl.addLayout(host_key_row)
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
        if is_plain_http_remote(text) and not self._consent_to_plain_http(
            text, "Your password and chats"
        ):
            self.reload("halext_url")
            self.url_error.show_error(None)
            return
        self.write("halext_url", text, self.url_error, revert=False)

    def _consent_to_plain_http(self, url: str, what: str) -> bool:
        """Ask once per server before a credential crosses plain http to another machine;
        the answer "yes" is kept (setting ``plain_http_ok``), so the routes send it."""
        key = plain_http_key(url)
        if key in self.settings.plain_http_ok:
            return True
        host = host_of(url) or url
        if not self.dialog.confirm(
            "Unencrypted connection",
            f"{what} would travel unencrypted to {host} (plain http://). "
            "Anyone on the network path could read them.\n\n"
            "Use https:// unless this is a test server on a network you trust. Use it anyway?",
        ):
            return False
        self.write("plain_http_ok", [*self.settings.plain_http_ok, key], self.url_error)
        return key in self.settings.plain_http_ok

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
        url = self.settings.effective_halext_url()
        # The address may come from HALEXT_URL or `config set`, never confirmed here.
        if is_plain_http_remote(url) and not self._consent_to_plain_http(
            url, "Your password and chats"
        ):
            self.sign_status_error.show_error(
                f"Not signed in: {plain_http_key(url)} is plain http://, and the password "
                "would travel unencrypted. Use an https:// address."
            )
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
        if row < 0 and self.hosts.rowCount():
            row = 0  # nothing selected: test the default host
        if row < 0:
            self.host_result.setText("Add a host first")
            return
        # The address the app really talks to (OLLAMA_HOST's, when it overrides the setting).
        name, url = self.hosts.shown(row)
        entry = {"name": name, "url": url}
        self.host_test.setEnabled(False)
        self.host_result.setText(f"Testing {entry['name']}…")

        def done(health: Health) -> None:
            self.host_test.setEnabled(True)
            self.host_result.setText(f"{entry['name']}: {health_text(health)}")

        def failed(exc: BaseException) -> None:
            self.host_test.setEnabled(True)
            self.host_result.setText(f"{entry['name']}: ✗ {error_text(exc)}")

        # done/failed are closures, not bound methods: name the page as their receiver.
        self.dialog.bridge.call(
            self.dialog.services.test_ollama(entry["url"]), done, failed, owner=self
        )

    def _selected_host(self) -> dict[str, str] | None:
        row = self.hosts.selected_row()
        entries = self.hosts.entries()
        return entries[row] if 0 <= row < len(entries) else None

    def _save_host_key(self) -> None:
        host = self._selected_host()
        key = self.host_key.text().strip()
        if host is None:
            self.host_error.show_error("Select the host the key belongs to")
            return
        if not key:
            self.host_error.show_error("Paste the API key first")
            return
        if is_plain_http_remote(host["url"]) and not self._consent_to_plain_http(
            host["url"], "The API key"
        ):
            self.host_error.show_error(
                f"Not saved: {plain_http_key(host['url'])} is plain http://; use https://"
            )
            return
        self.secrets.set(OLLAMA_KEY_PREFIX + host["name"], key)
        self.host_key.clear()
        self.host_error.show_error(None)
        self._host_keys_changed()

    def _delete_host_key(self) -> None:
        host = self._selected_host()
        if host is not None:
            self.secrets.delete(OLLAMA_KEY_PREFIX + host["name"])
            self._host_keys_changed()

    def _host_keys_changed(self) -> None:
        self.reload("ollama_hosts")
        self.dialog.bridge.call(
            self.dialog.services.rebuild_backends(),
            lambda _r: self.dialog.sig_routes_rebuilt.emit(),
            lambda exc: self.host_error.show_error(error_text(exc)),
            owner=self,
        )

    def _update_host_key_buttons(self) -> None:
        host = self._selected_host()
        has_key = host is not None and bool(self.secrets.get(OLLAMA_KEY_PREFIX + host["name"]))
        self.host_key.setEnabled(host is not None)
        self.host_key_save.setEnabled(host is not None)
        self.host_key_delete.setEnabled(has_key)

    def host_key_status(self, name: str) -> str:
        """The hosts table's key column for ``name`` (for tests and accessibility)."""
        for r in range(self.hosts.rowCount()):
            cell, status = self.hosts.item(r, 0), self.hosts.item(r, 2)
            if cell is not None and status is not None and cell.text() == name:
                return status.text()
        return ""

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
        if is_plain_http_remote(ep["url"]) and not self._consent_to_plain_http(
            ep["url"], "The API key"
        ):
            self.ep_error.show_error(
                f"Not saved: {plain_http_key(ep['url'])} is plain http://; use https://"
            )
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
            owner=self,
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
            self.dialog.services.test_openai(ep["name"], ep["url"], key), done, failed, owner=self
        )

    # -- reflect

    def _fill(self, table: HostTable, rows: list[list[str]], editable_cols: int) -> None:
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
            hosts = s.effective_ollama_hosts()
            rows = [
                [
                    h.name,
                    h.url,
                    "key stored in keyring"
                    if self.secrets.get(OLLAMA_KEY_PREFIX + h.name)
                    else "no key",
                ]
                for h in hosts
            ]
            self._fill(self.hosts, rows, 2)
            self._show_env_override()
            self.host_remove.setEnabled(bool(s.ollama_hosts))
            self._update_host_key_buttons()
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
        if key in (None, "plain_http_ok"):
            consents = s.plain_http_ok
            self.plain_http_note.setText(
                "Plain http:// allowed (unencrypted) for: " + ", ".join(consents)
            )
            self.plain_http_note.setVisible(bool(consents))
            self.plain_http_forget.setVisible(bool(consents))
        if key in (None, "offline", "halext_url"):
            self.refresh_sign_in_state()

    def _show_env_override(self) -> None:
        """OLLAMA_HOST overrides the first host's URL (or adds a host): the table shows the
        address in use, marked as coming from the environment, and a note says so."""
        s = self.settings
        env_url = s.env_ollama_url()
        if env_url is None or not self.hosts.rowCount():
            self.host_env_note.hide()
            return
        stored = s.ollama_hosts
        cell = self.hosts.item(0, 1)
        name_cell = self.hosts.item(0, 0)
        if cell is None or name_cell is None:
            return
        self._filling = True
        try:
            cell.setData(STORED_URL_ROLE, stored[0].url if stored else ENV_ONLY)
            cell.setFlags(cell.flags() & ~Qt.ItemFlag.ItemIsEditable)
            font = cell.font()
            font.setItalic(True)
            cell.setFont(font)
            cell.setText(f"{env_url}")
            where = (
                f"the setting, {stored[0].url}, applies when it is unset"
                if stored
                else "no host is configured in Settings"
            )
            tip = f"From OLLAMA_HOST in the environment; {where}"
            cell.setToolTip(tip)
            name_cell.setToolTip(tip)
            if not stored:
                name_cell.setFlags(name_cell.flags() & ~Qt.ItemFlag.ItemIsEditable)
        finally:
            self._filling = False
        name = name_cell.text()
        shown = f"OLLAMA_HOST={s.env_value('OLLAMA_HOST')}"
        self.host_env_note.setText(
            f"⚠ {shown} in the environment: the host “{name}” is reached at {env_url} "
            + (
                f"(Settings says {stored[0].url}, used when OLLAMA_HOST is unset)."
                if stored
                else "(it is not in Settings)."
            )
        )
        self.host_env_note.show()

    def key_status(self, name: str) -> str:
        """The key column's text for endpoint ``name`` (for tests and accessibility)."""
        for r in range(self.endpoints.rowCount()):
            cell, status = self.endpoints.item(r, 0), self.endpoints.item(r, 2)
            if cell is not None and status is not None and cell.text() == name:
                return status.text()
        return ""
