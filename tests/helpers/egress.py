"""A socket-level egress guard: every outgoing connection of this process, recorded and,
unless allowed, refused.

Why at the socket level: the app's promises ("offline", "no redirect followed", "no prompt
to a host the user did not choose") are about where bytes go, whatever library sends them
(``httpx`` for halext and Ollama, ``httpx2`` under ``openai``, anything added later). The
client's own account of itself proves nothing; the operating system's view does. So this
wraps what every Python network library ends up calling:

- ``socket.socket.connect`` / ``connect_ex`` — asyncio's ``sock_connect`` (anyio, httpcore,
  so httpx and httpx2) and ``socket.create_connection`` all land here;
- ``socket.getaddrinfo`` — a name lookup is traffic too (DNS), and the only place a host
  *name* is visible before it becomes an address.

Allowed destinations are ``(host, port)`` pairs; ``port=None`` allows every port of a host.
A refused connect raises ``ConnectionRefusedError`` (the app then reports a connection
failure, as it would for a firewall), and the attempt stays in ``violations`` for the test
to assert on. Unix sockets and lookups of numeric addresses are not egress and are not
recorded.

For a CLI run in a subprocess, ``tests/helpers/egress_site`` holds a ``sitecustomize``
that installs the same guard from environment variables (``install_from_env``) and writes
each attempt to a JSON-lines file (``read_log``).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

SITE_DIR = Path(__file__).with_name("egress_site")
ENV_ALLOW = "HALEXT_TEST_EGRESS_ALLOW"  # "host:port,host:*"
ENV_LOG = "HALEXT_TEST_EGRESS_LOG"  # JSON-lines file of attempts

# Names that never leave the machine (answered from /etc/hosts, not DNS).
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One outgoing attempt: ``kind`` is ``connect`` or ``lookup``."""

    kind: str
    host: str
    port: int | None
    allowed: bool
    thread: str

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port is not None else self.host
        verdict = "allowed" if self.allowed else "REFUSED"
        return f"{self.kind} {where} ({verdict}, thread {self.thread})"


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class EgressGuard:
    """Context manager that records (and polices) every outgoing connection.

    Args:
        allowed: ``(host, port)`` pairs connections may go to; ``port=None`` for any port.
        names: host names that may be looked up (besides ``localhost``).
        log: a JSON-lines file each attempt is appended to (subprocess recorder).

    Attributes:
        attempts: every connect and name lookup, in order.
    """

    def __init__(
        self,
        allowed: Iterable[tuple[str, int | None]] = (),
        *,
        names: Iterable[str] = (),
        log: Path | None = None,
    ) -> None:
        self._allowed: set[tuple[str, int | None]] = set()
        for host, port in allowed:
            self.allow(host, port)
        self._names = {n.lower() for n in names} | LOCAL_NAMES
        self._log = log
        self._lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self._saved: dict[str, Any] = {}

    # ---- policy ---------------------------------------------------------------------------

    def allow(self, host: str, port: int | None = None) -> None:
        self._allowed.add((host.lower().strip("[]"), port))

    def allows(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]")
        return (host, port) in self._allowed or (host, None) in self._allowed

    # ---- results --------------------------------------------------------------------------

    @property
    def violations(self) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if not a.allowed]

    def connections(self) -> list[tuple[str, int | None]]:
        """Every (host, port) a connect was attempted to, allowed or not, in order."""
        with self._lock:
            return [(a.host, a.port) for a in self.attempts if a.kind == "connect"]

    def assert_clean(self) -> None:
        """AssertionError listing every attempt that went (or tried to go) elsewhere."""
        bad = self.violations
        if bad:
            lines = "\n  ".join(str(a) for a in bad)
            raise AssertionError(f"{len(bad)} connection(s) outside the allowed hosts:\n  {lines}")

    # ---- recording ------------------------------------------------------------------------

    def _record(self, kind: str, host: str, port: int | None, allowed: bool) -> None:
        attempt = Attempt(kind, host, port, allowed, threading.current_thread().name)
        with self._lock:
            self.attempts.append(attempt)
            if self._log is not None:
                with self._log.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(attempt)) + "\n")

    # ---- patching -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        self._saved = {
            "connect": real_connect,
            "connect_ex": real_connect_ex,
            "getaddrinfo": real_getaddrinfo,
        }

        def check(sock: socket.socket, address: Any) -> None:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return  # Unix sockets, socketpairs: not egress
            host, port = str(address[0]), int(address[1])
            ok = guard.allows(host, port)
            guard._record("connect", host, port, ok)
            if not ok:
                raise ConnectionRefusedError(
                    errno.ECONNREFUSED, f"refused by the test's egress guard: {host}:{port}"
                )

        def connect(self: socket.socket, address: Any) -> None:
            check(self, address)
            return real_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            try:
                check(self, address)
            except ConnectionRefusedError:
                return errno.ECONNREFUSED
            return real_connect_ex(self, address)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host or "")
            if name and not _is_numeric(name):
                ok = name.lower() in guard._names
                number = int(port) if isinstance(port, int) or str(port).isdigit() else None
                guard._record("lookup", name, number, ok)
                if not ok:
                    raise socket.gaierror(
                        socket.EAI_NONAME, f"lookup refused by the test's egress guard: {name}"
                    )
            return real_getaddrinfo(host, port, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = getaddrinfo
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        socket.socket.connect = self._saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        socket.getaddrinfo = self._saved["getaddrinfo"]


# ---- subprocess recorder ------------------------------------------------------------------------


def subprocess_env(allowed: Iterable[tuple[str, int | None]], log: Path) -> dict[str, str]:
    """Environment additions that make a child Python process run under the guard."""
    spec = ",".join(f"{h}:{'*' if p is None else p}" for h, p in allowed)
    path = os.pathsep.join(p for p in (str(SITE_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {ENV_ALLOW: spec, ENV_LOG: str(log), "PYTHONPATH": path}


def install_from_env() -> EgressGuard | None:
    """Install a guard for the whole process from ``ENV_ALLOW`` / ``ENV_LOG`` (called by the
    ``sitecustomize`` in ``egress_site``); None when the variables are not set."""
    spec, log = os.environ.get(ENV_ALLOW), os.environ.get(ENV_LOG)
    if spec is None or not log:
        return None
    allowed: list[tuple[str, int | None]] = []
    for item in filter(None, spec.split(",")):
        host, _, port = item.rpartition(":")
        allowed.append((host, None if port == "*" else int(port)))
    guard = EgressGuard(allowed, log=Path(log))
    return guard.__enter__()  # for the life of the process


def read_log(log: Path) -> list[Attempt]:
    """The attempts a guarded subprocess wrote."""
    if not log.exists():
        return []
    return [Attempt(**json.loads(line)) for line in log.read_text().splitlines() if line]
