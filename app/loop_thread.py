"""The one asyncio loop thread the router runs on (Spyder's AsyncDispatcher pattern).

Why a thread and not QtAsyncio: PySide6's QtAsyncio breaks anyio, so every httpx request
fails under it; a plain asyncio loop in its own thread keeps routing/ testable with plain
pytest and keeps parsing off the GUI thread. No Qt in this module.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Owns an asyncio event loop running forever in a daemon thread."""

    def __init__(self, name: str = "halext-router-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # Set by stop(): work submitted after it (a late signal while the window closes)
        # is dropped, not scheduled on a loop that will never run it.
        self._stopping = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> LoopThread:
        self._thread.start()
        self._ready.wait()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()
        # Let cancelled tasks run their finally blocks (closing HTTP streams) before exit.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the loop; thread-safe; returns a concurrent Future.

        Once the loop is stopping, the coroutine is closed unrun and the future comes back
        cancelled (the bridge delivers nothing for a cancelled future)."""
        if not self._stopping:
            try:
                return asyncio.run_coroutine_threadsafe(coro, self._loop)
            except RuntimeError:  # closed between the check and the call
                pass
        coro.close()
        dropped: Future[T] = Future()
        dropped.cancel()
        return dropped

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for it (for set-up/tear-down, never the GUI)."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
