"""A faithful halext-org API server for tests: real HTTP on 127.0.0.1, standard library only.

It follows /work/shared/docs/halext-api.md (the contract), quirks included:

- every route answers under ``/api`` and at the root; a wrong trailing slash gets ``307``
  with a ``location``; unknown paths ``404 {"detail":"Not Found"}``;
- ``POST /token`` is form-encoded (username or email), JSON bodies get 422, bad
  credentials 401 with ``WWW-Authenticate: Bearer``; tokens are HS256 JWTs with ``sub``
  and ``exp`` (30 min), checked against the server's own (controllable) clock; the two
  401 shapes (``Not authenticated`` / ``Could not validate credentials``);
- ``GET /ai/models`` lists curated cloud models (when configured), the server's Ollama
  models, client-node models, mock models only when nothing else, moves the default to
  the front and **rewrites the server-wide default**; the ``provider`` filter's
  no-match bug; ``limit`` 1..500;
- ``POST /ai/chat`` resolves identifiers exactly like ``AiGateway`` (§4): resolution
  substitutes ``openai:gpt-4o-mini`` / ``gemini:gemini-1.5-flash`` / ``mock:mock`` for an
  unavailable provider; a provider that fails falls back to OpenAI / Gemini / ``mock:llama3.1``,
  all with HTTP 200;
- ``POST /ai/chat/stream`` (and ``/ai/stream``) writes ``data: <raw chunk>\\n\\n`` per chunk,
  unescaped, then ``data: [DONE]\\n\\n``, flushed per chunk over chunked transfer, with
  ``X-Halext-AI-Model``; a failing provider appends the mock sentence word by word while the
  header keeps the resolved identifier;
- unhandled server errors are plain-text ``Internal Server Error`` (the endpoints that 500 at
  upstream commit a689c6c do so here too).

Replies are deterministic so tests can check exact reconstruction:

    expected_reply("ollama:llama3.1:8b", "hi") == "[ollama:llama3.1:8b] echo: hi\\n\\nDone."
    reply_chunks(text) == pieces of 5 characters (one of them holds a newline)
    the mock provider streams MOCK_SENTENCE word by word, each word with a trailing space.

Every request is recorded (``requests``), including, for streams, how many chunks were
sent and whether the client closed the connection before the end (``closed_early``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.servers.http_base import CONNECTION_ERRORS, ClientGone, RecordingHandler, RecordingServer

VERSION = "0.2.0-refactored"
# What a node's Ollama can pull by default (the names the test Ollama server offers too).
NODE_PULLABLE = ("tinyllama:latest", "phi3:mini")
# str(httpx.ConnectError) when nothing listens at a node's address.
NODE_CONNECT_ERROR = "All connection attempts failed"
# Ollama's name check (server side): a bad name is 400 before any streaming.
_OLLAMA_NAME_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9._-]+)?$"
)
API_NAME = "Halext Org API"
MOCK_SENTENCE = "I am a mock AI assistant. Connect me to a real backend to get started!"
DEFAULT_MODEL_ID = "gemini:gemini-2.5-flash"
OLLAMA_URL = "http://localhost:11434"
OPENAI_FALLBACK_MODEL = "gpt-4o-mini"  # OPENAI_MODEL default
GEMINI_FALLBACK_MODEL = "gemini-1.5-flash"  # GEMINI_MODEL default
CURATED = {
    "openai": [
        "gpt-5.1",
        "gpt-5.1-codex",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4-turbo",
        "gpt-4-turbo-preview",
    ],
    "gemini": [
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-1.5-pro-latest",
        "gemini-1.5-flash-latest",
    ],
}
CLOUD_ENDPOINTS = {
    "openai": "https://api.openai.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
# A few metadata values in the shape backend/app/model_metadata.py fills in.
_CLOUD_META: dict[str, dict[str, Any]] = {
    "gpt-4o-mini": {
        "context_window": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_1m": 0.15,
        "output_cost_per_1m": 0.6,
        "supports_vision": True,
        "supports_function_calling": True,
    },
    "gpt-4o": {
        "context_window": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_1m": 2.5,
        "output_cost_per_1m": 10.0,
        "supports_vision": True,
        "supports_function_calling": True,
    },
    "gemini-2.5-flash": {
        "context_window": 1048576,
        "max_output_tokens": 65536,
        "input_cost_per_1m": 0.3,
        "output_cost_per_1m": 2.5,
        "supports_vision": True,
        "supports_function_calling": True,
    },
    "gemini-2.5-pro": {
        "context_window": 1048576,
        "max_output_tokens": 65536,
        "input_cost_per_1m": 1.25,
        "output_cost_per_1m": 10.0,
        "supports_vision": True,
        "supports_function_calling": True,
    },
}
_MODEL_INFO_KEYS = (
    "id",
    "name",
    "provider",
    "source",
    "size",
    "node_id",
    "node_name",
    "endpoint",
    "latency_ms",
    "metadata",
    "modified_at",
    "description",
    "context_window",
    "max_output_tokens",
    "input_cost_per_1m",
    "output_cost_per_1m",
    "supports_vision",
    "supports_function_calling",
)
STREAM_PATHS = ("/ai/chat/stream", "/ai/stream")
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0 (Ubuntu)</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# ---- deterministic content ----------------------------------------------------------------


def expected_reply(identifier: str, prompt: str) -> str:
    """What a working non-mock provider answers for ``prompt`` (``identifier`` = resolved id)."""
    return f"[{identifier}] echo: {prompt}\n\nDone."


def reply_chunks(text: str, width: int = 5) -> list[str]:
    """How a working provider streams ``text``: fixed-width pieces (spaces and newlines kept)."""
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def mock_chunks() -> list[str]:
    """The mock provider's stream: each word with a trailing space (the text ends with one)."""
    return [word + " " for word in MOCK_SENTENCE.split()]


def mock_embedding(text: str) -> list[float]:
    """Upstream's deterministic 384-dim pseudo-vector from an MD5 of the text."""
    hash_val = int(hashlib.md5(text.encode()).hexdigest(), 16)
    return [(hash_val >> i) % 100 / 100.0 for i in range(384)]


def ollama_embedding(text: str, model: str) -> list[float]:
    """Stand-in for a real Ollama vector: 16 floats derived from model and text."""
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:16]]


# ---- JWT (HS256) without dependencies ---------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(claims: Mapping[str, Any], secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def jwt_decode(token: str, secret: str) -> dict[str, Any] | None:
    """Claims when the HS256 signature is valid (expiry is checked by the caller)."""
    try:
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            return None
        expected = hmac.new(
            secret.encode(), f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, _b64url_decode(sig_b64)):
            return None
        claims = json.loads(_b64url_decode(payload_b64))
    except (ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


# ---- recording ------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server saw it.

    ``path`` is what the client asked (``/api/ai/chat``); ``route`` the same without the
    ``/api`` mount (``/ai/chat``). Headers are lower-cased. ``json`` / ``form`` hold the
    parsed body when it was JSON / form-encoded.
    """

    method: str
    path: str
    route: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_bytes: bytes
    json: Any = None
    form: dict[str, str] | None = None
    status: int | None = None
    streamed: bool = False
    chunks_sent: int = 0
    closed_early: bool = False  # the client closed its connection before the response ended
    dropped: bool = False  # a stream_script cut the connection on purpose
    completed: bool = False  # the whole response (for streams: up to [DONE]) was written
    done: bool = False  # the handler has finished with this request
    user: str | None = None  # who the token belonged to, when it was valid

    @property
    def stream_closed_early(self) -> bool:
        return self.closed_early


@dataclass
class _Fault:
    path: str | None
    method: str | None = None
    status: int = 500
    body: bytes = b"Internal Server Error"
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    persistent: bool = False


@dataclass
class _Delay:
    seconds: float
    path: str | None = None
    persistent: bool = False


@dataclass
class _Script:
    chunks: list[str]
    delay_s: float = 0.0
    drop_after: int | None = None
    model: str | None = None
    persistent: bool = False


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Stream:
    chunks: list[str]
    headers: dict[str, str]
    delay_s: float | None = None  # None: the server-wide chunk delay
    drop_after: int | None = None


@dataclass
class _Ctx:
    """A resolved route (``_ProviderContext``): routing key, model, resolved identifier."""

    key: str
    model: str
    identifier: str
    node: dict[str, Any] | None = None


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return _Reply(status, body, "application/json", dict(headers or {}))


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> _Reply:
    return _json(status, {"detail": detail}, headers)


def _plain_500() -> _Reply:
    return _Reply(500, b"Internal Server Error", "text/plain; charset=utf-8")


def _err(kind: str, loc: list[Any], msg: str, inp: Any, ctx: dict[str, Any] | None = None) -> dict:
    out: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": inp}
    if ctx is not None:
        out["ctx"] = ctx
    return out


def _unprocessable(errors: list[dict[str, Any]]) -> _Reply:
    return _json(422, {"detail": errors})


def _client_id(params: dict[str, str]) -> int | _Reply:
    """The path's ``client_id`` as FastAPI parses it, or its 422."""
    try:
        return int(params["client_id"])
    except ValueError:
        return _unprocessable(
            [
                _err(
                    "int_parsing",
                    ["path", "client_id"],
                    "Input should be a valid integer, unable to parse string as an integer",
                    params["client_id"],
                )
            ]
        )


# ---- the HTTP plumbing ----------------------------------------------------------------------


class _Handler(RecordingHandler):
    server_version = "uvicorn"
    sys_version = ""
    # Headers, body and every stream chunk are separate writes: without TCP_NODELAY, Nagle
    # plus delayed ACKs add ~40 ms per response and batch stream chunks together.
    disable_nagle_algorithm = True

    @property
    def owner(self) -> HalextServer:
        return cast(HalextServer, self.server.owner)

    def _dispatch(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        route = _strip_api(path)
        ctype = self.headers.get("Content-Type", "").lower()
        body: Any = None
        form: dict[str, str] | None = None
        if ctype.startswith("application/x-www-form-urlencoded"):
            parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            form = {k: v[-1] for k, v in parsed.items()}
        elif raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = None
        rec = RecordedRequest(
            method=self.command,
            path=path,
            route=route or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body_bytes=raw,
            json=body,
            form=form,
        )
        self.rec = rec
        self.owner._record(rec)
        try:
            reply = self.owner._handle(rec, self.headers.get("Host", ""))
            delay = self.owner._take_delay(rec.route)
            if delay > 0 and self._client_gone(delay):
                raise ClientGone
            if isinstance(reply, _Stream):
                self._send_stream(reply)
            else:
                self._send(reply)
        except ClientGone:
            self.owner._update(rec, closed_early=True)
            self.close_connection = True
        except CONNECTION_ERRORS:
            self.owner._update(rec, closed_early=True)
            self.close_connection = True
        finally:
            self.owner._update(rec, done=True)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("content-type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(reply.body)))
        # Recorded before the bytes go out, so a client that has the answer sees the status.
        self.owner._update(self.rec, status=reply.status)
        self.end_headers()
        self.wfile.write(reply.body)
        self.owner._update(self.rec, completed=True)

    def _send_stream(self, stream: _Stream) -> None:
        # StreamingResponse over chunked transfer, one HTTP chunk per SSE event, written as
        # soon as it is produced (wfile is unbuffered), like uvicorn.
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        for k, v in stream.headers.items():
            self.send_header(k, v)
        self.send_header("transfer-encoding", "chunked")
        self.owner._update(self.rec, status=200, streamed=True)
        self.end_headers()
        events = [f"data: {c}\n\n".encode() for c in stream.chunks]
        for sent, event in enumerate(events):
            if stream.drop_after is not None and sent >= stream.drop_after:
                self._drop()
                return
            delay = self.owner._chunk_delay if stream.delay_s is None else stream.delay_s
            if sent > 0 and delay > 0 and self._client_gone(delay):
                raise ClientGone
            if self._client_gone(0):
                raise ClientGone
            self._write_chunk(event)
            self.owner._update(self.rec, chunks_sent=sent + 1)
        if stream.drop_after is not None:
            self._drop()
            return
        delay = self.owner._chunk_delay if stream.delay_s is None else stream.delay_s
        if events and delay > 0 and self._client_gone(delay):
            raise ClientGone
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_stream()
        self.owner._update(self.rec, completed=True)


# ---- routes ---------------------------------------------------------------------------------

_ROUTES: list[tuple[str, re.Pattern[str], str]] = []


def _route(method: str, pattern: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _ROUTES.append((method, regex, fn.__name__))
        return fn

    return deco


# ---- the server -----------------------------------------------------------------------------


class HalextServer(RecordingServer[RecordedRequest]):
    """A halext-org look-alike on ``http://127.0.0.1:<port>`` (``url`` ends in ``/api``).

    Args:
        users: username -> password. Emails are ``<username>@example.com``.
        admins: usernames with ``is_admin``.
        token_lifetime_s: JWT lifetime (upstream: fixed 30 minutes).
        cloud_configured: True (OpenAI and Gemini keys in the environment), False, or the
            set of configured cloud providers, e.g. ``{"gemini"}``.
        server_ollama_models: what the server's own Ollama (``/api/tags``) has; None or
            ``ollama_reachable=False`` means it is down (contributes nothing, chats fail).
        client_nodes: registered AI client nodes: ``id``, ``name``, ``models`` (what the
            node's Ollama has), ``latency_ms`` and optionally ``hostname``, ``port``,
            ``status`` ("online"), ``last_seen_at`` (ISO string: makes the admin list 500, as
            upstream), ``is_public``, ``is_active``, ``owner_id``, ``reachable``,
            ``node_type`` ("ollama"), ``caps_models`` (the server's cached
            ``capabilities.models``, refreshed only by a test; default: ``models``),
            ``pullable`` (names the node's Ollama can pull) and ``version``.
        default_model_id: ``AI_DEFAULT_MODEL``.
        secret: the JWT signing key.
    """

    handler_class = _Handler
    thread_name = "halext-test-server"

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        admins: Iterable[str] = ("dev",),
        token_lifetime_s: int = 1800,
        cloud_configured: bool | Iterable[str] = True,
        server_ollama_models: Sequence[str] | None = ("llama3.1:8b", "qwen2.5:7b"),
        client_nodes: Sequence[Mapping[str, Any]] | None = None,
        default_model_id: str = DEFAULT_MODEL_ID,
        secret: str = "halext-test-secret",
        ollama_reachable: bool = True,
    ) -> None:
        super().__init__()
        users = {"dev": "dev123"} if users is None else users
        admin_set = set(admins)
        self._users: dict[str, dict[str, Any]] = {}
        for i, (name, password) in enumerate(users.items(), start=1):
            self._users[name] = {
                "id": i,
                "username": name,
                "email": f"{name}@example.com",
                "full_name": name.title(),
                "is_admin": name in admin_set,
                "password": password,
                "created_at": "2026-01-05T10:00:00",
            }
        self.token_lifetime_s = token_lifetime_s
        if cloud_configured is True:
            self.cloud: set[str] = {"openai", "gemini"}
        elif cloud_configured is False:
            self.cloud = set()
        else:
            self.cloud = set(cloud_configured)
        self.ollama_models: list[str] = list(server_ollama_models or [])
        self.ollama_reachable = ollama_reachable and server_ollama_models is not None
        nodes = (
            [{"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22}]
            if client_nodes is None
            else client_nodes
        )
        self._nodes: dict[int, dict[str, Any]] = {}
        for spec in nodes:
            node = {
                "hostname": f"node{spec['id']}.lan",
                "port": 11434,
                "status": "online",
                "last_seen_at": None,
                "is_public": True,
                "is_active": True,
                "owner_id": 1,
                "node_type": "ollama",
                "reachable": True,
                "latency_ms": None,
                "models": [],
                "pullable": list(NODE_PULLABLE),
                "version": "0.12.3",
                **dict(spec),
            }
            node["models"] = list(node["models"])
            # Creating a node tests it at once: its capabilities hold the models it had then.
            node.setdefault("caps_models", list(node["models"]))
            self._nodes[int(node["id"])] = node
        self._default_model_id = default_model_id
        self._secret = secret
        self._clock_offset = 0.0
        self._issued: set[str] = set()
        self._revoked: set[str] = set()
        self._provider_failures: dict[str, int] = {}  # resolved id -> chunks before failing
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._scripts: list[_Script] = []
        self._chunk_delay = 0.0

    # -- addresses --

    @property
    def url(self) -> str:
        """The client base URL, mounted at ``/api`` like production behind nginx."""
        return f"http://127.0.0.1:{self._port}/api"

    @property
    def root_url(self) -> str:
        """The same routes at the root (upstream mounts every router twice)."""
        return f"http://127.0.0.1:{self._port}"

    # -- clock and tokens --

    def now(self) -> float:
        """The server's clock (Unix seconds), which decides token expiry."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    def expire_all_tokens(self) -> None:
        """Every token issued so far is rejected from now on (``Could not validate
        credentials``), as if it had expired; logging in again issues a valid one."""
        with self._lock:
            self._revoked |= self._issued
            self._issued = set()

    def issue_token(self, username: str, *, lifetime_s: float | None = None) -> str:
        """A token as ``POST /token`` would issue it now (for tests that need one)."""
        life = self.token_lifetime_s if lifetime_s is None else lifetime_s
        token = jwt_encode({"sub": username, "exp": int(self.now() + life)}, self._secret)
        with self._lock:
            self._issued.add(token)
            self._revoked.discard(token)
        return token

    def set_password(self, username: str, password: str) -> None:
        """Change a user's password (a remembered one then stops working)."""
        with self._lock:
            self._users[username]["password"] = password

    def remove_user(self, username: str) -> None:
        """Delete a user: their tokens then fail with ``Could not validate credentials``."""
        with self._lock:
            self._users.pop(username, None)

    @property
    def default_model_id(self) -> str:
        """The server-wide default (rewritten by every ``GET /ai/models``)."""
        with self._lock:
            return self._default_model_id

    def set_default_model_id(self, model_id: str) -> None:
        with self._lock:
            self._default_model_id = model_id

    # -- nodes --

    def set_node(self, node_id: int, **changes: Any) -> None:
        """Change a client node: ``last_seen_at="2026-01-05T10:00:00"``, ``reachable=False``..."""
        with self._lock:
            self._nodes[node_id].update(changes)

    def node(self, node_id: int) -> dict[str, Any]:
        """A copy of a client node's state (``models`` is what its Ollama really has)."""
        with self._lock:
            return {
                k: list(v) if isinstance(v, list) else v for k, v in self._nodes[node_id].items()
            }

    # -- recording --

    def requests_to(self, route: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests to ``route`` (with or without the ``/api`` prefix)."""
        route = _strip_api(route)
        return [r for r in self.requests if r.route == route and method in (None, r.method)]

    @property
    def stream_closed_early(self) -> bool:
        """True once any stream was abandoned by its client mid-response."""
        return any(r.streamed and r.closed_early for r in self.requests)

    # -- faults --

    def fail_next(
        self,
        path: str | None = None,
        status: int = 500,
        body: str | bytes = "Internal Server Error",
        content_type: str = "text/plain",
        *,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        persistent: bool = False,
    ) -> None:
        """Answer the next request to ``path`` (any route when None) with this response,
        before auth or validation: a crash's plain-text 500, nginx's HTML 502 (``NGINX_502``
        with ``content_type="text/html"``), or anything else. ``persistent`` keeps it."""
        data = body.encode() if isinstance(body, str) else body
        fault = _Fault(
            None if path is None else _strip_api(path),
            method,
            status,
            data,
            content_type,
            dict(headers or {}),
            persistent,
        )
        with self._lock:
            self._faults += [fault] * (1 if persistent else times)

    def delay_first_byte(
        self, seconds: float, *, path: str | None = None, persistent: bool = False
    ) -> None:
        """Wait ``seconds`` before the first byte of the next response (to ``path``)."""
        with self._lock:
            self._delays.append(
                _Delay(seconds, None if path is None else _strip_api(path), persistent)
            )

    def stream_script(
        self,
        chunks: Sequence[str],
        delay_s: float | None = None,
        drop_after: int | None = None,
        *,
        model: str | None = None,
        persistent: bool = False,
    ) -> None:
        """The next chat stream sends exactly these raw chunks (each as ``data: <chunk>\\n\\n``),
        then ``[DONE]``; with ``drop_after=N`` it cuts the connection after N chunks instead.
        ``model`` overrides the ``X-Halext-AI-Model`` header (default: the resolved id)."""
        with self._lock:
            self._scripts.append(
                _Script(list(chunks), delay_s or 0.0, drop_after, model, persistent)
            )

    def set_chunk_delay(self, seconds: float) -> None:
        """Pause between streamed chunks (sticky; 0 clears). Lets Stop tests act mid-stream."""
        self._chunk_delay = seconds

    def fail_provider(self, identifier: str, after_chunks: int = 0) -> None:
        """The provider behind a resolved identifier fails (after streaming ``after_chunks``)."""
        with self._lock:
            self._provider_failures[identifier] = after_chunks

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._scripts.clear()
            self._provider_failures.clear()
            self._chunk_delay = 0.0

    # -- internals used by the handler --

    def _take_fault(self, route: str, method: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path in (None, route) and fault.method in (None, method):
                    return fault if fault.persistent else self._faults.pop(i)
        return None

    def _take_delay(self, route: str) -> float:
        with self._lock:
            for i, delay in enumerate(self._delays):
                if delay.path in (None, route):
                    if not delay.persistent:
                        self._delays.pop(i)
                    return delay.seconds
        return 0.0

    def _take_script(self) -> _Script | None:
        with self._lock:
            if not self._scripts:
                return None
            script = self._scripts[0]
            if not script.persistent:
                self._scripts.pop(0)
            return script

    def _handle(self, rec: RecordedRequest, host: str) -> _Reply | _Stream:
        fault = self._take_fault(rec.route, rec.method)
        if fault is not None:
            return _Reply(fault.status, fault.body, fault.content_type, fault.headers)
        matches = [(m, rx, name) for m, rx, name in _ROUTES if rx.match(rec.route)]
        if not matches:
            # Starlette's redirect_slashes: the other slash form exists → 307 to it.
            alt = rec.route[:-1] if rec.route.endswith("/") else rec.route + "/"
            if alt != "/" and any(rx.match(alt) for _, rx, _ in _ROUTES):
                prefix = rec.path[: len(rec.path) - len(rec.route)] if rec.route != "/" else ""
                query = urlencode(rec.query, doseq=True)
                location = f"http://{host}{prefix}{alt}" + (f"?{query}" if query else "")
                return _Reply(307, b"", None, {"location": location})
            return _detail(404, "Not Found")
        for method, rx, name in matches:
            if method == rec.method:
                m = rx.match(rec.route)
                assert m is not None
                try:
                    result: _Reply | _Stream = getattr(self, name)(rec, m.groupdict())
                    return result
                except Exception as exc:  # an unhandled exception is a plain-text 500 upstream
                    self.errors.append(repr(exc))
                    return _plain_500()
        allowed = ", ".join(sorted({m for m, _, _ in matches}))
        return _detail(405, "Method Not Allowed", {"allow": allowed})

    # -- auth --

    def _user_for(self, rec: RecordedRequest) -> dict[str, Any] | _Reply:
        auth = rec.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth or scheme.lower() != "bearer":
            return _detail(401, "Not authenticated", {"www-authenticate": "Bearer"})
        bad = _detail(401, "Could not validate credentials", {"www-authenticate": "Bearer"})
        token = token.strip()
        claims = jwt_decode(token, self._secret)
        if claims is None:
            return bad
        exp, sub = claims.get("exp"), claims.get("sub")
        with self._lock:
            revoked = token in self._revoked
            user = self._users.get(sub) if isinstance(sub, str) else None
        # python-jose: expired when exp < now (whole seconds).
        if revoked or not isinstance(exp, int | float) or exp < int(self.now()) or user is None:
            return bad
        self._update(rec, user=user["username"])
        return user

    def _admin_for(self, rec: RecordedRequest) -> dict[str, Any] | _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        if not user["is_admin"]:
            return _detail(403, "Admin access required")
        return user

    @staticmethod
    def _user_json(user: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "username": user["username"],
            "email": user["email"],
            "full_name": user["full_name"],
            "is_admin": user["is_admin"],
            "id": user["id"],
            "created_at": user["created_at"],
            "tasks": [],
            "events": [],
            "pages": [],
            "labels": [],
        }

    # -- the gateway (backend/app/ai.py AiGateway) --

    def _default_pair(self) -> tuple[str, str]:
        ident = self._default_model_id
        key, _, model = ident.partition(":")
        return key, model

    def _parse_identifier(self, ident: str | None) -> tuple[str, str, int | None]:
        default_key, default_model = self._default_pair()
        if not ident:
            return default_key, default_model, None
        if ident.startswith("client:"):
            parts = ident.split(":", 2)
            if len(parts) < 3:
                return "client", default_model, None
            try:
                node_id: int | None = int(parts[1])
            except ValueError:
                node_id = None
            return "client", parts[2], node_id
        if ":" in ident:
            key, model = ident.split(":", 1)
            return key or default_key, model or default_model, None
        return default_key, ident, None

    def _visible_node(self, node_id: int | None, user: Mapping[str, Any]) -> dict[str, Any] | None:
        if not node_id:
            return None
        node = self._nodes.get(node_id)
        if node is None or not node["is_active"]:
            return None
        if node["owner_id"] != user["id"] and not node["is_public"]:
            return None
        return node

    def _resolve(self, ident: str | None, user: Mapping[str, Any]) -> _Ctx:
        """``_resolve_provider_context``: an unavailable provider is silently substituted."""
        key, model, node_id = self._parse_identifier(ident)
        node = None
        available: bool
        if key == "client":
            node = self._visible_node(node_id, user)
            available = node is not None
        elif key in ("openai", "gemini"):
            available = key in self.cloud
        elif key in ("ollama", "ollama-local"):
            available = True  # registered whenever OLLAMA_URL is set, reachable or not
        elif key == "mock":
            available = True
        else:  # openwebui (OPENWEBUI_URL unset) and unknown keys
            available = False
        if not available:
            node = None
            if "openai" in self.cloud:
                key, model = "openai", OPENAI_FALLBACK_MODEL
            elif "gemini" in self.cloud:
                key, model = "gemini", GEMINI_FALLBACK_MODEL
            else:
                key, model = "mock", "mock"
        if key == "client" and node is not None:
            identifier = f"client:{node['id']}:{model}"
        else:
            identifier = f"{'ollama' if key == 'ollama-local' else key}:{model}"
        return _Ctx(key, model, identifier, node)

    def _works(self, ctx: _Ctx) -> bool:
        """Whether the provider would answer this model (else it raises upstream)."""
        if ctx.key == "mock":
            return True
        if ctx.key in ("openai", "gemini"):
            known = set(CURATED[ctx.key]) | {OPENAI_FALLBACK_MODEL, GEMINI_FALLBACK_MODEL}
            return ctx.key in self.cloud and ctx.model in known
        if ctx.key in ("ollama", "ollama-local"):
            return self.ollama_reachable and _ollama_has(self.ollama_models, ctx.model)
        if ctx.key == "client" and ctx.node is not None:
            return bool(ctx.node["reachable"]) and _ollama_has(ctx.node["models"], ctx.model)
        return False

    def _chunks_for(self, ctx: _Ctx, prompt: str) -> tuple[list[str], bool]:
        """(chunks the provider yields, whether it failed) for a stream on ``ctx``."""
        if ctx.key == "mock":
            return mock_chunks(), False
        if not self._works(ctx):
            return [], True
        chunks = reply_chunks(expected_reply(ctx.identifier, prompt))
        with self._lock:
            fail_after = self._provider_failures.get(ctx.identifier)
        if fail_after is not None:
            return chunks[:fail_after], True
        return chunks, False

    def _generate(self, ctx: _Ctx, prompt: str) -> str | None:
        chunks, failed = self._chunks_for(ctx, prompt)
        return None if failed else "".join(chunks)

    def _model_entries(self, user: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``AiGateway.get_models``: cloud (curated), openwebui, server Ollama, client nodes."""
        entries: list[dict[str, Any]] = []
        for key in ("openai", "gemini"):
            if key not in self.cloud:
                continue
            for name in CURATED[key]:
                meta = _CLOUD_META.get(name, {})
                entries.append(
                    _model_entry(
                        key,
                        name,
                        endpoint=CLOUD_ENDPOINTS[key],
                        description=f"{name} ({'OpenAI' if key == 'openai' else 'Google'})",
                        **meta,
                    )
                )
        if self.ollama_reachable:
            for i, name in enumerate(self.ollama_models):
                size = 4_000_000_000 + 1_000_000 * i
                modified = "2025-01-01T00:00:00Z"
                metadata: dict[str, Any] = {
                    "name": name,
                    "model": name,
                    "size": size,
                    "modified_at": modified,
                    "details": {"format": "gguf", "quantization_level": "Q4_K_M"},
                }
                entries.append(
                    _model_entry(
                        "ollama",
                        name,
                        size=size,
                        endpoint=OLLAMA_URL,
                        metadata=metadata,
                        modified_at=modified,
                    )
                )
        for node in sorted(self._nodes.values(), key=lambda n: n["id"]):
            if self._visible_node(node["id"], user) is None:
                continue
            if node["status"] != "online" and not node["last_seen_at"]:
                continue
            if not node["reachable"]:
                continue
            caps = {
                "models": list(node["models"]),
                "model_count": len(node["models"]),
                "last_response_time_ms": node["latency_ms"],
            }
            for name in node["models"]:
                entries.append(
                    _model_entry(
                        "client",
                        name,
                        node=node,
                        endpoint=_node_url(node),
                        metadata=caps,
                        latency_ms=node["latency_ms"],
                    )
                )
        if not entries:
            entries = [_model_entry("mock", "llama3.1"), _model_entry("mock", "mistral")]
        return entries

    def _credentials(self) -> list[dict[str, Any]]:
        return [
            {
                "provider": p,
                "has_key": p in self.cloud,
                "masked_key": None,
                "key_name": "env" if p in self.cloud else None,
                "model": None,
            }
            for p in ("openai", "gemini")
        ]

    # -- handlers (names referenced by _ROUTES) --

    @_route("GET", "/health")
    def h_health(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        key, model = self._default_pair()
        missing = [f"{p.upper()}_API_KEY" for p in ("openai", "gemini") if p not in self.cloud]
        return _json(
            200,
            {
                "status": "healthy",
                "version": VERSION,
                "timestamp": datetime.fromtimestamp(self.now(), UTC)
                .replace(tzinfo=None)
                .isoformat(),
                "env": {
                    "issues": [],
                    "warnings": [],
                    "configured_providers": sorted(self.cloud),
                    "missing_provider_keys": missing,
                    "offline": False,
                    "dev_mode": True,
                },
                "components": {"database": "healthy", "ai_provider": key, "ai_model": model},
                "system": {"python": "3.11.9", "platform": "Linux"},
            },
        )

    @_route("GET", "/version")
    def h_version(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        return _json(
            200,
            {
                "version": VERSION,
                "api_name": API_NAME,
                "docs_url": "/docs",
                "features": ["tasks", "events", "ai", "conversations", "ai-clients"],
            },
        )

    @_route("POST", "/token")
    def h_token(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        form = rec.form or {}
        errors = [
            _err("missing", ["body", name], "Field required", None)
            for name in ("username", "password")
            if name not in form
        ]
        if errors:
            return _unprocessable(errors)
        with self._lock:
            user = self._users.get(form["username"]) or next(
                (u for u in self._users.values() if u["email"] == form["username"]), None
            )
        if user is None or not hmac.compare_digest(user["password"], form["password"]):
            return _detail(401, "Incorrect username or password", {"www-authenticate": "Bearer"})
        token = self.issue_token(user["username"])
        return _json(200, {"access_token": token, "token_type": "bearer"})

    @_route("GET", "/users/me/")
    def h_me(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        return _json(200, self._user_json(user))

    @_route("GET", "/ai/models")
    def h_models(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        limit_raw = rec.query.get("limit", ["200"])[-1]
        try:
            limit = int(limit_raw)
        except ValueError:
            return _unprocessable(
                [
                    _err(
                        "int_parsing",
                        ["query", "limit"],
                        "Input should be a valid integer, unable to parse string as an integer",
                        limit_raw,
                    )
                ]
            )
        if limit < 1:
            return _unprocessable(
                [
                    _err(
                        "greater_than_equal",
                        ["query", "limit"],
                        "Input should be greater than or equal to 1",
                        limit_raw,
                        {"ge": 1},
                    )
                ]
            )
        if limit > 500:
            return _unprocessable(
                [
                    _err(
                        "less_than_equal",
                        ["query", "limit"],
                        "Input should be less than or equal to 500",
                        limit_raw,
                        {"le": 500},
                    )
                ]
            )
        entries = self._model_entries(user)
        credentials = self._credentials()
        provider_filter = rec.query.get("provider", [None])[-1]
        normalized = None
        if provider_filter:
            normalized = provider_filter.lower()
            if normalized == "ollama-local":
                normalized = "ollama"
            entries = [e for e in entries if (e["provider"] or "").lower() == normalized]
            if not entries:
                # Upstream bug (observed): the no-match path raises and the catch-all answers
                # this hard-coded fallback, without touching the server default.
                return _json(
                    200,
                    {
                        "models": [_model_entry("mock", "llama3.1")],
                        "provider": "mock",
                        "current_model": "llama3.1",
                        "default_model_id": "mock:llama3.1",
                        "credentials": [],
                    },
                )
            credentials = [c for c in credentials if c["provider"] == normalized]
        has_key = {c["provider"]: c["has_key"] for c in credentials}

        def has_credentials(key: str) -> bool:
            key = "ollama" if key == "ollama-local" else key
            if key in ("openai", "gemini"):
                return has_key.get(key, False) or key in self.cloud
            return True

        ids = [e["id"] for e in entries]
        provider_first: dict[str, str] = {}
        for e in entries:
            provider_first.setdefault(e["provider"], e["id"])
        with self._lock:
            default = self._default_model_id
            current_key = self._parse_identifier(default)[0]
            if not default or default not in ids or not has_credentials(current_key):
                priorities = ["openai", "gemini", "openwebui", "ollama", "client"]
                if normalized:
                    priorities = [normalized] + [p for p in priorities if p != normalized]
                preferred = None
                for key in priorities:
                    if not has_credentials(key):
                        continue
                    preferred = next((i for i in ids if i.startswith(f"{key}:")), None)
                    if preferred:
                        break
                if not preferred:
                    preferred = next(
                        (i for p, i in provider_first.items() if has_credentials(p)), None
                    )
                default = preferred or (ids[0] if ids else "mock:llama3.1")
            # The choice becomes the server-wide default for every user (§4).
            self._default_model_id = default
            key, model, _ = self._parse_identifier(default)
        entries.sort(key=lambda e: 0 if e["id"] == default else 1)
        return _json(
            200,
            {
                "models": entries[:limit],
                "provider": key,
                "current_model": model,
                "default_model_id": default,
                "credentials": credentials,
            },
        )

    @_route("GET", "/ai/info")
    def h_info(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        key, model = self._default_pair()
        return _json(
            200,
            {
                "provider": key,
                "model": model,
                "default_model_id": self._default_model_id,
                "available_providers": sorted({"ollama-local"} | self.cloud),
                "ollama_url": OLLAMA_URL,
                "openwebui_url": None,
                "openwebui_public_url": None,
                "credentials": self._credentials(),
            },
        )

    @_route("GET", "/ai/provider-info")
    def h_provider_info(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        return self.h_info(rec, params)

    def _chat_request(
        self, rec: RecordedRequest
    ) -> tuple[str, list[dict[str, str]], str | None] | _Reply:
        """Validate ``AiChatRequest`` like pydantic (``history: List[Dict[str, str]]``)."""
        body = _json_body(rec)
        if isinstance(body, _Reply):
            return body
        errors: list[dict[str, Any]] = []
        if "prompt" not in body:
            errors.append(_err("missing", ["body", "prompt"], "Field required", body))
        elif not isinstance(body["prompt"], str):
            errors.append(
                _err(
                    "string_type",
                    ["body", "prompt"],
                    "Input should be a valid string",
                    body["prompt"],
                )
            )
        history = body.get("history", [])
        if not isinstance(history, list):
            errors.append(
                _err("list_type", ["body", "history"], "Input should be a valid list", history)
            )
        else:
            for i, item in enumerate(history):
                if not isinstance(item, dict):
                    errors.append(
                        _err(
                            "dict_type",
                            ["body", "history", i],
                            "Input should be a valid dictionary",
                            item,
                        )
                    )
                    continue
                for k, v in item.items():
                    if not isinstance(v, str):
                        errors.append(
                            _err(
                                "string_type",
                                ["body", "history", i, k],
                                "Input should be a valid string",
                                v,
                            )
                        )
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            errors.append(
                _err("string_type", ["body", "model"], "Input should be a valid string", model)
            )
        if errors:
            return _unprocessable(errors)
        return body["prompt"], history, model

    @_route("POST", "/ai/chat")
    def h_chat(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        parsed = self._chat_request(rec)
        if isinstance(parsed, _Reply):
            return parsed
        prompt, _history, model = parsed
        ctx = self._resolve(model, user)
        text = self._generate(ctx, prompt)
        if text is None:
            # generate_reply's failure fallback: OpenAI, else Gemini, else the mock text.
            if ctx.key not in ("openai", "gemini") and self.cloud:
                first = "openai" if "openai" in self.cloud else "gemini"
                fallback = "openai:gpt-4o-mini" if first == "openai" else "gemini:gemini-1.5-flash"
                ctx = self._resolve(fallback, user)
                text = self._generate(ctx, prompt)
            if text is None:
                ctx = _Ctx("mock", "llama3.1", "mock:llama3.1")
                text = MOCK_SENTENCE
        return _json(200, {"response": text, "model": ctx.identifier, "provider": ctx.key})

    def _chat_stream(self, rec: RecordedRequest) -> _Reply | _Stream:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        parsed = self._chat_request(rec)
        if isinstance(parsed, _Reply):
            return parsed
        prompt, _history, model = parsed
        ctx = self._resolve(model, user)
        script = self._take_script()
        if script is not None:
            return _Stream(
                list(script.chunks),
                {"x-halext-ai-model": script.model or ctx.identifier},
                script.delay_s or None,
                script.drop_after,
            )
        chunks, failed = self._chunks_for(ctx, prompt)
        if failed:
            chunks = chunks + mock_chunks()  # no error events: the mock text is appended
        return _Stream(chunks, {"x-halext-ai-model": ctx.identifier})

    @_route("POST", "/ai/chat/stream")
    def h_chat_stream(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply | _Stream:
        return self._chat_stream(rec)

    @_route("POST", "/ai/stream")
    def h_stream(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply | _Stream:
        return self._chat_stream(rec)

    @_route("POST", "/ai/embeddings")
    def h_embeddings(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        body = _json_body(rec)
        if isinstance(body, _Reply):
            return body
        errors = _require_str(body, "text") + _optional_str(body, "model")
        if errors:
            return _unprocessable(errors)
        ctx = self._resolve(body.get("model"), user)
        if ctx.key in ("client", "ollama", "ollama-local") and self._works(ctx):
            vector = ollama_embedding(body["text"], ctx.model)
        else:
            vector = mock_embedding(body["text"])
        return _json(
            200,
            {
                "embeddings": vector,
                "model": body.get("model") or self._default_model_id,
                "dimension": len(vector),
            },
        )

    @_route("POST", "/ai/tasks/suggest")
    def h_tasks_suggest(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        return self._broken_helper(rec, ("title",))

    @_route("POST", "/ai/tasks/suggest-stream")
    def h_tasks_suggest_stream(
        self, rec: RecordedRequest, params: dict[str, str]
    ) -> _Reply | _Stream:
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        body = _json_body(rec)
        if isinstance(body, _Reply):
            return body
        errors = _require_str(body, "title") + _optional_str(body, "description")
        if errors:
            return _unprocessable(errors)
        title = body["title"]
        text = f"1. Outline {title}\n2. Do the work\n3. Review {title}"
        return _Stream([w + " " for w in text.split(" ")], {})  # no model header here

    @_route("POST", "/ai/events/analyze")
    def h_events_analyze(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        return self._broken_helper(rec, ("title", "start_time", "end_time"))

    @_route("POST", "/ai/notes/summarize")
    def h_notes_summarize(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        return self._broken_helper(rec, ("content",))

    def _broken_helper(self, rec: RecordedRequest, required: Sequence[str]) -> _Reply:
        """Endpoints that validate, then crash at upstream a689c6c: plain-text 500."""
        user = self._user_for(rec)
        if isinstance(user, _Reply):
            return user
        body = _json_body(rec)
        if isinstance(body, _Reply):
            return body
        errors = [e for name in required for e in _require_str(body, name)]
        if errors:
            return _unprocessable(errors)
        return _plain_500()

    # -- admin: AI client nodes --

    def _node_json(self, node: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": node["id"],
            "name": node["name"],
            "node_type": node["node_type"],
            "hostname": node["hostname"],
            "port": node["port"],
            "is_active": node["is_active"],
            "is_public": node["is_public"],
            "status": node["status"],
            "last_seen_at": node["last_seen_at"],
            "capabilities": {
                "models": list(node["caps_models"]),
                "model_count": len(node["caps_models"]),
                "last_response_time_ms": node["latency_ms"],
            },
            "node_metadata": {},
            "base_url": _node_url(node),
            "owner_id": node["owner_id"],
        }

    def _admin_node(
        self, rec: RecordedRequest, params: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]] | _Reply:
        admin = self._admin_for(rec)
        if isinstance(admin, _Reply):
            return admin
        node_id = _client_id(params)
        if isinstance(node_id, _Reply):
            return node_id
        with self._lock:
            node = self._nodes.get(node_id)
        if node is None:
            return _detail(404, "Client not found")
        return admin, node

    @_route("GET", "/admin/ai-clients")
    def h_ai_clients(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        admin = self._admin_for(rec)
        if isinstance(admin, _Reply):
            return admin
        with self._lock:
            nodes = sorted(self._nodes.values(), key=lambda n: n["id"])
        # Upstream bug: the response model declares last_seen_at a str, the DB gives a datetime.
        if any(n["last_seen_at"] for n in nodes):
            return _plain_500()
        return _json(200, [self._node_json(n) for n in nodes])

    @_route("GET", "/admin/ai-clients/{client_id}")
    def h_ai_client(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        found = self._admin_node(rec, params)
        if isinstance(found, _Reply):
            return found
        node = found[1]
        return _plain_500() if node["last_seen_at"] else _json(200, self._node_json(node))

    def _node_models(self, node: Mapping[str, Any]) -> list[str]:
        """``get_models_from_node``: the cached capabilities when they list any, else the
        node's ``/api/tags`` (nothing when it cannot be reached)."""
        if node["caps_models"]:
            return list(node["caps_models"])
        if node["node_type"] == "ollama" and node["reachable"]:
            return list(node["models"])
        return []

    @_route("GET", "/admin/ai-clients/{client_id}/models")
    def h_ai_client_models(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        found = self._admin_node(rec, params)
        if isinstance(found, _Reply):
            return found
        with self._lock:
            return _json(200, {"models": self._node_models(found[1])})

    @_route("POST", "/admin/ai-clients/{client_id}/test")
    def h_ai_client_test(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        """``update_node_status``: no 404 — a missing node's ``{"error"}`` fails the response
        model (plain 500). Online refreshes the capabilities and sets ``last_seen_at``, which
        from then on makes the node list 500."""
        admin = self._admin_for(rec)
        if isinstance(admin, _Reply):
            return admin
        node_id = _client_id(params)
        if isinstance(node_id, _Reply):
            return node_id
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                return _plain_500()
            if not node["reachable"]:
                node["status"] = "offline"
                return _json(
                    200,
                    {
                        "status": "offline",
                        "online": False,
                        "message": "Connection refused - service not running",
                        "models": None,
                        "model_count": None,
                        "response_time_ms": None,
                    },
                )
            node["status"] = "online"
            node["last_seen_at"] = datetime.fromtimestamp(self.now(), UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )
            node["caps_models"] = list(node["models"])
            models = list(node["models"])
            latency = node["latency_ms"] or 0
        return _json(
            200,
            {
                "status": "online",
                "online": True,
                "message": None,
                "models": models,
                "model_count": len(models),
                "response_time_ms": latency,
            },
        )

    @_route("GET", "/admin/ai-clients/{client_id}/info")
    def h_ai_client_info(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        """``get_node_info``: a failure is ``{"error": str(e)}`` with 200; an OpenWebUI node
        gets ``{}``."""
        found = self._admin_node(rec, params)
        if isinstance(found, _Reply):
            return found
        node = found[1]
        with self._lock:
            if node["node_type"] != "ollama":
                return _json(200, {})
            if not node["reachable"]:
                return _json(200, {"error": NODE_CONNECT_ERROR})
            models = self._node_models(node)
            return _json(
                200,
                {
                    "version": node["version"],
                    "models": models,
                    "model_count": len(models),
                    "type": node["node_type"],
                    "url": _node_url(node),
                },
            )

    def _model_action(self, rec: RecordedRequest, params: dict[str, str]) -> Any:
        """(node, model_name) for ``ModelAction`` bodies, or the error reply."""
        found = self._admin_node(rec, params)
        if isinstance(found, _Reply):
            return found
        body = _json_body(rec)
        if isinstance(body, _Reply):
            return body
        errors = _require_str(body, "model_name")
        if errors:
            return _unprocessable(errors)
        return found[1], body["model_name"]

    @_route("POST", "/admin/ai-clients/{client_id}/pull-model")
    def h_ai_client_pull(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        """``pull_model_on_node``: POSTs ``{"name"}`` to the node's ``/api/pull`` and reads the
        whole NDJSON stream with no progress, then says "Started pulling". Ollama reports an
        unknown model *inside* its 200 stream, so that is a "success" too; only a refused
        request (a bad name: 400) or an unreachable node becomes ``400 {"detail"}``."""
        action = self._model_action(rec, params)
        if isinstance(action, _Reply):
            return action
        node, name = action
        with self._lock:
            if node["node_type"] != "ollama":
                return _detail(400, "Only Ollama nodes support model pulling")
            if not node["reachable"]:
                return _detail(400, NODE_CONNECT_ERROR)
            if not _OLLAMA_NAME_RE.match(name):
                return _detail(400, _httpx_status_error(400, f"{_node_url(node)}/api/pull"))
            if _ollama_has(node["pullable"], name) and not _ollama_has(node["models"], name):
                node["models"].append(_full_ollama_name(name))
        return _json(
            200, {"status": "success", "message": f"Started pulling {name} on {node['name']}"}
        )

    @_route("POST", "/admin/ai-clients/{client_id}/delete-model")
    def h_ai_client_delete(self, rec: RecordedRequest, params: dict[str, str]) -> _Reply:
        """``delete_model_on_node``: DELETE ``{"name"}`` on the node; Ollama's 404 comes back
        as httpx's ``raise_for_status`` text in a 400."""
        action = self._model_action(rec, params)
        if isinstance(action, _Reply):
            return action
        node, name = action
        with self._lock:
            if node["node_type"] != "ollama":
                return _detail(400, "Only Ollama nodes support model deletion")
            if not node["reachable"]:
                return _detail(400, NODE_CONNECT_ERROR)
            url = f"{_node_url(node)}/api/delete"
            if not _OLLAMA_NAME_RE.match(name):
                return _detail(400, _httpx_status_error(400, url))
            if not _ollama_has(node["models"], name):
                return _detail(400, _httpx_status_error(404, url))
            full = _full_ollama_name(name)
            node["models"] = [m for m in node["models"] if _full_ollama_name(m) != full]
        return _json(200, {"status": "success", "message": f"Deleted {name} from {node['name']}"})


# ---- helpers ----------------------------------------------------------------------------------


def _strip_api(path: str) -> str:
    """``/api/ai/chat`` → ``/ai/chat`` (the same route at both mounts)."""
    path = urlsplit(path).path
    if path == "/api" or path.startswith("/api/"):
        return path[4:] or "/"
    return path


def _ollama_has(models: Iterable[str], name: str) -> bool:
    """Ollama's name matching: a bare name means ``:latest``."""

    def full(n: str) -> str:
        return n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest"

    return full(name) in {full(m) for m in models}


def _full_ollama_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _httpx_status_error(status: int, url: str) -> str:
    """``str(httpx.HTTPStatusError)`` from ``response.raise_for_status()`` (httpx 0.27)."""
    phrase = {400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
    kind = "Client error" if status < 500 else "Server error"
    return (
        f"{kind} '{status} {phrase}' for url '{url}'\n"
        f"For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{status}"
    )


def _node_url(node: Mapping[str, Any]) -> str:
    return f"http://{node['hostname']}:{node['port']}"


def _model_entry(
    key: str,
    name: str,
    *,
    node: Mapping[str, Any] | None = None,
    size: Any = None,
    endpoint: str | None = None,
    metadata: dict[str, Any] | None = None,
    latency_ms: int | None = None,
    modified_at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``_format_model_entry`` + the AiModelInfo schema: every key present, unknown = null."""
    label = "ollama" if key in ("client", "ollama", "ollama-local") else key
    if key == "client" and node is not None:
        identifier = f"client:{node['id']}:{name}"
    else:
        identifier = f"{'ollama' if key == 'ollama-local' else key}:{name}"
    entry: dict[str, Any] = dict.fromkeys(_MODEL_INFO_KEYS)
    entry.update(
        {
            "id": identifier,
            "name": name,
            "provider": label,
            "source": "client" if key == "client" else label,
            "size": size,
            "node_id": node["id"] if node else None,
            "node_name": node["name"] if node else None,
            "endpoint": endpoint,
            "latency_ms": latency_ms,
            "metadata": metadata or {},
            "modified_at": modified_at,
        }
    )
    entry.update({k: v for k, v in extra.items() if k in _MODEL_INFO_KEYS})
    return entry


def _json_body(rec: RecordedRequest) -> dict[str, Any] | _Reply:
    """The JSON object body, or FastAPI's 422 for a missing/invalid/non-object body."""
    raw = rec.body_bytes
    if not raw:
        return _unprocessable([_err("missing", ["body"], "Field required", None)])
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        return _unprocessable(
            [
                _err(
                    "json_invalid",
                    ["body", pos],
                    "JSON decode error",
                    {},
                    {"error": "Expecting value"},
                )
            ]
        )
    if not isinstance(body, dict):
        return _unprocessable(
            [
                _err(
                    "model_attributes_type",
                    ["body"],
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            ]
        )
    return body


def _require_str(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    if name not in body:
        return [_err("missing", ["body", name], "Field required", dict(body))]
    if not isinstance(body[name], str):
        return [_err("string_type", ["body", name], "Input should be a valid string", body[name])]
    return []


def _optional_str(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        return [_err("string_type", ["body", name], "Input should be a valid string", value)]
    return []
