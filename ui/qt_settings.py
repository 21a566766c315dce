"""Settings changes as a Qt signal, always delivered on the GUI thread.

Why: ``storage.settings.Settings`` is Qt-free and calls its subscribers on whatever thread
made the change (a sign-in on the loop thread writes ``halext_username``). Widgets may only
be touched on the GUI thread, so this relay re-emits every change there: directly when the
change came from the GUI thread (so a toggle takes effect at once, before ``set`` returns),
queued otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

if TYPE_CHECKING:
    from halext_desktop.storage.settings import Settings


class SettingsNotifier(QObject):
    """Subscribes to a Settings and re-emits each change on the GUI thread.

    Signals:
        sig_changed(str, object): (key, new value) after ``settings.set`` or ``reset``.
    """

    sig_changed = Signal(str, object)
    # Internal hop: emitted on the changing thread, received by a slot of this object,
    # which lives on the GUI thread, so Qt queues it when the threads differ.
    _sig_relay = Signal(str, object)

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._sig_relay.connect(self._on_relay)
        relay = self._sig_relay

        def on_change(key: str, value: Any) -> None:
            # AutoConnection: a direct call when the change is made on the GUI thread,
            # queued to the GUI thread otherwise.
            with contextlib.suppress(RuntimeError):  # the C++ object is gone: nobody to tell
                relay.emit(key, value)

        raw_unsubscribe = settings.subscribe(on_change)
        done = [False]

        def unsubscribe() -> None:
            # Once only, whether from close() or from ``destroyed``.
            if not done[0]:
                done[0] = True
                raw_unsubscribe()

        self._unsubscribe: Callable[[], None] | None = unsubscribe
        # A closure, not a bound method: by the time ``destroyed`` fires the Python side of
        # this object may no longer be usable.
        self.destroyed.connect(lambda *_: unsubscribe())

    @property
    def settings(self) -> Settings:
        return self._settings

    def close(self) -> None:
        """Stop listening (idempotent). Called automatically when the object is destroyed."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    @Slot(str, object)
    def _on_relay(self, key: str, value: Any) -> None:
        self.sig_changed.emit(key, value)
