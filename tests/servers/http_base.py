"""The HTTP plumbing the protocol test servers share: standard library only.

Both HalextServer and OllamaServer are a ``ThreadingHTTPServer`` on 127.0.0.1 driven by
an owner object that records every request and can be stopped like a process going away
(every open connection cut, every handler thread joined). What lives here is only that
plumbing; routes, replies and faults stay with each server, which follows its own
protocol document.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

# The client went away mid-response: normal in Stop and timeout tests, never a server bug.
CONNECTION_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class Recorded(Protocol):
    """What the plumbing needs of a server's own RecordedRequest."""

    closed_early: bool
    dropped: bool


RecT = TypeVar("RecT", bound=Recorded)


class ClientGone(Exception):
    """The client closed the connection (or the server is stopping) mid-response."""


class PlumbingHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that reports its connections and handler errors to its owner."""

    # Non-daemon handler threads, so server_close() joins them after stop() cut the sockets:
    # no handler outlives its test.
    daemon_threads = False
    block_on_close = True
    owner: RecordingServer[Any]

    def process_request(self, request: Any, client_address: Any) -> None:
        # Tracked in the accept thread, so once shutdown() returns stop() sees every connection.
        self.owner._track(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.owner._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, CONNECTION_ERRORS):
            return  # the client went away: normal in Stop and timeout tests
        if isinstance(exc, OSError) and self.owner._stopping.is_set():
            return  # stop() cut the connection under the handler
        self.owner.errors.append(repr(exc))


class RecordingServer(Generic[RecT]):
    """Lifecycle and request recording for a test server on ``127.0.0.1:<port>``.

    Subclasses set ``handler_class`` and ``thread_name`` and call ``super().__init__()``.
    Use as a context manager, or ``start()`` / ``stop()`` (the port is kept across a stop).
    """

    handler_class: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._requests: list[RecT] = []
        self.errors: list[str] = []  # unexpected handler exceptions (a server bug if non-empty)
        self._conns: set[socket.socket] = set()
        self.connections = 0  # TCP connections accepted so far (keep-alive reuse shows here)
        self._stopping = threading.Event()
        self._httpd: PlumbingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle --

    def start(self) -> Self:
        """Bind 127.0.0.1 (port 0 the first time, the same port after a stop) and serve."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = PlumbingHTTPServer(("127.0.0.1", self._port), self.handler_class)
            httpd.owner = self
            self._port = httpd.server_address[1]
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name}:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (like the process going away)."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd, self._thread = None, None
        if httpd is None:
            return
        self._stopping.set()
        try:
            httpd.shutdown()
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            httpd.server_close()  # joins the (non-daemon) handler threads
            if thread is not None:
                thread.join(timeout=10)
        finally:
            self._stopping.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    # -- recording --

    @property
    def requests(self) -> list[RecT]:
        with self._lock:
            return list(self._requests)

    @property
    def closed_early(self) -> list[RecT]:
        """Requests whose client closed the connection before the response ended."""
        return [r for r in self.requests if r.closed_early]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` (checked on every recorded change) or the timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout=timeout)

    def wait_closed_early(self, timeout: float = 5.0) -> RecT:
        """The first request the client abandoned mid-response; AssertionError on timeout."""
        if not self.wait_for(lambda: any(r.closed_early for r in self._requests), timeout):
            raise AssertionError(f"no request was closed early within {timeout} s")
        return self.closed_early[0]

    # -- internals used by the handler --

    def _record(self, rec: RecT) -> None:
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()

    def _update(self, rec: RecT, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(rec, key, value)
            self._cond.notify_all()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
            self.connections += 1

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)


class RecordingHandler(BaseHTTPRequestHandler):
    """Request plumbing: quiet, HTTP/1.1, every method to ``_dispatch``, body reading,
    chunk writing, watching for a client that left, and cutting the connection.

    Subclasses implement ``_dispatch`` and set ``self.rec`` to the request's record.
    """

    protocol_version = "HTTP/1.1"
    server: PlumbingHTTPServer
    # An idle keep-alive connection must not pin a handler thread forever.
    timeout = 30
    rec: Any

    @property
    def owner(self) -> RecordingServer[Any]:
        return self.server.owner

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests read ``requests`` instead of a log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _client_gone(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (0: just look); True as soon as the client has closed the
        connection or the server is stopping."""
        stopping = self.owner._stopping
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([sock], [], [], remaining)
            if readable:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True
                if not data:
                    return True
                # The client sent bytes mid-response (HTTP/1.1 clients never pipeline): don't
                # spin on them.
                stopping.wait(remaining)
                return stopping.is_set()
            if stopping.is_set():
                return True
            if time.monotonic() >= deadline:
                return False

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        """Cut the TCP connection without the terminating chunk ("incomplete chunked read")."""
        self.owner._update(self.rec, dropped=True)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
