"""The requests a part of the Models window has sent through the bridge, until the app
closes: then nothing more is sent, and those still in flight are handed to whoever closes
the routes next (so a delete or a node test is not cut off halfway)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from PySide6.QtCore import QObject

from halext_desktop.ui.bridge import Bridge

T = TypeVar("T")


class InFlight:
    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self.closed = False  # shut down: the app is closing
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()  # futures finish on the loop thread

    def call(
        self,
        coro: Coroutine[Any, Any, T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None],
        *,
        owner: QObject,
    ) -> None:
        """``bridge.call`` unless shut down: then the request is dropped unsent."""
        if self.closed:
            coro.close()
            return
        future = self._bridge.call(coro, on_done, on_error, owner=owner)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def shutdown(self) -> list[Future[Any]]:
        """Send nothing more; the requests still in flight."""
        self.closed = True
        with self._lock:
            return list(self._pending)
