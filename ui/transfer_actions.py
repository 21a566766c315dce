"""Export and import from the window: a conversation (or all) to Markdown or JSON, and a
JSON export back as new conversations. The files are read and written off the GUI thread
(``storage.transfer`` through the Bridge); the outcome is one line in the chat's banner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from halext_desktop.ui.bridge import Bridge, describe_error
from halext_desktop.ui.services import Services

SUFFIX = {"markdown": ".md", "json": ".json"}
FILTER = {"markdown": "Markdown (*.md)", "json": "JSON (*.json)"}


class TransferActions(QObject):
    """Export and import, asked for by the sidebar's menu and the File menu.

    Signals:
        sig_done(str, str): finished; a banner kind ("info", "error") and one line.
        sig_imported(object): conversations were imported; the id of the first one.
    """

    sig_done = Signal(str, str)
    sig_imported = Signal(object)

    def __init__(self, services: Services, bridge: Bridge, window: QWidget) -> None:
        super().__init__(window)
        self._svc = services
        self._bridge = bridge
        self._window = window
        # Where to save / what to open; tests put functions here instead of the dialogs.
        self.choose_save_path: Callable[[str, str], str | None] = self._save_dialog
        self.choose_open_path: Callable[[], str | None] = self._open_dialog

    def export(self, conversation_id: int | None, fmt: str, suggested: str = "") -> None:
        """Export one conversation (None: all of them) as ``fmt`` to a file the user picks."""
        name = suggested or ("conversations" if conversation_id is None else "conversation")
        name = "".join(c if c.isalnum() or c in " -_." else "_" for c in name).strip() or "chat"
        path = self.choose_save_path(name + SUFFIX[fmt], fmt)
        if not path:
            return

        def done(written: list[Path]) -> None:
            extra = f" and {len(written) - 1} attachment file(s)" if len(written) > 1 else ""
            self.sig_done.emit("info", f"Exported to {written[0]}{extra}.")

        # Imported here: it loads SQLAlchemy (~150 ms), which the window must not wait for
        # at start (the main window is built before anyone exports).
        from halext_desktop.storage import transfer

        self._bridge.call(
            transfer.export_to_file(self._svc.conversations, conversation_id, fmt, path),
            done,
            lambda exc: self.sig_done.emit("error", f"Export failed: {describe_error(exc)}"),
            owner=self,
        )

    def import_(self) -> None:
        """Import a JSON export the user picks, as new conversations."""
        path = self.choose_open_path()
        if not path:
            return
        from halext_desktop.storage import transfer  # here, as in export

        def done(rows: list[Any]) -> None:
            titles = ", ".join(r.title for r in rows[:3]) + ("…" if len(rows) > 3 else "")
            self.sig_done.emit("info", f"Imported {len(rows)} conversation(s): {titles}.")
            if rows:
                self.sig_imported.emit(rows[0].id)

        def failed(exc: BaseException) -> None:
            line = str(exc) if isinstance(exc, transfer.BadExport) else describe_error(exc)
            self.sig_done.emit("error", f"Import failed: {line}")

        self._bridge.call(
            transfer.import_file(self._svc.conversations, path), done, failed, owner=self
        )

    def _save_dialog(self, name: str, fmt: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(
            self._window, "Export conversation", str(Path.home() / name), FILTER[fmt]
        )
        return path or None

    def _open_dialog(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Import conversations", str(Path.home()), FILTER["json"]
        )
        return path or None
