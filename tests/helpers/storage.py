"""Blocking access to a running app's database, for test code.

The app never runs SQLite outside the database owner's thread (storage.owner); neither does
a test. ``on_owner(x).conversations`` and ``.usage`` are the synchronous stores
(``ConversationStore``, ``UsageLog``) with every method call run on the owner thread and
waited for, after whatever the app queued before it is written. A test thread may wait
like that (the GUI thread of a widget test waits a few milliseconds; it runs no SQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from halext_desktop.storage.chat_settings import ChatSettingsStore
from halext_desktop.storage.conversations import ConversationStore
from halext_desktop.storage.owner import DbOwner
from halext_desktop.storage.usage import UsageLog

T = TypeVar("T")


class _Proxy(Generic[T]):
    def __init__(self, owner: DbOwner, target: T) -> None:
        self._owner = owner
        self._target = target

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._owner.call(fn, *args, timeout=30, **kwargs)

        return call


class OnOwner:
    """The stores of one database, called on its owner thread."""

    def __init__(self, owner: DbOwner) -> None:
        self.owner = owner
        self.conversations: ConversationStore = _Proxy(owner, owner.conversations)  # type: ignore[assignment]
        self.usage: UsageLog = _Proxy(owner, owner.usage)  # type: ignore[assignment]
        self.chat_settings: ChatSettingsStore = _Proxy(  # type: ignore[assignment]
            owner, ChatSettingsStore(owner.conversations.db)
        )

    def flush(self, timeout: float = 30) -> bool:
        """Wait until every queued change is written."""
        return self.owner.flush(timeout)


def on_owner(app: Any) -> OnOwner:
    """``app``: a Core, a FakeServices, a Storage or a DbOwner."""
    if isinstance(app, DbOwner):
        return OnOwner(app)
    storage = getattr(app, "storage", app)
    return OnOwner(storage.owner)


def on_plain_thread(fn: Callable[[], T], timeout: float = 30) -> T:
    """Run ``fn`` on a thread of its own and wait: test set-up that opens a database
    directly, from a test whose own thread is the GUI thread."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout)


_HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.close()
"""


class LockHolder:
    """Another process holding the database's write lock (``BEGIN IMMEDIATE``) until
    ``release``: what a second app, a backup tool or an ``sqlite3`` shell does."""

    def __init__(self, path: Any) -> None:
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        assert line.strip() == "locked", f"the lock holder did not start: {line!r}"

    def release(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.write("\n")
            self._proc.stdin.flush()
            self._proc.communicate(timeout=30)

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
