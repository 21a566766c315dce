"""What the window shows about the database: a status-bar note while changes wait, and the
dialog that repairs a damaged file.

The database owner (``storage.owner``) reports its state on its own thread; the Bridge relays
it here. A lock held by another program or a full disk is a note, not an alarm: the changes
wait (and are kept in a spool file), the reply goes on, and the note says when everything
was saved. A damaged file is different: the dialog offers to restore the newest good copy
or to start fresh; either way the damaged file is moved aside, never deleted.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton, QWidget

from halext_desktop.storage.db import DatabaseDamaged, DatabaseError, Problem
from halext_desktop.storage.owner import BLOCKED, CLOSED, DAMAGED, OK, UNAVAILABLE, DbState

if TYPE_CHECKING:
    from halext_desktop.storage.store import Storage
    from halext_desktop.ui.bridge import Bridge

log = logging.getLogger(__name__)

SAVED_NOTE_MS = 10_000


def state_text(state: DbState) -> str:
    """The status-bar words for a database state ("" when there is nothing to say)."""
    n = state.waiting
    waiting = f" — {n} change{'s' if n != 1 else ''} waiting, nothing is lost" if n else ""
    if state.kind == BLOCKED:
        if state.problem is Problem.FULL:
            return f"⚠ Disk full{waiting}"
        if state.problem is Problem.BUSY:
            return f"⚠ Database locked by another program{waiting}"
        return f"⚠ Database cannot be written{waiting}"
    if state.kind == DAMAGED:
        return "⚠ Database damaged — click to repair"
    if state.kind == UNAVAILABLE:
        return "⚠ Database unavailable"
    return ""


class DatabaseStateLabel(QLabel):
    """The status-bar part about the database; empty while all is well.

    Signals:
        sig_clicked(): the label was clicked (the window offers the repair when damaged).
    """

    sig_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Database state")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self._clear)
        self.hide()

    def show_state(self, state: DbState) -> None:
        text = state_text(state)
        if state.kind == OK and state.detail:
            # Back to normal after waiting: say so once, then get out of the way.
            text = f"✓ {state.detail}"
            self._hide_timer.start(SAVED_NOTE_MS)
        elif text:
            self._hide_timer.stop()
        self.setText(text)
        self.setToolTip(state.detail)
        self.setVisible(bool(text))

    def show_note(self, text: str) -> None:
        """A passing note (something was recovered or saved), hidden after a while."""
        self.setText(f"✓ {text}")
        self.setToolTip(text)
        self.show()
        self._hide_timer.start(SAVED_NOTE_MS)

    def _clear(self) -> None:
        self.setText("")
        self.hide()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self.sig_clicked.emit()
        super().mousePressEvent(event)


class DatabaseRepair(QObject):
    """Watches the database's state and, when it is damaged, offers the repair dialog.

    Args:
        storage: the app's Storage (its owner's state, the repairs).
        bridge: relays the owner thread's reports and runs the repairs' futures.
        label: the status-bar label to keep up to date.
        window: the dialog's parent.

    Attributes:
        dialog: the repair dialog while it is shown (tests press its buttons).

    Signals:
        sig_repaired(str): "restored" or "fresh": the window reloads what it shows.
        sig_state(object): every state the owner reported (a DbState), on the GUI thread.
    """

    sig_repaired = Signal(str)
    sig_state = Signal(object)

    def __init__(
        self, storage: Storage, bridge: Bridge, label: DatabaseStateLabel, window: QWidget
    ) -> None:
        super().__init__(window)
        self._storage = storage
        self._bridge = bridge
        self._label = label
        self._window = window
        self.dialog: QMessageBox | None = None
        self.restore_button: QPushButton | None = None
        self.fresh_button: QPushButton | None = None
        self._declined = False
        self._remove = storage.owner.add_listener(bridge.relay(self._on_state, owner=self))
        label.sig_clicked.connect(self._label_clicked)
        self._on_state(storage.state)
        # Once open: say what an earlier session left behind and what became of it.
        bridge.call(storage.opened, self._opened, lambda _exc: None, owner=self)

    def stop_watching(self) -> None:
        self._remove()

    # ---- state -------------------------------------------------------------------------------

    def _on_state(self, state: DbState) -> None:
        if state.kind == CLOSED:
            return
        self._label.show_state(state)
        self.sig_state.emit(state)
        if state.kind == DAMAGED and not self._declined:
            self.offer(state.error)
        elif state.kind == UNAVAILABLE and state.error is not None:
            log.warning("database unavailable: %s", state.error)

    def _opened(self, report: Any) -> None:
        replayed = int(getattr(report, "replayed", 0) or 0)
        recovering = getattr(report, "recovering", None)
        if recovering is None:
            return

        def done(ids: list[int]) -> None:
            parts = []
            if replayed:
                parts.append(
                    f"{replayed} change{'s' if replayed != 1 else ''} kept from an earlier "
                    "session saved"
                )
            if ids:
                n = len(ids)
                parts.append(
                    f"{n} repl{'ies' if n != 1 else 'y'} cut short by an earlier crash kept "
                    "(marked interrupted)"
                )
            if parts:
                self._label.show_note("; ".join(parts))

        self._bridge.call(recovering, done, lambda _exc: None, owner=self)

    def _label_clicked(self) -> None:
        if self._storage.state.kind == DAMAGED:
            self._declined = False
            self.offer(self._storage.state.error)

    # ---- the dialog --------------------------------------------------------------------------

    def offer(self, error: Any = None) -> None:
        """Show the repair dialog (once at a time) for a damaged database."""
        if self.dialog is not None:
            return
        if error is None or not isinstance(error, DatabaseDamaged):
            if isinstance(error, DatabaseError) and not isinstance(error, DatabaseDamaged):
                return  # locked or read-only: the banner and the status bar say so
            state_error = self._storage.state.error
            if not isinstance(state_error, DatabaseDamaged):
                return
            error = state_error
        backup = self._storage.db.newest_backup()
        box = QMessageBox(self._window)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("The database is damaged — Halext Desktop")
        box.setText(f"Your conversations file {error.path} is damaged.")
        when = _when(backup) if backup is not None else None
        copy_line = (
            f"The newest good copy is from {when} ({backup.name})."
            if backup is not None
            else "There is no backup copy of it yet."
        )
        box.setInformativeText(
            f"SQLite says: {error.detail}.\n\n{copy_line}\n\nEither way the damaged file is "
            "moved aside next to it, never deleted, and what you were typing stays in the "
            "message box."
        )
        if backup is not None:
            self.restore_button = box.addButton(
                "Restore the newest copy", QMessageBox.ButtonRole.AcceptRole
            )
        else:
            self.restore_button = None
        self.fresh_button = box.addButton("Start fresh", QMessageBox.ButtonRole.DestructiveRole)
        later = box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(self.restore_button or later)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.buttonClicked.connect(self._clicked)
        box.finished.connect(self._dialog_closed)
        self.dialog = box
        box.open()

    def _clicked(self, button: Any) -> None:
        if button is not None and button is self.restore_button:
            self.restore()
        elif button is not None and button is self.fresh_button:
            self.start_fresh()
        else:
            self._declined = True

    def _dialog_closed(self, _result: int) -> None:
        self.dialog = None
        self.restore_button = self.fresh_button = None

    def restore(self) -> None:
        """Restore the newest good copy (the damaged file moved aside)."""
        self._bridge.call(
            self._storage.restore_newest_backup(),
            lambda aside: self._done("restored", aside),
            self._failed,
            owner=self,
        )

    def start_fresh(self) -> None:
        """Start an empty database (the damaged file moved aside)."""
        self._bridge.call(
            self._storage.start_fresh(),
            lambda aside: self._done("fresh", aside),
            self._failed,
            owner=self,
        )

    def _done(self, what: str, aside: Path) -> None:
        self._declined = False
        log.warning("database repaired (%s); the damaged file is %s", what, aside)
        self._label.setText(f"✓ Damaged file kept as {aside.name}")
        self._label.setToolTip(str(aside))
        self._label.show()
        self.sig_repaired.emit(what)

    def _failed(self, exc: BaseException) -> None:
        log.error("repairing the database failed", exc_info=exc)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Halext Desktop",
            f"The database could not be repaired: {exc}",
            QMessageBox.StandardButton.Ok,
            self._window,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()


def _when(path: Path) -> str:
    try:
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).astimezone()
    except OSError:
        return "an unknown time"
    return stamp.strftime("%Y-%m-%d %H:%M")
