"""The usage window's bottom bar: how long usage is kept, and clearing it.

Applying a retention saves ``usage_retention_days`` (the app prunes to it at every start)
and deletes older rows now; clearing deletes every row after asking. Both deletions run on
the database owner's thread, through the Bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QSpinBox, QWidget

from halext_desktop.storage.logfile import see_the_log
from halext_desktop.storage.settings import SettingsError
from halext_desktop.ui.theme import css, error_color, muted_text

if TYPE_CHECKING:
    from halext_desktop.ui.bridge import Bridge
    from halext_desktop.ui.qt_settings import SettingsNotifier
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

# ``confirm(title, text) -> bool``: asked before deleting (replaced in tests).
Confirm = Callable[[str, str], bool]


class RetentionBar(QWidget):
    """Keep usage for [N days] [Apply] · where usage is kept · [Clear usage…].

    Args:
        services: ``settings`` (the retention) and ``usage`` (the rows).
        bridge: runs the deletions off the GUI thread.
        notifier: follows a retention changed elsewhere (Settings → Data, the CLI).

    Attributes:
        confirm: asked before clearing; a Yes/Cancel QMessageBox by default.
        known_total: how many requests the whole log holds, when the window knows it
            (named in the question before clearing); None when it does not.
        spin, apply_button, clear_button, privacy_label: the widgets.

    Signals:
        sig_deleted(int, str): rows were deleted: how many, and why ("older than 30 days";
            "" for a clear).
        sig_status(str, bool): a line for the window's status (text, is it an error).
    """

    sig_deleted = Signal(int, str)
    sig_status = Signal(str, bool)

    def __init__(
        self,
        services: Services,
        bridge: Bridge,
        notifier: SettingsNotifier,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._svc = services
        self._bridge = bridge
        self.confirm: Confirm = self._ask
        self.known_total: Callable[[], int | None] = lambda: None

        self.spin = QSpinBox()
        self.spin.setAccessibleName("Usage retention days")
        self.spin.setRange(0, 3650)
        self.spin.setSpecialValueText("forever")
        self.spin.setSuffix(" days")
        self.spin.setToolTip(
            "Requests older than this are deleted now and at every start (0 = keep forever)"
        )
        self.spin.setValue(services.settings.usage_retention_days)
        self.spin.valueChanged.connect(self._sync_apply_button)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Save the retention and delete older requests now")
        self.apply_button.clicked.connect(lambda: self.apply_retention(self.spin.value()))
        self.clear_button = QPushButton("Clear usage…")
        self.clear_button.setObjectName("DangerButton")
        self.clear_button.setToolTip("Delete every recorded request from this computer")
        self.clear_button.clicked.connect(self.clear_usage)
        self.privacy_label = QLabel("Usage is recorded on this computer only.")
        self.privacy_label.setObjectName("Privacy")

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(QLabel("Keep usage for"))
        row.addWidget(self.spin)
        row.addWidget(self.apply_button)
        row.addSpacing(12)
        row.addWidget(self.privacy_label, 1)
        row.addWidget(self.clear_button)

        self._sync_apply_button()
        notifier.sig_changed.connect(self._on_setting)

    # ---- actions --------------------------------------------------------------------------

    def apply_retention(self, days: int) -> None:
        """Save ``usage_retention_days`` and delete older requests now (off the GUI thread)."""
        try:
            self._svc.settings.set("usage_retention_days", int(days))
        except (SettingsError, OSError) as exc:
            self.sig_status.emit(str(exc), True)
            return
        self._sync_apply_button()
        if days <= 0:
            self.sig_status.emit("Usage is kept forever.", False)
            return
        self._busy(True)
        self._bridge.call(
            self._svc.usage.prune(int(days)),
            lambda n: self._deleted(n, f"older than {days} days"),
            self._on_change_failed,
            owner=self,
        )

    def clear_usage(self) -> None:
        """Ask, then delete every usage row (off the GUI thread)."""
        total = self.known_total()
        what = f"all {total:,} recorded requests" if total else "every recorded request"
        if not self.confirm(
            "Clear usage",
            f"Delete {what} from this computer? Charts and the table start empty. "
            "This cannot be undone.",
        ):
            return
        self._busy(True)
        self._bridge.call(self._svc.usage.clear(), self._cleared, self._on_change_failed)

    def restyle(self, pal: QPalette) -> None:
        """Follow the window's palette (light/dark). Leaf widgets only: a container with a
        style sheet stops passing palette changes to its children."""
        for widget, sheet in (
            (self.privacy_label, f"color: {css(muted_text(pal))};"),
            (self.clear_button, f"color: {css(error_color(pal))};"),
        ):
            if widget.styleSheet() != sheet:
                widget.setStyleSheet(sheet)

    # ---- outcomes -------------------------------------------------------------------------

    def _cleared(self, n: int) -> None:
        self._deleted(n, "")

    def _deleted(self, n: int, why: str) -> None:
        self._busy(False)
        self.sig_deleted.emit(int(n), why)

    def _on_change_failed(self, exc: BaseException) -> None:
        self._busy(False)
        log.error("changing the usage log failed", exc_info=exc)
        if isinstance(exc, OSError | ValueError):
            text = str(exc)
        else:
            text = f"unexpected error ({type(exc).__name__}); {see_the_log()}"
        self.sig_status.emit(f"Could not change the usage log: {text}", True)

    # ---- state ----------------------------------------------------------------------------

    def _busy(self, busy: bool) -> None:
        for w in (self.clear_button, self.apply_button, self.spin):
            w.setEnabled(not busy)
        if not busy:
            self._sync_apply_button()

    def _sync_apply_button(self, _value: int = 0) -> None:
        stored = self._svc.settings.usage_retention_days
        self.apply_button.setEnabled(self.spin.value() != stored)

    def _on_setting(self, key: str, value: Any) -> None:
        if key == "usage_retention_days" and isinstance(value, int):
            self.spin.blockSignals(True)
            self.spin.setValue(value)
            self.spin.blockSignals(False)
            self._sync_apply_button()

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes
