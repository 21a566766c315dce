"""The only place where the router's futures and events become Qt signals.

Work is submitted from the GUI thread to the loop thread; results and stream events come
back through queued signals, so every slot runs on the GUI thread. Widgets never await and
never block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from halext_desktop.app.loop_thread import LoopThread


class StreamHandle:
    """A running stream; ``cancel()`` is safe from the GUI thread and idempotent."""

    def __init__(self, future: Future[None], loop: asyncio.AbstractEventLoop) -> None:
        self._future = future
        self._loop = loop

    def cancel(self) -> None:
        # Future.cancel on a run_coroutine_threadsafe future cancels the task in its loop,
        # which runs the backend's finally blocks and closes the HTTP stream.
        self._loop.call_soon_threadsafe(self._future.cancel)

    def done(self) -> bool:
        return self._future.done()


class Bridge(QObject):
    """Runs coroutines on the loop thread and delivers outcomes on the GUI thread.

    Signals:
        sig_result(object, object): internal; (callback, value) delivered on the GUI thread.
        sig_event(object, object): internal; (callback, event) for stream events.
    """

    sig_result = Signal(object, object)
    sig_event = Signal(object, object)

    def __init__(self, loop_thread: LoopThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lt = loop_thread
        self.sig_result.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.sig_event.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def loop_thread(self) -> LoopThread:
        return self._lt

    def call(
        self,
        coro: Coroutine[Any, Any, Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any]:
        """Run ``coro`` on the loop thread; ``on_done(result)`` or ``on_error(exc)`` run on
        the GUI thread. Exactly one of them is called unless the future is cancelled."""
        fut = self._lt.submit(coro)

        def _done(f: Future[Any]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                if on_error is not None:
                    self.sig_result.emit(on_error, exc)
            elif on_done is not None:
                self.sig_result.emit(on_done, f.result())

        fut.add_done_callback(_done)
        return fut

    def stream(
        self,
        make_stream: Callable[[], AsyncIterator[Any]],
        on_event: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> StreamHandle:
        """Consume an async iterator on the loop thread; each item reaches ``on_event`` on the
        GUI thread, in order. The iterator is closed when the handle is cancelled."""

        async def pump() -> None:
            agen = make_stream()
            try:
                async for event in agen:
                    self.sig_event.emit(on_event, event)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # delivered, never silent
                if on_error is not None:
                    self.sig_event.emit(on_error, exc)
            finally:
                aclose = getattr(agen, "aclose", None)
                if aclose is not None:
                    await aclose()

        fut = self._lt.submit(pump())
        return StreamHandle(fut, self._lt.loop)

    @Slot(object, object)
    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        callback(value)
