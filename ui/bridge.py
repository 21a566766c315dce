"""The only place where the router's futures and events become Qt signals.

Work is submitted from the GUI thread to the loop thread; results and stream events come
back through queued signals, so every slot runs on the GUI thread. Widgets never await and
never block.

Two promises live here, once, so no widget has to repeat them:

- A callback never runs on a widget that is gone. The receiver of a call is the object the
  callback belongs to (a bound method's ``self``, or ``owner=`` for a lambda); when Qt has
  deleted it by the time the outcome arrives, the outcome is dropped (a result) or logged
  (an error), never delivered to a dead C++ object.
- An error is never dropped. A call without ``on_error`` has its error logged with its
  traceback and announced on ``sig_unhandled_error``, which the main window shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal, Slot

from halext_desktop.ui.text import plain

log = logging.getLogger(__name__)

T = TypeVar("T")


class LoopRunner(Protocol):
    """What the bridge needs from the loop thread (``app.loop_thread.LoopThread``)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the loop from any thread."""
        ...


def _receiver_of(callback: Callable[..., Any] | None, owner: QObject | None) -> QObject | None:
    if owner is not None:
        return owner
    bound = getattr(callback, "__self__", None)
    return bound if isinstance(bound, QObject) else None


def _alive(receiver: QObject | None) -> bool:
    return receiver is None or shiboken6.isValid(receiver)


def _deliver_if_alive(receiver: QObject | None, callback: Callable[[T], None], value: T) -> None:
    if _alive(receiver):
        callback(value)


def describe_error(exc: BaseException) -> str:
    """One line for an error nobody was prepared for: the RouteError's own words when it
    has them (``one_line``), else the exception's type and text."""
    one_line = getattr(exc, "one_line", None)
    if callable(one_line):
        return plain(str(one_line()))
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Bridge(QObject):
    """Runs coroutines on the loop thread and delivers outcomes on the GUI thread.

    Signals:
        sig_result(object): internal; a delivery (a callable) to run on the GUI thread.
        sig_unhandled_error(str): an error reached a call that had no ``on_error``; carries
            one line for the user (the traceback went to the log).
    """

    sig_result = Signal(object)
    sig_unhandled_error = Signal(str)

    def __init__(self, loop_thread: LoopRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lt = loop_thread
        self.sig_result.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def loop_thread(self) -> LoopRunner:
        return self._lt

    def call(
        self,
        coro: Coroutine[Any, Any, T] | Future[T],
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        owner: QObject | None = None,
    ) -> Future[T]:
        """Run ``coro`` on the loop thread (or take a future another thread resolves, such
        as the database owner's); ``on_done(result)`` or ``on_error(exc)`` runs on the GUI
        thread, exactly one of them, unless the future was cancelled or the receiver
        (``owner``, else the bound callback's object) was deleted meanwhile."""
        receiver = _receiver_of(on_done or on_error, owner)
        fut = coro if isinstance(coro, Future) else self._lt.submit(coro)

        def _done(f: Future[T]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                self.sig_result.emit(functools.partial(self._fail, exc, on_error, receiver))
            elif on_done is not None:
                value = f.result()
                self.sig_result.emit(functools.partial(_deliver_if_alive, receiver, on_done, value))

        fut.add_done_callback(_done)
        return fut

    def stream(
        self,
        make_stream: Callable[[], AsyncIterator[T]],
        on_event: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
        *,
        owner: QObject | None = None,
    ) -> Future[None]:
        """Consume an async iterator on the loop thread; each item reaches ``on_event`` on the
        GUI thread, in order. Cancelling the returned future closes the iterator."""
        receiver = _receiver_of(on_event, owner)

        async def pump() -> None:
            agen = make_stream()
            try:
                async for event in agen:
                    self.sig_result.emit(
                        functools.partial(_deliver_if_alive, receiver, on_event, event)
                    )
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # delivered, never silent
                # partial, not a lambda: ``exc`` is unbound once the except block ends.
                self.sig_result.emit(functools.partial(self._fail, exc, on_error, receiver))
            finally:
                aclose = getattr(agen, "aclose", None)
                if aclose is not None:
                    await aclose()

        return self._lt.submit(pump())

    def relay(
        self, callback: Callable[[T], None], *, owner: QObject | None = None
    ) -> Callable[[T], None]:
        """A function any thread may call with a value (a listener of the database owner,
        say); ``callback(value)`` then runs on the GUI thread, unless its receiver is gone.
        Once this bridge is deleted the function does nothing."""
        receiver = _receiver_of(callback, owner)

        def send(value: T) -> None:
            if not shiboken6.isValid(self):
                return
            # RuntimeError: deleted between the check and the emit (shutdown).
            with contextlib.suppress(RuntimeError):
                self.sig_result.emit(
                    functools.partial(_deliver_if_alive, receiver, callback, value)
                )

        return send

    def _fail(
        self,
        exc: BaseException,
        on_error: Callable[[BaseException], None] | None,
        receiver: QObject | None,
    ) -> None:
        if on_error is not None:
            if _alive(receiver):
                on_error(exc)
            else:  # the window that asked was closed: its error has no one to tell
                log.info("an error arrived after its window closed: %s", describe_error(exc))
            return
        # Nobody is left (or was ever) prepared for this error: keep it in the log with its
        # traceback, and tell the user in one line.
        log.error("unhandled error from the loop thread", exc_info=exc)
        self.sig_unhandled_error.emit(describe_error(exc))

    @Slot(object)
    def _deliver(self, delivery: Callable[[], object]) -> None:
        delivery()
