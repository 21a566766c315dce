"""Plain data shared by the router, its backends, storage and the front ends.

Nothing here does I/O. Times are UTC-aware datetimes; durations are milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from halext_desktop.routing.errors import RouteError
from halext_desktop.routing.refs import ModelRef

Role = Literal["system", "user", "assistant"]


class Locality(StrEnum):
    """Where the text goes. Drives the picker's grouping and the cloud policy."""

    LOCAL = "local"  # this machine (loopback)
    SELF_HOSTED = "self-hosted"  # a server the user or their org runs (LAN Ollama, halext nodes)
    CLOUD = "cloud"  # a third-party hosted provider (OpenAI, Gemini, public endpoints)


class UsageStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # refused by policy (nothing sent), or a cloud reply discarded
    PLACEHOLDER = "placeholder"  # halext had no working model and sent its mock text
    # The app stopped (crash, kill, shutdown) before the reply ended; written by storage's
    # start-up recovery, or when the app shuts down mid-reply.
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image sent with a message: Ollama gets ``data`` as bare base64 in ``images``,
    OpenAI-compatible endpoints an ``image_url`` content part with a ``data:`` URL."""

    mime: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()


# How structured output is asked for: see ChatOptions.
JsonMode = Literal["schema", "json", "prompt"]
JSON_MODES: tuple[JsonMode, ...] = ("schema", "json", "prompt")


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-request options. ``json_schema`` asks for structured output (assistants):
    Ollama gets it as ``format``, OpenAI-compatible endpoints get JSON mode, halext gets
    a strict prompt (the server has no such field).

    ``json_mode`` says how a ``json_schema`` is asked for where the server takes one:
    ``schema`` sends the schema itself (Ollama's ``format``), ``json`` only asks for JSON
    (``format: "json"``, for servers that reject a schema), ``prompt`` sends no format at all
    (the prompt alone holds the model to the schema)."""

    json_schema: dict[str, Any] | None = None
    temperature: float | None = None
    json_mode: JsonMode = "schema"
    top_p: float | None = None
    # The context length to run the model with (Ollama's ``num_ctx``), when the
    # conversation sets one; it also bounds the history sent. Ollama's native API only.
    num_ctx: int | None = None
    max_tokens: int | None = None  # Ollama ``num_predict``, OpenAI ``max_tokens``
    seed: int | None = None

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters that are set, by their names here."""
        names = ("temperature", "top_p", "num_ctx", "max_tokens", "seed")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


# What each kind of route cannot carry of ChatOptions.sampling(): the request goes without
# them and the reply says so (never a silent drop). halext's chat request has only prompt,
# history and model (halext-api.md §5.3); OpenAI-compatible endpoints have no num_ctx.
UNSENDABLE_OPTIONS: dict[str, frozenset[str]] = {
    "halext": frozenset({"temperature", "top_p", "num_ctx", "max_tokens", "seed"}),
    "openai": frozenset({"num_ctx"}),
    "ollama": frozenset(),
}
OPTION_LABELS = {
    "temperature": "temperature",
    "top_p": "top-p",
    "num_ctx": "context length",
    "max_tokens": "max tokens",
    "seed": "seed",
}


def options_not_sent(kind: str, options: ChatOptions) -> list[str]:
    """Labels of the options set in ``options`` that a ``kind`` route cannot carry."""
    cannot = UNSENDABLE_OPTIONS.get(kind, frozenset())
    return [OPTION_LABELS[n] for n in options.sampling() if n in cannot]


def not_sent_note(kind: str, options: ChatOptions) -> str | None:
    """The note a reply carries when some of its options could not be sent."""
    labels = options_not_sent(kind, options)
    if not labels:
        return None
    why = {
        "halext": "the halext API has no such fields",
        "openai": "OpenAI-compatible endpoints cannot set it",
    }.get(kind, "this route cannot carry them")
    return f"Not sent to {kind}: {', '.join(labels)} ({why})"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model a route offers, as the picker and ``halext-desktop models`` show it.

    Attributes:
        ref: the reference to send back to the router.
        name: short display name (``llama3.1:8b``, ``gpt-4o-mini``).
        provider: display provider (``ollama``, ``openai``, ``gemini``, ``mock``...).
        source: routing family on the server side when known (halext ``source``), else provider.
        locality: local / self-hosted / cloud.
        available: False when the route knows the model but cannot serve it now.
        size_bytes, context_length, family, quantization, parameter_size: when known.
        node_name, latency_ms: for halext client nodes.
        capabilities: e.g. ("completion", "tools", "vision").
        extra: raw provider metadata worth keeping (never secrets).
    """

    ref: ModelRef
    name: str
    provider: str
    source: str
    locality: Locality
    available: bool = True
    size_bytes: int | None = None
    context_length: int | None = None
    family: str | None = None
    quantization: str | None = None
    parameter_size: str | None = None
    node_name: str | None = None
    latency_ms: int | None = None
    capabilities: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_cloud(self) -> bool:
        return self.locality is Locality.CLOUD

    @property
    def can_chat(self) -> bool:
        """False for embedding-only models (Ollama lists them with ``["embedding"]``)."""
        caps = set(self.capabilities)
        return not ("embedding" in caps and "completion" not in caps)


@dataclass(frozen=True, slots=True)
class Health:
    """Result of a route's health check ("Test" button, status bar)."""

    route_id: str
    ok: bool
    latency_ms: int | None = None
    version: str | None = None
    model_count: int | None = None
    detail: str = ""  # "Ollama 0.12.3 · 7 models · 4 ms" or the exact failure and likely fix
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    signed_in_as: str | None = None  # halext only


# ---- what a backend yields while streaming -------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackendStarted:
    """The backend knows which model answers (halext: ``X-Halext-AI-Model``; Ollama: the
    ``model`` of the first chunk; OpenAI: the ``model`` of the first chunk)."""

    answered_model: str  # provider-side id as the server reports it, e.g. "openai:gpt-4o-mini"
    provider: str | None = None  # routing key when the backend knows it


@dataclass(slots=True)
class Delta:
    """A piece of the reply's text: what a backend yields and the router passes on as it
    is (one class for both: no copy per chunk). Not frozen, unlike the other events: one is
    made per chunk, and a frozen dataclass costs twice as much to make (~0.3 µs more, 2-3 %
    of a fast local reply); nothing changes one once made."""

    text: str


BackendDelta = Delta


@dataclass(frozen=True, slots=True)
class BackendDone:
    prompt_tokens: int | None = None
    response_tokens: int | None = None
    exact_tokens: bool = False  # Ollama's eval counts are exact; halext's are estimates
    done_reason: str | None = None
    answered_model: str | None = None  # when only known at the end
    # Ollama's ``eval_duration``: nanoseconds spent generating ``response_tokens`` (its
    # ``eval_count``), both exact, so tokens/s is measured, not guessed. None elsewhere.
    eval_duration_ns: int | None = None


BackendEvent = BackendStarted | BackendDelta | BackendDone


# ---- the usage row, as storage writes it ----------------------------------------------------


@dataclass(slots=True)
class UsageRecord:
    """One row of the local ``ai_usage_logs`` mirror: the halext server's columns first,
    then what the desktop knows better."""

    model_identifier: (
        str  # what answered (or was asked, if nothing answered), e.g. "openai:gpt-4o-mini"
    )
    endpoint: (
        str  # "/ai/chat/stream", "ollama:/api/chat", "openai:/chat/completions", "assist:task"
    )
    prompt_tokens: int = 0
    response_tokens: int = 0
    total_tokens: int = 0
    latency_ms: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    user_id: int | None = None
    conversation_id: int | None = None
    # desktop extras
    route: str = ""  # route id, "halext", "ollama@studio"
    requested_model: str = ""  # the full model reference asked for
    status: UsageStatus = UsageStatus.OK
    error: str | None = None
    ttft_ms: int | None = None  # time to first token
    tokens_exact: bool = False
    id: int | None = None


# ---- what the router emits -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat turn. ``messages`` ends with the new user prompt."""

    ref: ModelRef
    messages: tuple[ChatMessage, ...]
    conversation_id: int | None = None
    endpoint_name: str = (
        "chat"  # "chat", "assist:task"... stored as the usage row's endpoint prefix
    )
    options: ChatOptions = field(default_factory=ChatOptions)
    use_fallbacks: bool = True


@dataclass(frozen=True, slots=True)
class Started:
    """What answered. ``notes`` say when it is not what was asked (server fallback,
    fallback route)."""

    requested: ModelRef
    answered: ModelRef  # the reference that actually answers (route + server-reported model)
    answered_model: str  # provider-side id as reported, e.g. "mock:llama3.1"
    locality: Locality
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    text: str
    usage: UsageRecord
    notes: tuple[str, ...] = ()
    answered: ModelRef | None = (
        None  # final word on what answered (a server fallback may show only at the end)
    )
    # The generation speed a route measured (Ollama: eval_count tokens in eval_duration
    # ns); None when the route reports none, so nothing is shown rather than a guess.
    eval_count: int | None = None
    eval_duration_ns: int | None = None

    @property
    def tokens_per_second(self) -> float | None:
        return tokens_per_second(self.eval_count, self.eval_duration_ns)


@dataclass(frozen=True, slots=True)
class Failed:
    """A request that ended without an answer (or with the server's placeholder).

    Attributes:
        not_sent: why nothing was sent, in a few words ("cloud providers are disabled"),
            when the request was refused before any I/O; None when it went out.
    """

    error: RouteError
    partial_text: str
    usage: UsageRecord
    notes: tuple[str, ...] = ()
    answered: ModelRef | None = None  # set when a route had started answering
    not_sent: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    partial_text: str
    usage: UsageRecord
    answered: ModelRef | None = None


@dataclass(frozen=True, slots=True)
class ModelListing:
    """Every model the configured routes offer, plus why a route could not be asked."""

    models: list[ModelInfo]
    errors: dict[str, RouteError] = field(default_factory=dict)  # route_id -> error
    skipped: dict[str, str] = field(default_factory=dict)  # route_id -> reason (offline)


def tokens_per_second(eval_count: object, eval_duration_ns: object) -> float | None:
    """``eval_count / eval_duration`` per second, as ollama-protocol.md defines it; None
    unless both are positive integers (a missing or zero duration is no measurement)."""
    if not isinstance(eval_count, int) or isinstance(eval_count, bool) or eval_count <= 0:
        return None
    if (
        not isinstance(eval_duration_ns, int)
        or isinstance(eval_duration_ns, bool)
        or eval_duration_ns <= 0
    ):
        return None
    return eval_count / eval_duration_ns * 1e9


RouterEvent = Started | Delta | Finished | Failed | Cancelled
TERMINAL_EVENTS = (Finished, Failed, Cancelled)
