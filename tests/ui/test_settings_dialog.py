"""The settings dialog and the settings notifier.

Settings are real (a file in the test's home); secrets go to the real SecretStore over the
in-memory keyring the conftest installs; Sign in / Test use a small fake of the app's async
services (no network; the lead's end-to-end tests drive the real ones).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import (
    QCheckBox,
    QMessageBox,
    QStyle,
    QStyleOptionButton,
    QTableWidget,
    QTableWidgetItem,
)
from pytestqt.qtbot import QtBot

from halext_desktop.app.loop_thread import LoopThread
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import Health, Locality, ModelInfo, ModelListing
from halext_desktop.storage.logfile import log_path
from halext_desktop.storage.secrets import MemorySecretStore, SecretStore
from halext_desktop.storage.settings import DEFAULT_HALEXT_URL, Settings
from halext_desktop.ui.bridge import Bridge
from halext_desktop.ui.qt_settings import SettingsNotifier
from halext_desktop.ui.settings.dialog import SettingsDialog
from tests.conftest import MemoryKeyring
from tests.helpers.fake_services import FakeServices

# The offscreen platform warns that it cannot propagate a shown window's size hints.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support")

SECRET_KEY = "sk-test-DO-NOT-PERSIST-4242"
PASSWORD = "hunter2-secret-pw"


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    lt = LoopThread().start()
    try:
        yield Bridge(lt)
    finally:
        lt.stop()


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return Settings(isolated_home / "settings.json")


@pytest.fixture
def services(settings: Settings) -> FakeServices:
    return FakeServices(settings, secrets=SecretStore())


def cell(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    assert item is not None, f"no cell at {row}, {column}"
    return item


@pytest.fixture
def dialog(qtbot: QtBot, services: FakeServices, bridge: Bridge) -> Iterator[SettingsDialog]:
    notifier = SettingsNotifier(services.settings)
    dlg = SettingsDialog(services, bridge, notifier)
    qtbot.addWidget(dlg)
    dlg.confirms = []  # type: ignore[attr-defined]
    dlg.show()
    qtbot.waitExposed(dlg)
    yield dlg
    notifier.close()


def answer(dlg: SettingsDialog, yes: bool) -> None:
    """Make the dialog's confirmation answer ``yes`` and record what it asked."""

    def confirm(title: str, text: str) -> bool:
        dlg.confirms.append(text)  # type: ignore[attr-defined]
        return yes

    dlg.confirm = confirm


def click_box(qtbot: QtBot, box: QCheckBox) -> None:
    """Click a check box where a user would: on its indicator."""
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=rect.center())


def file_text(settings: Settings) -> str:
    assert settings.path is not None
    return settings.path.read_text(encoding="utf-8") if settings.path.exists() else ""


# ---- the notifier ---------------------------------------------------------------------------


def test_notifier_emits_on_the_gui_thread_for_changes_from_any_thread(qtbot: QtBot) -> None:
    settings = Settings(None)
    notifier = SettingsNotifier(settings)
    seen: list[tuple[str, Any, bool]] = []
    gui = threading.current_thread()
    notifier.sig_changed.connect(
        lambda k, v: seen.append((k, v, threading.current_thread() is gui))
    )
    settings.set("offline", True)  # same thread: delivered before set() returns
    assert seen == [("offline", True, True)]

    worker = threading.Thread(target=settings.set, args=("theme", "dark"))
    with qtbot.waitSignal(notifier.sig_changed, timeout=2000) as blocker:
        worker.start()
        worker.join(timeout=5)
    assert blocker.args == ["theme", "dark"]
    assert seen[-1] == ("theme", "dark", True)

    notifier.close()
    settings.set("offline", False)
    assert len(seen) == 2


# ---- AI ---------------------------------------------------------------------------------------


def test_switches_write_through_at_once(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    ai = dialog.ai
    click_box(qtbot, ai.disable_cloud)
    assert settings.disable_cloud is True
    assert '"disable_cloud": true' in file_text(settings)
    click_box(qtbot, ai.offline)
    assert settings.offline is True
    click_box(qtbot, ai.disable_cloud)
    assert settings.disable_cloud is False


def test_dialog_reflects_external_changes(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    settings.set("disable_cloud", True)
    assert dialog.ai.disable_cloud.isChecked()

    def change_from_another_thread() -> None:
        settings.set("offline", True)
        settings.set("fallback_models", ["ollama/qwen2.5:7b"])
        settings.set("theme", "dark")
        settings.set("ollama_hosts", [{"name": "gpu", "url": "http://10.0.0.9:11434"}])

    worker = threading.Thread(target=change_from_another_thread)
    worker.start()
    worker.join(timeout=5)
    qtbot.waitUntil(lambda: dialog.appearance.theme.currentData() == "dark", timeout=2000)
    assert dialog.ai.offline.isChecked()
    assert dialog.ai._fallback_values() == ["ollama/qwen2.5:7b"]
    assert dialog.connections.hosts.entries() == [{"name": "gpu", "url": "http://10.0.0.9:11434"}]
    assert not dialog.connections.sign_in_button.isEnabled()  # offline: halext not contacted


def test_default_model_is_validated_inline(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    dialog.set_listing(
        ModelListing(
            [
                ModelInfo(
                    ModelRef.parse("ollama/llama3.1:8b"),
                    "llama3.1:8b",
                    "ollama",
                    "ollama",
                    Locality.LOCAL,
                )
            ]
        )
    )
    combo = dialog.ai.default_model
    assert combo.findText("ollama/llama3.1:8b") >= 0
    line = combo.lineEdit()
    assert line is not None
    qtbot.keyClicks(line, "llama3")
    qtbot.keyClick(line, Qt.Key.Key_Return)
    assert settings.default_model == ""
    assert dialog.ai.default_error.isVisible()
    assert "not a model reference" in dialog.ai.default_error.message()
    assert "Traceback" not in dialog.ai.default_error.message()
    assert combo.currentText() == "llama3"  # kept, so it can be corrected

    combo.setCurrentIndex(combo.findText("ollama/llama3.1:8b"))
    combo.activated.emit(combo.currentIndex())
    assert settings.default_model == "ollama/llama3.1:8b"
    assert not dialog.ai.default_error.isVisible()


def test_fallback_order_add_move_remove(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    ai = dialog.ai
    line = ai.fallback_input.lineEdit()
    assert line is not None
    for ref in ("ollama/qwen2.5:7b", "halext/client:3:qwen2.5:7b"):
        qtbot.keyClicks(line, ref)
        qtbot.mouseClick(ai.fallback_add, Qt.MouseButton.LeftButton)
    assert settings.fallback_models == ["ollama/qwen2.5:7b", "halext/client:3:qwen2.5:7b"]
    ai.fallbacks.setCurrentRow(1)
    qtbot.mouseClick(ai.fallback_up, Qt.MouseButton.LeftButton)
    assert settings.fallback_models == ["halext/client:3:qwen2.5:7b", "ollama/qwen2.5:7b"]
    assert ai.fallbacks.currentRow() == 0
    qtbot.mouseClick(ai.fallback_remove, Qt.MouseButton.LeftButton)
    assert settings.fallback_models == ["ollama/qwen2.5:7b"]
    qtbot.keyClicks(line, "no-slash")
    qtbot.mouseClick(ai.fallback_add, Qt.MouseButton.LeftButton)
    assert "not a model reference" in ai.fallback_error.message()
    assert settings.fallback_models == ["ollama/qwen2.5:7b"]


def test_reset_to_default_asks_first(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    settings.set("disable_cloud", True)
    settings.set("default_model", "ollama/qwen2.5:7b")
    settings.set("theme", "dark")
    settings.set("ollama_hosts", [{"name": "local", "url": "http://127.0.0.1:5555"}])
    answer(dialog, False)
    with qtbot.assertNotEmitted(dialog.sig_reset_done):
        qtbot.mouseClick(dialog.ai.reset_button, Qt.MouseButton.LeftButton)
    assert settings.disable_cloud is True and len(dialog.confirms) == 1  # type: ignore[attr-defined]

    answer(dialog, True)
    with qtbot.waitSignal(dialog.sig_reset_done, timeout=2000):
        qtbot.mouseClick(dialog.ai.reset_button, Qt.MouseButton.LeftButton)
    assert settings.disable_cloud is False and settings.default_model == ""
    assert not dialog.ai.disable_cloud.isChecked()
    # The AI reset keeps what the user set up elsewhere: connections and appearance.
    assert settings.theme == "dark" and dialog.appearance.theme.currentData() == "dark"
    assert settings.ollama_hosts[0].url == "http://127.0.0.1:5555"


def test_reset_through_the_default_message_box(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def question(_parent: Any, title: str, text: str, *_a: Any) -> QMessageBox.StandardButton:
        asked.append(title)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    settings.set("offline", True)
    with qtbot.waitSignal(dialog.sig_reset_done, timeout=2000):
        qtbot.mouseClick(dialog.ai.reset_button, Qt.MouseButton.LeftButton)
    assert asked == ["Reset to default"]
    assert settings.offline is False


# ---- Connections ------------------------------------------------------------------------------


def set_url(qtbot: QtBot, dialog: SettingsDialog, url: str) -> None:
    field = dialog.connections.halext_url
    field.selectAll()
    qtbot.keyClicks(field, url)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def test_plain_http_to_a_remote_host_needs_confirmation(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    answer(dialog, False)
    set_url(qtbot, dialog, "http://halext.example.com/api")
    assert settings.halext_url == DEFAULT_HALEXT_URL
    assert dialog.connections.halext_url.text() == DEFAULT_HALEXT_URL
    assert "travel unencrypted" in dialog.confirms[0]  # type: ignore[attr-defined]
    assert "halext.example.com" in dialog.confirms[0]  # type: ignore[attr-defined]

    answer(dialog, True)
    set_url(qtbot, dialog, "http://halext.example.com/api")
    assert settings.halext_url == "http://halext.example.com/api"


def test_https_and_loopback_http_apply_without_asking(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    answer(dialog, False)
    set_url(qtbot, dialog, "http://127.0.0.1:8000/api")
    assert settings.halext_url == "http://127.0.0.1:8000/api"
    set_url(qtbot, dialog, "https://halext.example.com/api/")
    assert settings.halext_url == "https://halext.example.com/api"
    assert dialog.confirms == []  # type: ignore[attr-defined]
    set_url(qtbot, dialog, "ftp://halext.example.com")
    assert settings.halext_url == "https://halext.example.com/api"
    assert "not an http:// or https:// URL" in dialog.connections.url_error.message()


def test_api_key_goes_to_the_keyring_and_never_to_settings(
    qtbot: QtBot,
    dialog: SettingsDialog,
    settings: Settings,
    services: FakeServices,
    memory_keyring: MemoryKeyring,
) -> None:
    c = dialog.connections
    dialog.show_tab("connections")
    qtbot.keyClicks(c.ep_name, "groq")
    qtbot.keyClicks(c.ep_url, "https://api.groq.com/openai/v1")
    qtbot.mouseClick(c.ep_add, Qt.MouseButton.LeftButton)
    assert settings.get("openai_endpoints") == [
        {"name": "groq", "url": "https://api.groq.com/openai/v1"}
    ]
    assert c.key_status("groq") == "no key"

    c.endpoints.selectRow(0)
    qtbot.keyClicks(c.api_key, SECRET_KEY)
    # No setting changes, so the window learns of the new routes from this signal.
    with qtbot.waitSignal(dialog.sig_routes_rebuilt, timeout=2000):
        qtbot.mouseClick(c.key_save, Qt.MouseButton.LeftButton)
    assert services.secrets.get("openai-key:groq") == SECRET_KEY
    assert ("halext-desktop", "openai-key:groq") in memory_keyring.store
    assert c.api_key.text() == ""
    assert c.key_status("groq") == "key stored in keyring"
    assert SECRET_KEY not in file_text(settings)
    assert SECRET_KEY not in repr(settings.as_dict())
    qtbot.waitUntil(lambda: ("rebuild_backends",) in services.calls, timeout=2000)

    # Test sends the stored key, and shows the exact failure on one line.
    qtbot.mouseClick(c.ep_test, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: c.ep_test.isEnabled() and "✗" in c.ep_result.text(), timeout=2000)
    assert c.ep_result.text() == "groq: ✗ HTTP 401 from api.example.com — check the API key"
    assert ("test_openai", "groq", "https://api.groq.com/openai/v1", SECRET_KEY) in services.calls

    # Removing the endpoint removes its key too.
    c.endpoints.selectRow(0)
    qtbot.mouseClick(c.ep_remove, Qt.MouseButton.LeftButton)
    assert settings.get("openai_endpoints") == []
    assert services.secrets.get("openai-key:groq") is None


def test_renaming_an_endpoint_moves_its_key(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings, services: FakeServices
) -> None:
    settings.set("openai_endpoints", [{"name": "lmstudio", "url": "http://127.0.0.1:1234/v1"}])
    services.secrets.set("openai-key:lmstudio", SECRET_KEY)
    cell(dialog.connections.endpoints, 0, 0).setText("local-llm")
    assert settings.get("openai_endpoints")[0]["name"] == "local-llm"
    assert services.secrets.get("openai-key:local-llm") == SECRET_KEY
    assert services.secrets.get("openai-key:lmstudio") is None


def test_ollama_hosts_add_edit_remove_and_test(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings, services: FakeServices
) -> None:
    c = dialog.connections
    dialog.show_tab("connections")
    qtbot.keyClicks(c.host_name, "studio")
    qtbot.keyClicks(c.host_url, "http://studio.lan:11434")
    qtbot.keyClick(c.host_url, Qt.Key.Key_Return)
    assert [h.name for h in settings.ollama_hosts] == ["local", "studio"]

    cell(c.hosts, 1, 1).setText("not a url")  # an invalid edit is refused and reverted
    assert "is not an http:// or https:// URL" in c.host_error.message()
    assert cell(c.hosts, 1, 1).text() == "http://studio.lan:11434"

    services.gate = asyncio.Event()
    c.hosts.selectRow(1)
    qtbot.mouseClick(c.host_test, Qt.MouseButton.LeftButton)
    assert not c.host_test.isEnabled()  # disabled while the test runs
    assert c.host_result.text() == "Testing studio…"
    lt = dialog.bridge.loop_thread
    lt.loop.call_soon_threadsafe(services.gate.set)
    qtbot.waitUntil(c.host_test.isEnabled, timeout=3000)
    assert c.host_result.text() == "studio: ✓ Ollama 0.12.3 · 7 models · 4 ms"
    assert ("test_ollama", "http://studio.lan:11434") in services.calls

    services.gate = None
    services.ollama_health = Health(
        "test", False, detail="Connection refused at studio.lan:11434 — is `ollama serve` running?"
    )
    qtbot.mouseClick(c.host_test, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "✗" in c.host_result.text(), timeout=3000)
    # A label shows no Markdown: the command is quoted, not in literal backticks.
    assert c.host_result.text() == (
        "studio: ✗ Connection refused at studio.lan:11434 — is “ollama serve” running?"
    )

    qtbot.mouseClick(c.host_remove, Qt.MouseButton.LeftButton)
    assert [h.name for h in settings.ollama_hosts] == ["local"]
    assert c.host_result.text() == ""  # no stale result naming the removed host


def test_sign_in_success_and_sign_out(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings, services: FakeServices
) -> None:
    c = dialog.connections
    dialog.show_tab("connections")
    assert c.sign_status.text() == "Not signed in"
    assert not c.sign_out_button.isEnabled()
    qtbot.keyClicks(c.username, "dev")
    qtbot.keyClicks(c.password, PASSWORD)
    click_box(qtbot, c.remember)
    services.gate = asyncio.Event()
    qtbot.mouseClick(c.sign_in_button, Qt.MouseButton.LeftButton)
    assert not c.sign_in_button.isEnabled()
    assert c.sign_status.text() == "Signing in…"
    with qtbot.waitSignal(dialog.sig_signed_in, timeout=3000) as blocker:
        dialog.bridge.loop_thread.loop.call_soon_threadsafe(services.gate.set)
    assert blocker.args == ["dev"]
    assert services.calls[0] == ("sign_in", "dev", PASSWORD, True)
    assert c.sign_status.text() == "Signed in as dev"
    assert c.password.text() == ""
    assert settings.halext_remember is True
    assert PASSWORD not in file_text(settings)

    with qtbot.waitSignal(dialog.sig_signed_out, timeout=3000):
        qtbot.mouseClick(c.sign_out_button, Qt.MouseButton.LeftButton)
    assert c.sign_status.text() == "Not signed in"


def test_sign_in_failure_shows_the_one_line_error(
    qtbot: QtBot, dialog: SettingsDialog, services: FakeServices
) -> None:
    c = dialog.connections
    dialog.show_tab("connections")
    services.sign_in_error = RouteError(
        ErrorKind.AUTH_FAILED, "Wrong username or password", "Check them and sign in again"
    )
    qtbot.keyClicks(c.username, "dev")
    qtbot.keyClicks(c.password, "wrong")
    qtbot.keyClick(c.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: c.sign_status_error.isVisible(), timeout=3000)
    assert c.sign_status_error.message() == (
        "Wrong username or password — Check them and sign in again"
    )
    assert c.sign_in_button.isEnabled()
    assert c.sign_status.text() == "Not signed in"

    c.password.clear()
    qtbot.mouseClick(c.sign_in_button, Qt.MouseButton.LeftButton)
    assert c.sign_status_error.message() == "Enter your halext username and password"


def test_an_unexpected_sign_in_error_is_named_and_points_to_the_log_file(
    qtbot: QtBot, dialog: SettingsDialog, services: FakeServices
) -> None:
    c = dialog.connections
    dialog.show_tab("connections")
    # A bug's text may carry internals (here a URL with a password): it is not echoed.
    services.sign_in_error = RuntimeError("https://dev:hunter2@example.com broke")
    qtbot.keyClicks(c.username, "dev")
    qtbot.keyClicks(c.password, "pw")
    qtbot.keyClick(c.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: c.sign_status_error.isVisible(), timeout=3000)
    message = c.sign_status_error.message()
    assert message.startswith("Unexpected error (RuntimeError)")
    assert str(log_path()) in message
    assert "hunter2" not in message


def test_keyring_note_shows_when_secrets_are_not_persistent(
    qtbot: QtBot, settings: Settings, bridge: Bridge
) -> None:
    services = FakeServices(settings, secrets=MemorySecretStore(persistent=False))
    notifier = SettingsNotifier(settings)
    dlg = SettingsDialog(services, bridge, notifier)
    qtbot.addWidget(dlg)
    dlg.show_tab("connections")
    dlg.show()
    note = dlg.connections.keyring_note
    assert note.isVisible()
    assert "No system keyring is available" in note.text()
    notifier.close()


def test_no_keyring_note_with_a_working_keyring(dialog: SettingsDialog) -> None:
    dialog.show_tab("connections")
    assert not dialog.connections.keyring_note.isVisible()


# ---- Appearance and Data ---------------------------------------------------------------------


def test_theme_and_font_size(qtbot: QtBot, dialog: SettingsDialog, settings: Settings) -> None:
    a = dialog.appearance
    a.theme.setCurrentIndex(a.theme.findData("dark"))
    assert settings.theme == "dark"
    a.font_size.setFocus()
    a.font_size.setValue(12)
    assert settings.font_size == 12
    a.font_size.setValue(a.font_size.minimum())
    assert settings.font_size == 0
    assert a.font_size.text() == "System"


def test_data_tab_shows_paths_and_retention(
    qtbot: QtBot, dialog: SettingsDialog, settings: Settings
) -> None:
    d = dialog.data
    dialog.show_tab("data")
    assert d.settings_path.text() == str(settings.path)
    assert d.settings_path.isReadOnly() and d.db_path.isReadOnly()
    assert d.db_path.text().endswith("halext.db")
    opened: list[QUrl] = []
    dialog.open_url = opened.append
    qtbot.mouseClick(d.open_settings, Qt.MouseButton.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(settings.path.parent))]  # type: ignore[union-attr]
    d.retention.setValue(30)
    assert settings.usage_retention_days == 30
    d.retention.setValue(0)
    assert settings.usage_retention_days == 0
    assert d.retention.text() == "Keep forever"


def test_data_tab_names_the_log_file_and_opens_its_folder(
    qtbot: QtBot, dialog: SettingsDialog, isolated_home: Path
) -> None:
    d = dialog.data
    dialog.show_tab("data")
    assert d.isVisible()
    # The file every "see the log" message names, in this test's home, read-only.
    assert d.log_path.text() == str(log_path())
    assert d.log_path.text().startswith(str(isolated_home))
    assert d.log_path.text().endswith("halext-desktop.log")
    assert d.log_path.isReadOnly()
    assert d.log_path.accessibleName() == "Log file location"
    opened: list[QUrl] = []
    dialog.open_url = opened.append
    qtbot.mouseClick(d.open_log, Qt.MouseButton.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(log_path().parent))]


def test_every_control_has_an_accessible_name(dialog: SettingsDialog) -> None:
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QSpinBox

    missing = [
        w.objectName() or type(w).__name__ + ":" + getattr(w, "text", lambda: "")()
        for kind in (QAbstractButton, QComboBox, QLineEdit, QSpinBox)
        for w in dialog.findChildren(kind)
        if not w.accessibleName()
        # Qt's own sub-widgets (combo line edits, spin box editors, tab scrollers)
        and not (w.parent() is not None and isinstance(w.parent(), QComboBox | QSpinBox))
        and "qt_" not in w.objectName()
        and type(w).__name__ != "QToolButton"
    ]
    assert missing == []
