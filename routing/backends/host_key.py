"""A host's API key, read when a request first needs it.

A backend is built for every configured route at start-up, but a command may never talk
to it (``usage``), or talk only to hosts without a key. Reading a key means asking the OS
keyring, which costs 0.1–0.3 s the first time in a process (importing ``keyring`` and
finding its backend). So a backend takes either the key itself or a *key provider* (a
callable returning the key or None), called once, at the backend's first request (on a
worker thread when that request is made from an event loop, so a slow keyring holds up no
other reply) or when someone asks whether a key is sent (``has_key``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from halext_desktop.routing.backends.http_errors import netloc_of
from halext_desktop.routing.backends.http_guard import credentials_allowed

KeySource = str | Callable[[], str | None] | None


class HostKey:
    """One host's key and whether it may be sent there.

    Args:
        source: the key, or a callable reading it (called at most once), or None.
        base_url: the host the key belongs to.
        plain_http_ok: the user accepted sending it over plain http to this host.
    """

    __slots__ = ("_base_url", "_consented", "_lock", "_resolved", "_source", "_value", "_withheld")

    def __init__(self, source: KeySource, base_url: str, *, plain_http_ok: bool) -> None:
        self._source = source
        self._base_url = base_url
        self._consented = {netloc_of(base_url)} if plain_http_ok else set()
        self._lock = threading.Lock()
        self._resolved = False
        self._value: str | None = None
        self._withheld = False
        if not callable(source):
            self._settle(source)

    def _settle(self, key: str | None) -> None:
        self._withheld = bool(key) and not credentials_allowed(self._base_url, self._consented)
        self._value = key if key and not self._withheld else None
        self._source = None  # a provider is not called again
        self._resolved = True

    @property
    def resolved(self) -> bool:
        """The key was read (or there was nothing to read)."""
        return self._resolved

    def resolve(self) -> None:
        """Read the key now, if it was not read yet (blocking: the keyring may be slow)."""
        if self._resolved:
            return
        with self._lock:
            if self._resolved:
                return
            source = self._source
            self._settle(source() if callable(source) else source)

    async def aresolve(self) -> None:
        """``resolve`` off the event loop."""
        if not self._resolved:
            await asyncio.to_thread(self.resolve)

    @property
    def value(self) -> str | None:
        """The key to send (None: none, or it is withheld)."""
        self.resolve()
        return self._value

    @property
    def withheld(self) -> bool:
        """A key exists but is not sent: plain http to another machine, without consent."""
        self.resolve()
        return self._withheld

    def __repr__(self) -> str:
        state = "unread" if not self._resolved else "set" if self._value else "none"
        return f"HostKey({state})"
