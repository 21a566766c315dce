"""A black hole on 127.0.0.1: it accepts TCP connections, reads whatever comes, and never
answers — what a firewalled port, a hung server or a dead proxy looks like to a client.
Standard library only; it records how many connections it swallowed."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


class Blackhole:
    """Listen on ``127.0.0.1:<port>`` (port 0: any free one); ``url`` for clients."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="blackhole", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(0.2)
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            for c in list(self._conns):
                with contextlib.suppress(TimeoutError, OSError):
                    data = c.recv(65536)
                    with self._lock:
                        self.received += data

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
