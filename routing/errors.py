"""Errors the router and backends report. One class, a stable ``kind``, a user-facing
message and a hint ("what to do next"). Backends translate every library exception
(httpx, ollama, openai, json, pydantic) into a RouteError so nothing raw reaches a user.

Messages must never contain secrets (tokens, passwords, API keys).
"""

from __future__ import annotations

from enum import StrEnum

# The hint of a failure only a bug explains. Routing cannot say where the log file is (that
# is storage's business): whoever shows an INTERNAL error to the user names the file.
BUG_HINT = "This is a bug in Halext Desktop; please report it"


class ErrorKind(StrEnum):
    SIGNED_OUT = "signed_out"  # no/expired halext credentials and none remembered
    AUTH_FAILED = "auth_failed"  # wrong username or password
    CONNECTION = "connection"  # server not reachable (refused, DNS, TLS)
    TIMEOUT = "timeout"  # no byte within the read timeout
    SERVER = "server"  # 5xx, non-JSON error body, proxy error page
    BAD_REQUEST = "bad_request"  # 4xx other than auth/not found
    MODEL_NOT_FOUND = "model_not_found"
    STREAM_DROPPED = "stream_dropped"  # connection lost or error line after output started
    BLOCKED = "blocked"  # refused by policy (cloud disabled, offline)
    NOT_CONFIGURED = "not_configured"  # route/host/endpoint not in settings
    FORMAT_REJECTED = "format_rejected"  # the server refused a structured-output format
    BAD_OUTPUT = "bad_output"  # reply could not be parsed (structured output)
    REDIRECT = "redirect"  # the server answered 3xx; redirects are never followed
    PLACEHOLDER = "placeholder"  # halext had no working model and sent its mock text
    INSECURE = "insecure"  # a credential would cross plain http to another machine
    INTERNAL = "internal"


class RouteError(Exception):
    """A failure with a stable kind, one clear line of text, and a hint.

    Attributes:
        kind: an ErrorKind.
        message: one line, specific ("Connection refused at 127.0.0.1:11434").
        hint: the next step for the user ("Is `ollama serve` running?"), may be "".
        status: HTTP status when there was one.
        route_id: which route failed, when known.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        hint: str = "",
        *,
        status: int | None = None,
        route_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.hint = hint
        self.status = status
        self.route_id = route_id

    def one_line(self) -> str:
        """The message and hint as one line for a CLI's stderr or a banner."""
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def __repr__(self) -> str:
        return f"RouteError({self.kind.value!r}, {self.message!r})"
