"""Settings (Ctrl+,): AI · Connections · Appearance · Data, applied as you go.

The dialog is the shell: tabs, Close, the confirmation and folder-opening hooks, and the
signals the main window follows. Each tab is its own module; the dialog follows changes
made elsewhere (the CLI, a sign-in on the loop thread, Reset) through the SettingsNotifier
and hands each change to every tab.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from halext_desktop.routing.types import ModelListing
from halext_desktop.storage.logfile import log_path
from halext_desktop.ui.settings.ai_page import AiPage
from halext_desktop.ui.settings.appearance_page import AppearancePage
from halext_desktop.ui.settings.common import Confirm, muted
from halext_desktop.ui.settings.connections_page import ConnectionsPage
from halext_desktop.ui.settings.data_page import DataPage

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.qt_settings import SettingsNotifier
    from halext_desktop.ui.services import Services

TAB_NAMES = ("ai", "connections", "appearance", "data")


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

        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName("Settings sections")
        self.ai = AiPage(self)
        self.connections = ConnectionsPage(self)
        self.appearance = AppearancePage(self)
        self.data = DataPage(self, services.database_path(), services.settings.path, log_path())
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
        hint = muted(QLabel("Changes apply at once.", self))

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
