"""A faithful Ollama HTTP server for tests: real HTTP on 127.0.0.1, standard library only.

It follows /work/shared/docs/ollama-protocol.md (§7 checklist) so that the official
``ollama`` client and the ``openai`` client on ``/v1`` behave against it as they do
against a real Ollama: NDJSON streams flushed per line over chunked transfer, Go-style
timestamps and nanosecond metrics, ``{"error": ...}`` bodies, mid-stream error lines,
gin's text/plain ``404 page not found`` for unknown routes, pull progress (per layer, and
resumable: a cancelled pull leaves its layers' bytes on disk and the next pull starts from
them, as download.go does with its ``-partial`` files), delete, keep_alive parsing reflected
in ``/api/ps`` (``keep_alive: 0`` with an empty prompt unloads), and the OpenAI-compatible SSE
layer.

Replies are deterministic so tests can assert exact text and token counts:

    reply_text("llama3.2", "hi there") == "llama3.2 says:\\nhi there"
    tokenize(...) == ["llama3.2", " says:", "\\nhi", " there"]   # one chunk per token
    eval_count == number of tokens streamed (thinking + content)
    prompt_eval_count == prompt_tokens(messages)

Faults are scripted per request (``fail_next``, ``error_after``, ``drop_after``,
``pause_after``) or sticky until cleared (``delay_first_byte``, ``set_token_delay``, ``busy``,
``redirect_to``). ``redirect_to`` is what a reverse proxy in front of an Ollama does when it
moved (or was taken over): every request is answered with a 3xx whose ``Location`` names
another host — Ollama itself never redirects, so a client that follows one re-posts the
prompt there.
Every request is recorded (``requests``), including, for streams, how many lines were
sent and whether the client closed the connection before the end (``closed_early``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from tests.servers.http_base import CONNECTION_ERRORS, ClientGone, RecordingHandler, RecordingServer

DEFAULT_VERSION = "0.12.3"
# The generation time the server reports per token (``eval_duration`` = eval_count × this, ns).
EVAL_NS_PER_TOKEN = 12_000_000
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
MIDSTREAM_MESSAGE = "an error was encountered while running the model"
PULL_MISSING_MESSAGE = "pull model manifest: file does not exist"
# What a full disk looks like mid-pull (download.go writing a blob's -partial file).
DISK_FULL_MESSAGE = (
    "write /root/.ollama/models/blobs/sha256-{digest}-partial: no space left on device"
)
# Progress lines per layer after the first (real Ollama reports about every 60 ms).
PULL_STEPS = 4
DEFAULT_KEEP_ALIVE_NS = 5 * 60 * 1_000_000_000
# Go adds MaxInt64 ns to "now" for a negative keep_alive: ~292 years.
FOREVER_NS = 2**63 - 1

_NAME_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9._-]+)?$"
)


# ---- deterministic content ----------------------------------------------------------------


def reply_text(model: str, prompt: str) -> str:
    """The plain reply for ``prompt`` asked of ``model`` (the name as the client sent it)."""
    return f"{model} says:\n{prompt}" if prompt else f"{model} says: (nothing)"


def tokenize(text: str) -> list[str]:
    """Split into tokens that concatenate back to ``text``: each keeps its leading space."""
    return re.findall(r"\s*\S+|\s+$", text)


def thinking_text(prompt: str) -> str:
    return f"Thinking about: {prompt}"


def prompt_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Deterministic ``prompt_eval_count``: 4 per message plus its whitespace-separated words."""
    return sum(4 + len(_content_text(m.get("content")).split()) for m in messages)


def _content_text(content: Any) -> str:
    """Message content as text; OpenAI content-part arrays keep their text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_prompt(messages: Sequence[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _content_text(m.get("content"))
    return ""


def example_for_schema(schema: Any, prompt: str, key: str = "value", root: Any = None) -> Any:
    """A deterministic instance of a (simple) JSON schema: every property filled, arrays of
    two items (or minItems), enums/consts honoured, local ``$ref`` resolved."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return f"{key}: {prompt}"
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_for_schema(target, prompt, key, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combo in ("anyOf", "oneOf", "allOf"):
        if schema.get(combo):
            return example_for_schema(schema[combo][0], prompt, key, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        out = {name: example_for_schema(sub, prompt, name, root) for name, sub in props.items()}
        for name in schema.get("required") or []:
            out.setdefault(name, f"{name}: {prompt}")
        return out
    if kind == "array":
        count = max(int(schema.get("minItems", 2)), 0)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items") or {"type": "string"}
        return [example_for_schema(items, prompt, f"{key} {i + 1}", root) for i in range(count)]
    if kind == "integer":
        return len(prompt.split())
    if kind == "number":
        return len(prompt.split()) + 0.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"{key}: {prompt}"


def go_time(ns: int | None = None) -> str:
    """Go's RFC 3339 with nanoseconds: trailing zeros of the fraction trimmed, UTC as ``Z``."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


_GO_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)([a-zµμ]*)")


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration`` → nanoseconds; raises ValueError with Go's message."""
    orig = text
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _GO_PART.match(text, pos)
        if not m:
            raise ValueError(f'time: invalid duration "{orig}"')
        number, unit = m.groups()
        if not unit:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if unit not in _GO_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(number) * _GO_UNITS[unit]
        pos = m.end()
    return sign * int(total)


def parse_keep_alive(value: Any) -> int | None:
    """keep_alive → ns (None = server default; negative = forever). Raises ValueError (400)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("json: cannot unmarshal bool into Go value of type api.Duration")
    if isinstance(value, int | float):
        return FOREVER_NS if value < 0 else int(value * 1_000_000_000)
    if isinstance(value, str):
        ns = parse_go_duration(value)
        return FOREVER_NS if ns < 0 else ns
    raise ValueError("Unsupported type: '" + type(value).__name__ + "'")


def normalize_name(name: str) -> str:
    """``llama3.2`` → ``llama3.2:latest`` (the tag defaults to ``latest``)."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


# ---- models ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One installed (or pullable) model as /api/tags and /api/show describe it."""

    name: str
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 2_019_393_189
    context_length: int = 131_072
    embedding_length: int = 64
    capabilities: tuple[str, ...] = ("completion", "tools")
    modified_at: str = "2025-05-04T17:37:44.706015396-07:00"
    remote_host: str | None = None  # set for Ollama cloud models proxied to ollama.com
    size_vram: int | None = None  # /api/ps: bytes in GPU memory when loaded (default: all)
    num_ctx: int | None = None  # a Modelfile ``PARAMETER num_ctx`` (shown in "parameters")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    @classmethod
    def coerce(cls, spec: str | dict[str, Any] | ModelSpec) -> ModelSpec:
        if isinstance(spec, ModelSpec):
            found = spec
        elif isinstance(spec, str):
            found = cls(name=spec)
        else:
            found = cls(**spec)
        return replace(found, name=normalize_name(found.name))

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def tag_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
        }
        if self.remote_host:
            entry["remote_model"] = self.name.split(":")[0]
            entry["remote_host"] = self.remote_host
        return entry

    def show(self) -> dict[str, Any]:
        parameters = 'num_keep 24\nstop "<|eot_id|>"'
        if self.num_ctx is not None:
            # Ollama pads the names of PARAMETER lines to a column.
            parameters = f"num_ctx                        {self.num_ctx}\n" + parameters
        return {
            "license": "MIT License (test model)",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {self.name}\n',
            "parameters": parameters,
            "template": "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}",
            "details": self.details(),
            "model_info": {
                "general.architecture": self.family,
                "general.parameter_count": _param_count(self.parameter_size),
                f"{self.family}.context_length": self.context_length,
                f"{self.family}.embedding_length": self.embedding_length,
            },
            "capabilities": list(self.capabilities),
            "modified_at": self.modified_at,
        }


def _param_count(size: str) -> int:
    m = re.match(r"([\d.]+)([KMB]?)", size)
    if not m:
        return 0
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "": 1}[m.group(2)]
    return int(float(m.group(1)) * scale)


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("llama3.2:latest"),
    ModelSpec(
        "qwen2.5:7b",
        family="qwen2",
        parameter_size="7.6B",
        size=4_683_087_332,
        context_length=32_768,
        modified_at="2025-10-26T17:21:21.196249Z",
    ),
    ModelSpec(
        "qwen3:4b",
        family="qwen3",
        parameter_size="4.0B",
        size=2_497_293_918,
        context_length=40_960,
        capabilities=("completion", "tools", "thinking"),
        modified_at="2025-09-01T08:00:00.5+02:00",
    ),
    ModelSpec(
        "nomic-embed-text:latest",
        family="nomic-bert",
        parameter_size="137M",
        quantization_level="F16",
        size=274_302_450,
        context_length=2048,
        embedding_length=32,
        capabilities=("embedding",),
        modified_at="2024-02-22T10:01:02.123456789Z",
    ),
)

# A vision model as Ollama shows it (``/api/show`` lists "vision"); not installed by default
# (listings in other tests stay as they are): ``OllamaServer(models=[*DEFAULT_MODELS,
# VISION_MODEL])``.
VISION_MODEL = ModelSpec(
    "llava:7b",
    family="llama",
    parameter_size="7B",
    size=4_733_363_377,
    context_length=32_768,
    capabilities=("completion", "vision"),
)

DEFAULT_PULLABLE: tuple[ModelSpec, ...] = (
    ModelSpec("tinyllama:latest", parameter_size="1B", size=637_700_138),
    ModelSpec("phi3:mini", family="phi3", parameter_size="3.8B", size=2_176_178_913),
)


# ---- recording -----------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server saw it (headers lower-cased, JSON body parsed when valid)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: Any
    raw: bytes
    status: int | None = None
    streamed: bool = False
    lines_sent: int = 0
    closed_early: bool = False  # the client closed before the server finished the response
    server_stopped: bool = False  # the server went down mid-response (stop/restart)
    dropped: bool = False  # drop_after fired: the server cut the connection on purpose
    done: bool = False  # the handler finished with this request


@dataclass
class PullPause:
    """A stream held after ``n`` lines (``OllamaServer.pause_after``)."""

    path: str
    n: int
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _Fault:
    path: str | None
    status: int = 500
    error: str = ""
    n: int = 0


# ---- the HTTP plumbing ------------------------------------------------------------------------


class _Handler(RecordingHandler):
    # Go's net/http answers with TCP_NODELAY (a TCPConn's default): each stream line leaves
    # at once. Without it, Nagle plus the client's delayed ACK held responses ~40 ms.
    disable_nagle_algorithm = True

    # -- plumbing --

    @property
    def owner(self) -> OllamaServer:
        return cast(OllamaServer, self.server.owner)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go's net/http sends Date but no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        try:
            body: Any = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        rec = RecordedRequest(
            method=self.command,
            path=path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            json=body,
            raw=raw,
        )
        self.rec = rec
        self.raw_body = raw
        self.owner._record(rec)
        try:
            self._route(path)
        except ClientGone:
            self.close_connection = True
        except CONNECTION_ERRORS:
            self._mark_gone()
            self.close_connection = True
        finally:
            self.owner._update(rec, done=True)

    def _route(self, path: str) -> None:
        redirect = self.owner._redirect
        if redirect is not None:
            target, status = redirect
            query = f"?{self.rec.query}" if self.rec.query else ""
            self.owner._update(self.rec, status=status)
            self.send_response(status)
            self.send_header("Location", f"{target}{path}{query}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        handler = self.owner._find_route(self.command, path)
        if handler is None:
            self._send_text(404, "404 page not found")
            return
        is_v1 = path.startswith("/v1/")
        if path not in ("/",):
            delay = self.owner._first_byte_delay
            if delay > 0 and self._client_gone(delay):
                self._mark_gone()
                raise ClientGone
            once = self.owner._take("_redirects", path)
            if once is not None:
                # A reverse proxy in front of Ollama (Ollama itself never redirects).
                self.owner._update(self.rec, status=once.status)
                self.send_response(once.status)
                self.send_header("Location", once.error)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            fault = self.owner._take("_fail_queue", path)
            if fault is not None:
                if is_v1:
                    self._send_openai_error(fault.status, fault.error)
                else:
                    self._send_json(fault.status, {"error": fault.error})
                return
        handler(self)

    def _mark_gone(self) -> None:
        if self.owner._stopping.is_set():
            self.owner._update(self.rec, server_stopped=True)
        else:
            self.owner._update(self.rec, closed_early=True)

    # -- responses --

    def _send_body(self, status: int, content_type: str, data: bytes) -> None:
        # Record before writing: the client may look at the record as soon as it has the reply.
        self.owner._update(self.rec, status=status)
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        self._send_body(status, "application/json; charset=utf-8", data)

    def _send_text(self, status: int, text: str) -> None:
        self._send_body(status, "text/plain", text.encode())

    def _send_openai_error(self, status: int, message: str) -> None:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        self._send_json(
            status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
        )

    def _start_stream(self, content_type: str) -> None:
        self.owner._update(self.rec, status=200, streamed=True)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        if content_type == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _stream(
        self,
        content_type: str,
        lines: Iterable[bytes],
        error_line: Callable[[str], bytes | None],
    ) -> bool:
        """Send ``lines`` one chunk each, applying token delay and mid-stream faults.

        Returns True when every line was sent and the stream ended normally.
        """
        path = self.rec.path
        err = self.owner._take("_error_after", path)
        drop = self.owner._take("_drop_after", path)
        raw = self.owner._take("_raw_after", path)
        pause = self.owner._take_pause(path)
        self._start_stream(content_type)
        for sent, line in enumerate(lines):
            if pause is not None and sent >= pause.n:
                pause.reached.set()
                while not pause.released.is_set():
                    if self._client_gone(0.02):
                        self._mark_gone()
                        raise ClientGone
                pause = None
            if raw is not None and sent >= raw.n:
                self._write_chunk(raw.error.encode())
                raw = None
            if drop is not None and sent >= drop.n:
                self._drop()
                return False
            if err is not None and sent >= err.n:
                extra = error_line(err.error)
                if extra is not None:
                    self._write_chunk(extra)
                self._end_stream()
                return False
            delay = self.owner._token_delay
            if sent > 0 and delay > 0 and self._client_gone(delay):
                self._mark_gone()
                raise ClientGone
            self.owner._update(self.rec, lines_sent=sent + 1)
            self._write_chunk(line)
        self._end_stream()
        return True

    # -- request parsing helpers (Go's ShouldBindJSON) --

    def _body_object(self, *, openai: bool = False) -> dict[str, Any] | None:
        """The JSON object body, or None after answering 400 like Ollama does."""
        raw = self.raw_body
        if not raw.strip():
            self._bad_request("missing request body" if not openai else "EOF", openai)
            return None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self._bad_request(f"invalid character at offset {getattr(exc, 'pos', 0)}", openai)
            return None
        if not isinstance(body, dict):
            self._bad_request(
                f"json: cannot unmarshal {type(body).__name__} into Go value of type api.Request",
                openai,
            )
            return None
        return body

    def _bad_request(self, message: str, openai: bool = False) -> None:
        if openai:
            self._send_openai_error(400, message)
        else:
            self._send_json(400, {"error": message})

    def _model_of(self, body: dict[str, Any]) -> str:
        model = body.get("model") or body.get("name") or ""
        return model if isinstance(model, str) else ""

    # -- native endpoints --

    def h_root(self) -> None:
        self._send_text(200, "Ollama is running")

    def h_version(self) -> None:
        self._send_json(200, {"version": self.owner.version})

    def h_tags(self) -> None:
        self._send_json(200, {"models": [m.tag_entry() for m in self.owner.models]})

    def h_ps(self) -> None:
        self._send_json(200, {"models": self.owner._ps_entries()})

    def h_show(self) -> None:
        body = self._body_object()
        if body is None:
            return
        name = self._model_of(body)
        if not name:
            self._send_json(400, {"error": "model is required"})
            return
        spec = self.owner.find(name)
        if spec is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        self._send_json(200, spec.show())

    def _generation_prelude(
        self, body: dict[str, Any], verb: str
    ) -> tuple[ModelSpec, str, int | None] | None:
        """Model lookup, capability, keep_alive and busy checks shared by chat and generate."""
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self._send_json(400, {"error": "model is required"})
            return None
        spec = self.owner.find(name)
        if spec is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return None
        if "completion" not in spec.capabilities:
            self._send_json(400, {"error": f'"{name}" does not support {verb}'})
            return None
        think = body.get("think")
        if think and "thinking" not in spec.capabilities:
            self._send_json(400, {"error": f'"{name}" does not support thinking'})
            return None
        fmt = body.get("format")
        formats = self.owner._formats
        if formats == "json" and isinstance(fmt, dict):
            kind = "ChatRequest" if verb == "chat" else "GenerateRequest"
            self._send_json(
                400,
                {
                    "error": "json: cannot unmarshal object into Go struct field "
                    f"{kind}.format of type string"
                },
            )
            return None
        if formats == "none" and fmt not in (None, ""):
            self._send_json(400, {"error": "format is not supported by this server"})
            return None
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            self._send_json(
                400, {"error": 'invalid format: expected "json" or a valid JSON schema'}
            )
            return None
        try:
            keep = parse_keep_alive(body.get("keep_alive"))
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return None
        if self.owner._busy:
            self._send_json(503, {"error": BUSY_MESSAGE})
            return None
        return spec, name, keep

    def _unload_branch(self, body: dict[str, Any]) -> bool:
        """GenerateHandler's "expire the runner" branch: an empty prompt with ``keep_alive: 0``
        unloads the model right after the model lookup, before any capability check, so
        ``ollama stop`` works for embedding models too. True when it answered."""
        name = body.get("model")
        prompt = body.get("prompt") or ""
        if not isinstance(name, str) or not name or prompt:
            return False
        try:
            keep = parse_keep_alive(body.get("keep_alive"))
        except ValueError:
            return False  # the prelude answers 400 with Go's words
        if keep != 0:
            return False
        spec = self.owner.find(name)
        if spec is None:
            return False  # the prelude answers 404
        self.owner._touch(spec, 0)
        self._send_json(
            200,
            {
                "model": name,
                "created_at": go_time(),
                "response": "",
                "done": True,
                "done_reason": "unload",
            },
        )
        return True

    def h_chat(self) -> None:
        body = self._body_object()
        if body is None:
            return
        if not isinstance(body.get("messages", []), list):
            self._send_json(
                400,
                {
                    "error": "json: cannot unmarshal into Go struct field "
                    "ChatRequest.messages of type []api.Message"
                },
            )
            return
        prelude = self._generation_prelude(body, "chat")
        if prelude is None:
            return
        spec, name, keep = prelude
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if not messages:
            self.owner._touch(spec, keep)
            reason = "unload" if keep == 0 else "load"
            self._send_json(
                200,
                {
                    "model": name,
                    "created_at": go_time(),
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": reason,
                },
            )
            return
        was_loaded = self.owner._is_loaded(spec)
        reply = self.owner._compose(spec, name, messages, body)
        start = time.monotonic_ns()

        def line(obj: dict[str, Any]) -> bytes:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

        def final(content: str, thinking: str | None = None) -> dict[str, Any]:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {
                "model": name,
                "created_at": go_time(),
                "message": message,
                "done": True,
                "done_reason": reply.done_reason,
                **reply.metrics(time.monotonic_ns() - start, was_loaded),
            }

        if body.get("stream") is False:
            self.owner._touch(spec, keep)
            self._send_json(200, final("".join(reply.tokens), "".join(reply.thinking) or None))
            return

        last_in_done = self.owner.last_token_in_done and reply.tokens

        def lines() -> Iterator[bytes]:
            for tok in reply.thinking:
                msg = {"role": "assistant", "content": "", "thinking": tok}
                yield line({"model": name, "created_at": go_time(), "message": msg, "done": False})
            body_tokens = reply.tokens[:-1] if last_in_done else reply.tokens
            for tok in body_tokens:
                msg = {"role": "assistant", "content": tok}
                yield line({"model": name, "created_at": go_time(), "message": msg, "done": False})
            yield line(final(reply.tokens[-1] if last_in_done else ""))

        if self._stream("application/x-ndjson", lines(), lambda e: line({"error": e})):
            self.owner._touch(spec, keep)

    def h_generate(self) -> None:
        body = self._body_object()
        if body is None:
            return
        if self._unload_branch(body):
            return
        prelude = self._generation_prelude(body, "generate")
        if prelude is None:
            return
        spec, name, keep = prelude
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str) or not prompt:
            self.owner._touch(spec, keep)
            reason = "unload" if keep == 0 else "load"
            self._send_json(
                200,
                {
                    "model": name,
                    "created_at": go_time(),
                    "response": "",
                    "done": True,
                    "done_reason": reason,
                },
            )
            return
        was_loaded = self.owner._is_loaded(spec)
        messages = [{"role": "user", "content": prompt}]
        reply = self.owner._compose(spec, name, messages, body)
        start = time.monotonic_ns()

        def line(obj: dict[str, Any]) -> bytes:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

        def final(text: str) -> dict[str, Any]:
            return {
                "model": name,
                "created_at": go_time(),
                "response": text,
                "done": True,
                "done_reason": reply.done_reason,
                **reply.metrics(time.monotonic_ns() - start, was_loaded),
            }

        if body.get("stream") is False:
            self.owner._touch(spec, keep)
            self._send_json(200, final("".join(reply.tokens)))
            return

        def lines() -> Iterator[bytes]:
            for tok in reply.tokens:
                yield line({"model": name, "created_at": go_time(), "response": tok, "done": False})
            yield line(final(""))

        if self._stream("application/x-ndjson", lines(), lambda e: line({"error": e})):
            self.owner._touch(spec, keep)

    def h_pull(self) -> None:
        body = self._body_object()
        if body is None:
            return
        name = self._model_of(body)
        if not name or not _NAME_RE.match(name):
            self._send_json(400, {"error": "invalid model name"})
            return
        full = normalize_name(name)
        installed = self.owner.find(full)
        source = installed or self.owner._find_pullable(full)
        if body.get("stream") is False:
            if source is None:
                self._send_json(500, {"error": PULL_MISSING_MESSAGE})
                return
            self.owner._install(source)
            self._send_json(200, {"status": "success"})
            return

        def line(obj: dict[str, Any]) -> bytes:
            return json.dumps(obj, separators=(",", ":")).encode() + b"\n"

        def lines() -> Iterator[bytes]:
            yield line({"status": "pulling manifest"})
            if source is None:
                # Real Ollama: HTTP 200, "pulling manifest", then an error line and EOF.
                yield line({"error": PULL_MISSING_MESSAGE})
                return
            for digest, total in _layers(source):
                status = f"pulling {digest[:12]}"
                full_digest = f"sha256:{digest}"
                have = self.owner._blob_bytes(digest)
                if have >= total:
                    # A layer already on disk: one line, completed == total.
                    whole = {"status": status, "digest": full_digest, "total": total}
                    yield line({**whole, "completed": total})
                    continue
                # download.go: Completed is omitempty, so a fresh layer's first line has none;
                # a resumed one starts at what its partial file already holds.
                first: dict[str, Any] = {"status": status, "digest": full_digest, "total": total}
                if have:
                    first["completed"] = have
                yield line(first)
                for step in range(1, PULL_STEPS + 1):
                    done = have + (total - have) * step // PULL_STEPS
                    # The bytes are on disk once reported: a cancelled pull resumes from here.
                    self.owner._store_blob(digest, done)
                    yield line(
                        {"status": status, "digest": full_digest, "total": total, "completed": done}
                    )
            yield line({"status": "verifying sha256 digest"})
            yield line({"status": "writing manifest"})
            yield line({"status": "success"})

        finished = self._stream("application/x-ndjson", lines(), lambda e: line({"error": e}))
        if finished and source is not None:
            self.owner._install(source)

    def h_delete(self) -> None:
        body = self._body_object()
        if body is None:
            return
        name = self._model_of(body)
        if not name:
            self._send_json(400, {"error": "model is required"})
            return
        if not _NAME_RE.match(name):
            self._send_json(400, {"error": "invalid model name"})
            return
        if not self.owner._remove(name):
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        self._send_body(200, "", b"")

    def h_copy(self) -> None:
        body = self._body_object()
        if body is None:
            return
        src, dst = body.get("source") or "", body.get("destination") or ""
        if not src or not dst or not _NAME_RE.match(str(dst)):
            self._send_json(400, {"error": "source and destination are required"})
            return
        spec = self.owner.find(src)
        if spec is None:
            self._send_json(404, {"error": f'model "{src}" not found'})
            return
        self.owner._install(replace(spec, name=normalize_name(dst)))
        self._send_body(200, "", b"")

    def h_embed(self) -> None:
        body = self._body_object()
        if body is None:
            return
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self._send_json(400, {"error": "model is required"})
            return
        spec = self.owner.find(name)
        if spec is None:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        raw_input = body.get("input", "")
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list) and all(isinstance(x, str) for x in raw_input):
            inputs = list(raw_input)
        else:
            self._send_json(400, {"error": "invalid input type"})
            return
        try:
            keep = parse_keep_alive(body.get("keep_alive"))
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        if self.owner._busy:
            self._send_json(503, {"error": BUSY_MESSAGE})
            return
        if not inputs:
            self._send_json(200, {"model": name, "embeddings": []})
            return
        dims = body.get("dimensions") or spec.embedding_length
        self.owner._touch(spec, keep)
        self._send_json(
            200,
            {
                "model": name,
                "embeddings": [embedding_for(text, int(dims)) for text in inputs],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": sum(len(t.split()) for t in inputs),
            },
        )

    # -- OpenAI-compatible endpoints --

    def h_v1_models(self) -> None:
        data = [self.owner._openai_model(m) for m in self.owner.models]
        # Go's nil slice: no models installed → "data": null.
        self._send_json(200, {"object": "list", "data": data or None})

    def h_v1_model(self) -> None:
        name = self.rec.path[len("/v1/models/") :]
        spec = self.owner.find(name)
        if spec is None:
            self._send_openai_error(404, f"model '{name}' not found")
            return
        self._send_json(200, self.owner._openai_model(spec))

    def h_v1_chat(self) -> None:
        body = self._body_object(openai=True)
        if body is None:
            return
        name = body.get("model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._send_openai_error(400, "[] is too short - 'messages'")
            return
        if not isinstance(name, str) or not name:
            self._send_openai_error(400, "model is required")
            return
        spec = self.owner.find(name)
        if spec is None:
            self._send_openai_error(404, f"model '{name}' not found")
            return
        if "completion" not in spec.capabilities:
            self._send_openai_error(400, f'"{name}" does not support chat')
            return
        if self.owner._busy:
            self._send_openai_error(503, BUSY_MESSAGE)
            return
        native: dict[str, Any] = {}
        rf = body.get("response_format")
        if rf and self.owner._formats == "none":
            self._send_openai_error(400, "response_format is not supported by this server")
            return
        if (
            isinstance(rf, dict)
            and rf.get("type") == "json_schema"
            and self.owner._formats == "json"
        ):
            self._send_openai_error(400, "response_format json_schema is not supported")
            return
        if isinstance(rf, dict):
            if rf.get("type") == "json_object":
                native["format"] = "json"
            elif rf.get("type") == "json_schema":
                native["format"] = (rf.get("json_schema") or {}).get("schema") or "json"
        if isinstance(body.get("max_tokens"), int):
            native["options"] = {"num_predict": body["max_tokens"]}
        msgs = [m for m in messages if isinstance(m, dict)]
        reply = self.owner._compose(spec, name, msgs, native, allow_thinking=False)
        cid = self.owner._next_completion_id()
        created = int(time.time())
        usage = {
            "prompt_tokens": reply.prompt_eval_count,
            "completion_tokens": reply.eval_count,
            "total_tokens": reply.prompt_eval_count + reply.eval_count,
        }
        base = {"id": cid, "created": created, "model": name, "system_fingerprint": "fp_ollama"}
        if not body.get("stream", False):
            self.owner._touch(spec, None)
            self._send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(reply.tokens)},
                            "finish_reason": reply.done_reason,
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def event(obj: Any) -> bytes:
            return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        def lines() -> Iterator[bytes]:
            for tok in reply.tokens:
                yield event(chunk({"role": "assistant", "content": tok}, None))
            yield event(chunk({}, reply.done_reason))
            if include_usage:
                yield event(
                    {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
            yield b"data: [DONE]\n\n"

        def error_event(_message: str) -> bytes:
            # The middleware re-encodes Ollama's error line as an empty delta; no finish, no [DONE].
            return event(chunk({"role": "assistant", "content": ""}, None))

        if self._stream("text/event-stream", lines(), error_event):
            self.owner._touch(spec, None)

    def h_v1_embeddings(self) -> None:
        body = self._body_object(openai=True)
        if body is None:
            return
        name = body.get("model")
        spec = self.owner.find(name) if isinstance(name, str) and name else None
        if spec is None:
            self._send_openai_error(404, f"model '{name}' not found")
            return
        raw_input = body.get("input")
        inputs = [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
            self._send_openai_error(400, "invalid input type")
            return
        dims = body.get("dimensions") or spec.embedding_length
        tokens = sum(len(t.split()) for t in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "embedding": embedding_for(t, int(dims)), "index": i}
                    for i, t in enumerate(inputs)
                ],
                "model": name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


def embedding_for(text: str, dims: int) -> list[float]:
    """A deterministic unit vector derived from the text (Ollama L2-normalises embeddings)."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    raw = raw[:dims]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def _layers(spec: ModelSpec) -> list[tuple[str, int]]:
    """(hex digest, size) per layer: model weights, template, license, params."""
    small = {"template": 1_429, "license": 7_711, "params": 96}
    layers = [
        (hashlib.sha256(f"{spec.name}:model".encode()).hexdigest(), spec.size - sum(small.values()))
    ]
    layers += [
        (hashlib.sha256(f"{spec.name}:{k}".encode()).hexdigest(), v) for k, v in small.items()
    ]
    return layers


@dataclass
class _Reply:
    tokens: list[str]
    thinking: list[str]
    done_reason: str
    prompt_eval_count: int

    @property
    def eval_count(self) -> int:
        return len(self.tokens) + len(self.thinking)

    def metrics(self, elapsed_ns: int, was_loaded: bool) -> dict[str, int]:
        load = 1_334_875 if not was_loaded else 21_500
        prompt_ns = self.prompt_eval_count * 250_000
        eval_ns = self.eval_count * EVAL_NS_PER_TOKEN
        return {
            "total_duration": max(elapsed_ns, load + prompt_ns + eval_ns),
            "load_duration": load,
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_duration": prompt_ns,
            "eval_count": self.eval_count,
            "eval_duration": eval_ns,
        }


_ROUTES: dict[tuple[str, str], Callable[[_Handler], None]] = {
    ("GET", "/"): _Handler.h_root,
    ("HEAD", "/"): _Handler.h_root,
    ("GET", "/api/version"): _Handler.h_version,
    ("HEAD", "/api/version"): _Handler.h_version,
    ("GET", "/api/tags"): _Handler.h_tags,
    ("HEAD", "/api/tags"): _Handler.h_tags,
    ("GET", "/api/ps"): _Handler.h_ps,
    ("POST", "/api/show"): _Handler.h_show,
    ("POST", "/api/chat"): _Handler.h_chat,
    ("POST", "/api/generate"): _Handler.h_generate,
    ("POST", "/api/pull"): _Handler.h_pull,
    ("DELETE", "/api/delete"): _Handler.h_delete,
    ("POST", "/api/copy"): _Handler.h_copy,
    ("POST", "/api/embed"): _Handler.h_embed,
    ("POST", "/v1/chat/completions"): _Handler.h_v1_chat,
    ("POST", "/v1/embeddings"): _Handler.h_v1_embeddings,
    ("GET", "/v1/models"): _Handler.h_v1_models,
}


# ---- the server object tests use ----------------------------------------------------------------


class OllamaServer(RecordingServer[RecordedRequest]):
    """An Ollama look-alike on ``http://127.0.0.1:<port>`` for tests.

    Args:
        models: installed models (names, dicts of ModelSpec fields, or ModelSpec);
            default DEFAULT_MODELS. Names without a tag get ``:latest``.
        version: what ``/api/version`` reports.
        pullable: models ``/api/pull`` can fetch (default DEFAULT_PULLABLE).

    Use as a context manager, or ``start()`` / ``stop()`` / ``restart()`` (same port).
    """

    handler_class = _Handler
    thread_name = "ollama-test-server"

    def __init__(
        self,
        models: Iterable[str | dict[str, Any] | ModelSpec] | None = None,
        version: str = DEFAULT_VERSION,
        pullable: Iterable[str | dict[str, Any] | ModelSpec] | None = None,
    ) -> None:
        super().__init__()
        self.version = version
        self._models = [ModelSpec.coerce(m) for m in (DEFAULT_MODELS if models is None else models)]
        self._pullable = [
            ModelSpec.coerce(m) for m in (DEFAULT_PULLABLE if pullable is None else pullable)
        ]
        self._loaded: dict[str, int] = {}  # model name -> expiry (time.time_ns())
        # Blob digest -> bytes on disk. Installed models' layers are whole; a cancelled pull
        # leaves its layers partial, and the next pull of that model resumes from them.
        self._blobs: dict[str, int] = {}
        for spec in self._models:
            self._complete_blobs(spec)
        self._pauses: list[PullPause] = []
        self._completion_counter = 0
        # faults and knobs
        self._fail_queue: list[_Fault] = []
        self._redirects: list[_Fault] = []
        self._error_after: list[_Fault] = []
        self._drop_after: list[_Fault] = []
        self._raw_after: list[_Fault] = []
        self._replies: list[str] = []
        self._first_byte_delay = 0.0
        self._token_delay = 0.0
        self._busy = False
        self._formats = "schema"  # which `format` values chat/generate accept: see set_formats
        self._redirect: tuple[str, int] | None = None  # (target base URL, status)
        self.last_token_in_done = False  # put the last token in the done:true line (allowed)

    # -- lifecycle --

    def restart(self) -> None:
        """Stop, then serve again on the same port ("server goes down and comes back")."""
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- state --

    @property
    def models(self) -> list[ModelSpec]:
        with self._lock:
            return list(self._models)

    def find(self, name: str) -> ModelSpec | None:
        full = normalize_name(name)
        with self._lock:
            return next((m for m in self._models if m.name == full), None)

    def set_models(self, models: Iterable[str | dict[str, Any] | ModelSpec]) -> None:
        with self._lock:
            self._models = [ModelSpec.coerce(m) for m in models]
            for spec in self._models:
                self._complete_blobs(spec)

    def set_pullable(self, models: Iterable[str | dict[str, Any] | ModelSpec]) -> None:
        """What ``/api/pull`` can fetch from "the registry" (replaces the default set)."""
        with self._lock:
            self._pullable = [ModelSpec.coerce(m) for m in models]

    def downloaded_bytes(self, name: str) -> int:
        """Bytes of ``name``'s layers on disk: the whole size once installed, what a cancelled
        pull left behind otherwise (a pull of a name nobody knows has none)."""
        full = normalize_name(name)
        spec = self.find(full) or self._find_pullable(full)
        if spec is None:
            return 0
        with self._lock:
            return sum(min(self._blobs.get(d, 0), size) for d, size in _layers(spec))

    def layer_sizes(self, name: str) -> dict[str, int]:
        """``sha256:<digest>`` -> size of each layer a pull of ``name`` reports."""
        full = normalize_name(name)
        spec = self.find(full) or self._find_pullable(full)
        return {} if spec is None else {f"sha256:{d}": size for d, size in _layers(spec)}

    def pause_after(self, n_lines: int, *, path: str = "/api/pull") -> PullPause:
        """The next stream to ``path`` stops after ``n_lines`` lines until the returned
        handle's ``release()``; ``reached`` is set when it got there. A client that leaves
        meanwhile is noticed (``closed_early``), as with a real slow download."""
        pause = PullPause(path, n_lines)
        with self._lock:
            self._pauses.append(pause)
        return pause

    def loaded(self) -> list[str]:
        """Names of models currently in memory (what /api/ps lists)."""
        return [e["name"] for e in self._ps_entries()]

    # -- recording --

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    # -- faults --

    def fail_next(
        self, status: int = 500, error: str = "boom", *, path: str | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, or any route) with an error before the
        first byte: ``{"error": error}`` natively, OpenAI-shaped on /v1."""
        with self._lock:
            self._fail_queue += [_Fault(path, status, error) for _ in range(times)]

    def redirect_next(self, location: str, *, path: str | None = None, status: int = 307) -> None:
        """Answer the next request (to ``path``) with a redirect to ``location``, as a reverse
        proxy in front of Ollama may (http → https, a login page)."""
        with self._lock:
            self._redirects.append(_Fault(path, status, location))

    def error_after(
        self, n_chunks: int, message: str = MIDSTREAM_MESSAGE, *, path: str | None = None
    ) -> None:
        """The next stream sends ``n_chunks`` lines, then an ``{"error"}`` line (SSE: an empty
        delta), then ends without a done line."""
        with self._lock:
            self._error_after.append(_Fault(path, 200, message, n_chunks))

    def drop_after(self, n_chunks: int, *, path: str | None = None) -> None:
        """The next stream sends ``n_chunks`` lines, then the TCP connection is cut."""
        with self._lock:
            self._drop_after.append(_Fault(path, n=n_chunks))

    def raw_line_after(self, n_chunks: int, data: str, *, path: str | None = None) -> None:
        """The next stream sends ``n_chunks`` lines, then ``data`` verbatim (e.g. ``"\\n"``, a
        blank line, or a line missing ``message``), then carries on."""
        with self._lock:
            self._raw_after.append(_Fault(path, 200, data, n_chunks))

    def delay_first_byte(self, seconds: float) -> None:
        """Wait this long before answering any request except ``/`` (sticky; 0 clears)."""
        self._first_byte_delay = seconds

    def set_token_delay(self, seconds: float) -> None:
        """Pause between streamed lines (sticky; 0 clears). Lets Stop tests act mid-stream."""
        self._token_delay = seconds

    def set_formats(self, accepted: str) -> None:
        """Which ``format`` values chat and generate take (sticky): ``schema`` (Ollama since
        0.5: "json" or a JSON schema), ``json`` (Ollama before 0.5 and servers copying its
        API: a schema object fails to decode into the string field, HTTP 400 with Go's
        error) or ``none`` (a server with no structured output: any format is HTTP 400).
        On /v1 the same: ``json`` refuses a ``json_schema`` response_format, ``none`` any."""
        if accepted not in ("schema", "json", "none"):
            raise ValueError(accepted)
        self._formats = accepted

    def busy(self, on: bool = True) -> None:
        """While on, generation endpoints answer 503 "server busy" (queue full)."""
        self._busy = on

    def redirect_to(self, base_url: str | None, status: int = 307) -> None:
        """Answer every request (sticky; None clears) with ``status`` and
        ``Location: <base_url><the same path and query>``, an empty body — as a proxy
        that moved does. Recorded like any other request (``status`` set)."""
        with self._lock:
            self._redirect = (base_url.rstrip("/"), status) if base_url else None

    def queue_reply(self, text: str) -> None:
        """The next chat/generate reply is exactly ``text`` (e.g. invalid JSON for format tests)."""
        with self._lock:
            self._replies.append(text)

    def reset_faults(self) -> None:
        with self._lock:
            self._fail_queue.clear()
            self._redirects.clear()
            self._error_after.clear()
            self._drop_after.clear()
            self._raw_after.clear()
            self._replies.clear()
            for pause in self._pauses:
                pause.release()
            self._pauses.clear()
            self._first_byte_delay = 0.0
            self._token_delay = 0.0
            self._busy = False
            self._formats = "schema"
            self._redirect = None

    # -- expectations tests compute instead of hard-coding --

    def expected_reply(
        self, model: str, messages: Sequence[dict[str, Any]], fmt: Any = None
    ) -> str:
        """The exact text a (fault-free, unscripted) chat to ``model`` answers."""
        return "".join(self._reply_tokens(model, last_user_prompt(messages), fmt))

    def expected_tokens(
        self, model: str, messages: Sequence[dict[str, Any]], fmt: Any = None
    ) -> list[str]:
        return self._reply_tokens(model, last_user_prompt(messages), fmt)

    @staticmethod
    def _reply_tokens(model: str, prompt: str, fmt: Any) -> list[str]:
        if isinstance(fmt, dict):
            text = json.dumps(example_for_schema(fmt, prompt), ensure_ascii=False)
        elif fmt == "json":
            text = json.dumps({"response": reply_text(model, prompt)}, ensure_ascii=False)
        else:
            text = reply_text(model, prompt)
        return tokenize(text)

    # -- internals used by the handler --

    def _find_route(self, method: str, path: str) -> Callable[[_Handler], None] | None:
        found = _ROUTES.get((method, path))
        if found is None and method == "GET" and path.startswith("/v1/models/"):
            return _Handler.h_v1_model
        return found

    def _take(self, queue_name: str, path: str) -> _Fault | None:
        with self._lock:
            queue: list[_Fault] = getattr(self, queue_name)
            for i, fault in enumerate(queue):
                if fault.path is None or fault.path == path:
                    return queue.pop(i)
        return None

    def _take_pause(self, path: str) -> PullPause | None:
        with self._lock:
            for i, pause in enumerate(self._pauses):
                if pause.path == path:
                    return self._pauses.pop(i)
        return None

    def _find_pullable(self, name: str) -> ModelSpec | None:
        with self._lock:
            return next((m for m in self._pullable if m.name == name), None)

    def _install(self, spec: ModelSpec) -> None:
        with self._lock:
            self._models = [m for m in self._models if m.name != spec.name] + [spec]
            self._complete_blobs(spec)

    def _complete_blobs(self, spec: ModelSpec) -> None:
        with self._lock:
            for digest, size in _layers(spec):
                self._blobs[digest] = size

    def _blob_bytes(self, digest: str) -> int:
        with self._lock:
            return self._blobs.get(digest, 0)

    def _store_blob(self, digest: str, completed: int) -> None:
        with self._lock:
            self._blobs[digest] = max(self._blobs.get(digest, 0), completed)

    def _remove(self, name: str) -> bool:
        full = normalize_name(name)
        with self._lock:
            gone = [m for m in self._models if m.name == full]
            self._models = [m for m in self._models if m.name != full]
            self._loaded.pop(full, None)
            # `ollama rm` deletes the model's blobs that no other model uses.
            used = {d for m in self._models for d, _ in _layers(m)}
            for spec in gone:
                for digest, _ in _layers(spec):
                    if digest not in used:
                        self._blobs.pop(digest, None)
            return bool(gone)

    def _is_loaded(self, spec: ModelSpec) -> bool:
        with self._lock:
            return self._loaded.get(spec.name, 0) > time.time_ns()

    def _touch(self, spec: ModelSpec, keep_ns: int | None) -> None:
        """Reflect a request's keep_alive in /api/ps: 0 unloads, negative keeps forever."""
        keep = DEFAULT_KEEP_ALIVE_NS if keep_ns is None else keep_ns
        with self._lock:
            if keep == 0:
                self._loaded.pop(spec.name, None)
            else:
                self._loaded[spec.name] = time.time_ns() + min(keep, FOREVER_NS)

    def _ps_entries(self) -> list[dict[str, Any]]:
        now = time.time_ns()
        with self._lock:
            live = [(exp, self.find(name)) for name, exp in self._loaded.items() if exp > now]
        live.sort(key=lambda pair: pair[0], reverse=True)
        out = []
        for expiry, spec in live:
            if spec is None:
                continue
            # Keep the far-future expiry inside datetime's range (year 9999).
            expiry_ns = min(expiry, now + 292 * 365 * 86400 * 10**9)
            out.append(
                {
                    "name": spec.name,
                    "model": spec.name,
                    "size": spec.size,
                    "digest": spec.digest,
                    "details": spec.details(),
                    "expires_at": go_time(expiry_ns),
                    "size_vram": spec.size if spec.size_vram is None else spec.size_vram,
                    "context_length": min(spec.context_length, 4096),
                }
            )
        return out

    def _compose(
        self,
        spec: ModelSpec,
        name: str,
        messages: list[dict[str, Any]],
        body: dict[str, Any],
        *,
        allow_thinking: bool = True,
    ) -> _Reply:
        prompt = last_user_prompt(messages)
        with self._lock:
            scripted = self._replies.pop(0) if self._replies else None
        tokens = (
            tokenize(scripted)
            if scripted is not None
            else self._reply_tokens(name, prompt, body.get("format") or None)
        )
        thinking: list[str] = []
        if allow_thinking and body.get("think") and "thinking" in spec.capabilities:
            thinking = tokenize(thinking_text(prompt))
        done_reason = "stop"
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        return _Reply(tokens, thinking, done_reason, prompt_tokens(messages))

    def _next_completion_id(self) -> str:
        with self._lock:
            self._completion_counter = (self._completion_counter + 1) % 999
            return f"chatcmpl-{self._completion_counter}"

    @staticmethod
    def _openai_model(spec: ModelSpec) -> dict[str, Any]:
        created = int(datetime.fromisoformat(spec.modified_at.replace("Z", "+00:00")).timestamp())
        return {"id": spec.name, "object": "model", "created": created, "owned_by": "library"}
