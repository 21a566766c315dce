"""How the HTTP backends name a server and describe a failed connection, in one line.

Shared by the Ollama and OpenAI-compatible backends so both say the same thing about the
same failure ("Connection refused at 127.0.0.1:11434"). No Qt, no secrets: URLs are
reduced to host:port before they reach a message.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx


def netloc_of(url: str) -> str:
    """``127.0.0.1:11434`` — how messages name a server (never includes credentials).

    The port is always shown: ``http://host`` means port 80, not Ollama's 11434, and a
    message that says only "host" hides exactly that mistake."""
    parts = urlsplit(url)
    host = parts.hostname or url
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a malformed port: name what was written
        return parts.netloc or url
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return f"{host}:{port}" if port else host


def one_line(text: str, limit: int = 200) -> str:
    """Server-supplied text made fit for a one-line message (proxy pages are HTML)."""
    text = re.sub(r"\s+", " ", str(text)).strip()
    if text.startswith("<"):
        return "non-JSON reply (an HTML page)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (explicitly or while handling), down to the OS error.

    Library errors wrap the telling one (``ConnectionRefusedError``, ``ssl.SSLError``) a few
    levels down. An exception group's members are walked too: anyio raises
    "All connection attempts failed" from a group when every address of a host name (``::1``
    and ``127.0.0.1`` for ``localhost``) failed. A cycle in the chain is walked once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        cur: BaseException | None = pending.pop()
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            yield cur
            if isinstance(cur, BaseExceptionGroup):
                pending.extend(reversed(cur.exceptions))
            cur = cur.__cause__ or cur.__context__


def connect_failure(exc: BaseException, netloc: str) -> tuple[str, str]:
    """Describe why a connection failed, from the OS error at the bottom of the chain.

    Returns ``(message, cause)`` with cause one of ``refused``, ``dns``, ``timeout``,
    ``unreachable``, ``tls``, ``other`` so each backend can choose its own hint.
    """
    for cur in cause_chain(exc):
        if isinstance(cur, ConnectionRefusedError):
            return f"Connection refused at {netloc}", "refused"
        if isinstance(cur, socket.gaierror):
            return f"Cannot resolve the host name in {netloc}", "dns"
        if isinstance(cur, ssl.SSLError):
            return f"TLS handshake with {netloc} failed", "tls"
        if isinstance(cur, TimeoutError | httpx.ConnectTimeout):
            return f"Timed out connecting to {netloc}", "timeout"
        if isinstance(cur, OSError) and cur.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"No route to {netloc} (network unreachable)", "unreachable"
    return f"Cannot connect to {netloc}", "other"
