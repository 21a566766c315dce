"""Model management on one Ollama host: pull with progress, delete, model cards, what is loaded.

Why its own module and its own HTTP client: the chat backend (``ollama_backend.py``) is built
for chat and listing; managing models needs other timeouts (a pull can be silent for minutes
while Ollama verifies a large blob) and must never follow a redirect — a 3xx is an error that
names where it pointed. It takes what it needs from an ``OllamaBackend`` through public
members only (``base_url``, ``route_id``, ``translate_error``, ``forget_details``...).

Wire format (ollama-protocol.md §2): ``/api/pull`` streams NDJSON progress (``pulling
manifest`` → ``pulling <12 hex>`` per layer with ``digest``/``total``/``completed`` →
``verifying sha256 digest`` → ``writing manifest`` → ``success``), and a failure after the
first line is an ``{"error"}`` line inside an HTTP 200. ``DELETE /api/delete`` answers 200
with an empty body. ``/api/show`` always has ``model_info``. ``/api/ps`` lists what is in
memory with ``expires_at``/``size_vram``/``context_length``. An empty ``/api/generate`` with
``keep_alive: 0`` unloads a model (what ``ollama stop`` does).

Resuming: Ollama keeps a cancelled download's bytes (``-partial`` files) and the next pull of
the same model continues from them; its first progress line for such a layer already carries
``completed``. ``PullTracker`` reports that as ``resumed_bytes``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx

from halext_desktop.routing.backends.http_errors import one_line
from halext_desktop.routing.backends.http_guard import RedirectRefused
from halext_desktop.routing.backends.ollama_backend import OllamaBackend, quantization_of
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef

# A pull may be silent for a long time (manifest fetch, verifying a 40 GB blob): the read
# timeout is the longest gap between two progress lines, not the length of the download.
PULL_TIMEOUT = httpx.Timeout(connect=3.0, read=300.0, write=10.0, pool=5.0)
# show, ps, delete, unload: a healthy server answers at once; unloading may wait for a
# runner to stop.
MANAGE_TIMEOUT = httpx.Timeout(30.0, connect=3.0)
# How far back the download speed looks (seconds), and how long before it says anything.
SPEED_WINDOW_S = 5.0
SPEED_MIN_SPAN_S = 0.5

_NAME_HINT = "Names look like llama3.2, qwen2.5:7b or hf.co/<user>/<repo>:<tag>"
_RESUME_HINT = "Pull again: Ollama resumes from what it already downloaded"


def full_model_name(name: str) -> str:
    """``llama3.2`` → ``llama3.2:latest``: the name Ollama lists after pulling it."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def host_of_ref(backend: OllamaBackend) -> str | None:
    """The ``@host`` part of references to ``backend``'s models (None for the default host)."""
    return None if backend.is_default else backend.name


# ---- what the front ends get --------------------------------------------------------------------


class PullPhase(StrEnum):
    MANIFEST = "manifest"  # asking the registry what the model is made of
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    WRITING = "writing"
    CLEANING = "cleaning"  # removing layers the new version no longer uses
    DONE = "done"


@dataclass(frozen=True, slots=True)
class LayerProgress:
    """One blob of a model (weights, template, license, params) as the pull reports it."""

    digest: str  # "sha256:…"
    total: int
    completed: int
    resumed: int = 0  # bytes already on disk when this pull started

    @property
    def done(self) -> bool:
        return self.total > 0 and self.completed >= self.total


@dataclass(frozen=True, slots=True)
class PullProgress:
    """Where a pull stands, after each progress line.

    Attributes:
        route_id: the Ollama host (``ollama``, ``ollama@studio``).
        model: the name as asked (``llama3.2``).
        phase: what Ollama is doing.
        status: Ollama's own words of the last line (``pulling dde5aa3fc5ff``).
        layers: every layer announced so far, in order.
        completed, total: bytes over all layers announced so far.
        resumed_bytes: bytes that were on disk from an earlier, unfinished pull.
        bytes_per_second: download speed over the last few seconds (None until known).
        eta_seconds: time left at that speed (None until known).
    """

    route_id: str
    model: str
    phase: PullPhase
    status: str
    layers: tuple[LayerProgress, ...] = ()
    completed: int = 0
    total: int = 0
    resumed_bytes: int = 0
    bytes_per_second: float | None = None
    eta_seconds: float | None = None

    @property
    def percent(self) -> float | None:
        """0–100 over the layers announced so far; None before any has a size."""
        if self.phase in (PullPhase.VERIFYING, PullPhase.WRITING, PullPhase.CLEANING):
            return 100.0
        if self.phase is PullPhase.DONE:
            return 100.0
        if self.total <= 0:
            return None
        return min(100.0, 100.0 * self.completed / self.total)

    @property
    def done(self) -> bool:
        return self.phase is PullPhase.DONE

    @property
    def installed_name(self) -> str:
        return full_model_name(self.model)


class PullTracker:
    """Turns Ollama's progress lines into ``PullProgress`` (no I/O; a clock for the speed).

    Args:
        route_id, model: what is being pulled.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self, route_id: str, model: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.route_id = route_id
        self.model = model
        self._clock = clock
        self._layers: dict[str, LayerProgress] = {}
        self._phase = PullPhase.MANIFEST
        self._status = "pulling manifest"
        self._samples: deque[tuple[float, int]] = deque()
        self.last: PullProgress | None = None

    def feed(self, line: dict[str, Any], *, where: str) -> PullProgress:
        """One decoded NDJSON object; raises RouteError for an ``{"error"}`` line."""
        error = line.get("error")
        if error:
            raise pull_error_line(str(error), self.model, where, self.route_id)
        status = str(line.get("status") or "")
        digest = line.get("digest")
        if isinstance(digest, str) and digest:
            total = _int(line.get("total"))
            completed = _int(line.get("completed"))
            old = self._layers.get(digest)
            if old is None:
                # The first line of a layer: whatever it already counts was on disk before.
                layer = LayerProgress(digest, total, completed, resumed=completed)
            else:
                layer = LayerProgress(
                    digest, total or old.total, max(completed, old.completed), old.resumed
                )
            self._layers[digest] = layer
            self._phase = PullPhase.DOWNLOADING
        elif status:
            self._phase = _phase_of(status, self._phase)
        if status:
            self._status = status
        return self._snapshot()

    def _snapshot(self) -> PullProgress:
        layers = tuple(self._layers.values())
        completed = sum(min(layer.completed, layer.total or layer.completed) for layer in layers)
        total = sum(layer.total for layer in layers)
        # A layer already whole when the pull began is not a resumed download, just reused.
        resumed = sum(layer.resumed for layer in layers if layer.resumed < layer.total)
        new_bytes = sum(max(0, layer.completed - layer.resumed) for layer in layers)
        now = self._clock()
        self._samples.append((now, new_bytes))
        while len(self._samples) > 2 and now - self._samples[1][0] >= SPEED_WINDOW_S:
            self._samples.popleft()
        speed: float | None = None
        eta: float | None = None
        t0, b0 = self._samples[0]
        if self._phase is PullPhase.DOWNLOADING and now - t0 >= SPEED_MIN_SPAN_S:
            speed = max(0.0, (new_bytes - b0) / (now - t0))
            if speed > 0 and total:
                eta = max(0.0, (total - completed) / speed)
        self.last = PullProgress(
            self.route_id,
            self.model,
            self._phase,
            self._status,
            layers,
            completed,
            total,
            resumed,
            speed,
            eta,
        )
        return self.last


def _phase_of(status: str, current: PullPhase) -> PullPhase:
    text = status.lower()
    if text == "success":
        return PullPhase.DONE
    if text.startswith("pulling manifest"):
        return PullPhase.MANIFEST
    if text.startswith("verifying"):
        return PullPhase.VERIFYING
    if text.startswith("writing manifest"):
        return PullPhase.WRITING
    if text.startswith("removing"):
        return PullPhase.CLEANING
    return current


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class ModelCard:
    """``/api/show`` for one model: what it is, how it is prompted, its license.

    Attributes:
        ref: the model's reference (``ollama/llama3.2:latest``).
        raw: the whole answer, as Ollama sent it.
    """

    ref: ModelRef
    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    system: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    modified_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.model

    @property
    def architecture(self) -> str | None:
        arch = self.model_info.get("general.architecture")
        return arch if isinstance(arch, str) else None

    def _arch_int(self, key: str) -> int | None:
        arch = self.architecture
        value = self.model_info.get(f"{arch}.{key}") if arch else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def parameter_count(self) -> int | None:
        value = self.model_info.get("general.parameter_count")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def family(self) -> str | None:
        value = self.details.get("family")
        return value if isinstance(value, str) and value else self.architecture

    @property
    def parameter_size(self) -> str | None:
        value = self.details.get("parameter_size")
        return value if isinstance(value, str) and value else None

    @property
    def quantization(self) -> str | None:
        return quantization_of(self.details.get("quantization_level"))

    def parameter_pairs(self) -> list[tuple[str, str]]:
        """The ``parameters`` text as (name, value) pairs, one per line: ``num_keep 24`` →
        ``("num_keep", "24")``."""
        pairs: list[tuple[str, str]] = []
        for raw_line in self.parameters.splitlines():
            line = raw_line.strip()
            if not line:
                continue
            key, _, value = line.partition(" ")
            pairs.append((key, value.strip()))
        return pairs


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One model in memory (``/api/ps``).

    Attributes:
        size_bytes: memory it takes (RAM and VRAM together).
        vram_bytes: the part of it in GPU memory.
        expires_at: when Ollama unloads it unless used again (None when unknown).
    """

    ref: ModelRef
    size_bytes: int
    vram_bytes: int
    context_length: int | None = None
    expires_at: datetime | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None

    @property
    def name(self) -> str:
        return self.ref.model

    @property
    def gpu_fraction(self) -> float:
        return self.vram_bytes / self.size_bytes if self.size_bytes else 0.0

    @property
    def stays_loaded(self) -> bool:
        """``keep_alive`` < 0: Ollama sets the expiry ~292 years ahead."""
        return self.expires_at is not None and self.expires_at.year >= 2200


@dataclass(frozen=True, slots=True)
class StarterModel:
    """A small, popular model to offer when a host has none (sizes as ollama.com lists them)."""

    name: str
    size_bytes: int
    parameters: str
    description: str
    capabilities: tuple[str, ...] = ("completion",)


STARTER_MODELS: tuple[StarterModel, ...] = (
    StarterModel(
        "llama3.2:3b", 2_000_000_000, "3.2B", "Meta's small all-rounder", ("completion", "tools")
    ),
    StarterModel("llama3.2:1b", 1_300_000_000, "1.2B", "The smallest Llama; fast on any laptop"),
    StarterModel("gemma3:1b", 815_000_000, "1B", "Google's tiny model, quick on a CPU"),
    StarterModel(
        "qwen3:4b",
        2_500_000_000,
        "4B",
        "Reasons step by step before answering",
        ("completion", "tools", "thinking"),
    ),
    StarterModel("gemma3:4b", 3_300_000_000, "4B", "Reads images too", ("completion", "vision")),
    StarterModel(
        "nomic-embed-text",
        274_000_000,
        "137M",
        "Embeddings for search (it cannot chat)",
        ("embedding",),
    ),
)


# ---- errors -----------------------------------------------------------------------------------


def pull_error_line(text: str, model: str, where: str, route_id: str) -> RouteError:
    """Ollama's mid-pull ``{"error"}`` text as one clear line (unknown name, disk full, no
    internet on the host)."""
    line = one_line(text)
    low = line.lower()
    if "file does not exist" in low or "manifest unknown" in low or "not found" in low:
        return RouteError(
            ErrorKind.MODEL_NOT_FOUND,
            f"There is no model named '{model}' to pull ({line})",
            "Check the name and tag on ollama.com/library",
            route_id=route_id,
        )
    if "no space left" in low or "disk full" in low:
        return RouteError(
            ErrorKind.SERVER,
            f"The disk of the Ollama host {where} is full ({line})",
            f"Free some space there (delete models you no longer use). {_RESUME_HINT}.",
            route_id=route_id,
        )
    if any(
        word in low
        for word in ("dial tcp", "no such host", "lookup ", "i/o timeout", "connection refused")
    ):
        return RouteError(
            ErrorKind.CONNECTION,
            f"Ollama on {where} could not reach the model registry ({line})",
            f"Check that machine's internet connection. {_RESUME_HINT}.",
            route_id=route_id,
        )
    return RouteError(
        ErrorKind.SERVER,
        f"Pulling '{model}' on {where} failed: {line}",
        _RESUME_HINT,
        route_id=route_id,
    )


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return one_line(resp.text) or resp.reason_phrase
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return one_line(data["error"])
    return one_line(resp.text)


# ---- the host ---------------------------------------------------------------------------------


class OllamaModels:
    """Model management on the Ollama host behind ``backend``.

    Each call opens its own short-lived HTTP client (timeouts above, no redirects, no proxy
    for local and LAN addresses) so this works from any event loop, like the CLI's.

    Args:
        backend: the host's chat backend (its address, route id and error wording).
        clock: monotonic seconds for the download speed (tests).
    """

    def __init__(
        self, backend: OllamaBackend, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backend = backend
        self.route_id = backend.route_id
        self.where = backend.netloc
        self._clock = clock

    def ref(self, model: str) -> ModelRef:
        return ModelRef("ollama", host_of_ref(self.backend), model)

    def _client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        # The backend's guards: its own key only, and every redirect refused.
        return self.backend.new_http_client(timeout)

    def _err(
        self, kind: ErrorKind, message: str, hint: str = "", status: int | None = None
    ) -> RouteError:
        return RouteError(kind, message, hint, status=status, route_id=self.route_id)

    def _status_error(self, resp: httpx.Response, path: str, model: str, op: str) -> RouteError:
        status = resp.status_code
        text = _error_text(resp)
        if status == 404 and text == "404 page not found":
            return self._err(
                ErrorKind.BAD_REQUEST,
                f"{self.backend.base_url} has no {path} (404 page not found)",
                "Check the URL: it should be the Ollama server root, e.g. http://127.0.0.1:11434",
                status,
            )
        if status == 404:
            return self._err(
                ErrorKind.MODEL_NOT_FOUND,
                f"'{model}' is not installed on {self.where}",
                "Refresh the list: it may have been deleted already"
                if op in ("delete", "unload")
                else "Pull it first",
                status,
            )
        if status == 400 and "name" in text.lower():
            return self._err(
                ErrorKind.BAD_REQUEST, f"'{model}' is not a valid model name", _NAME_HINT, status
            )
        if status == 503:
            return self._err(
                ErrorKind.SERVER,
                f"Ollama on {self.where} is busy: {text}",
                "Wait for other requests to finish, then try again",
                status,
            )
        if 400 <= status < 500:
            return self._err(
                ErrorKind.BAD_REQUEST,
                f"Ollama on {self.where} refused to {op} '{model}': {text} (HTTP {status})",
                status=status,
            )
        return self._err(
            ErrorKind.SERVER,
            f"Ollama on {self.where} failed to {op} '{model}': {text} (HTTP {status})",
            "Check the Ollama server log",
            status,
        )

    def _check_name(self, model: str) -> str:
        name = (model or "").strip()
        if not name or any(c.isspace() for c in name):
            raise self._err(
                ErrorKind.BAD_REQUEST,
                f"'{model}' is not a valid model name" if name else "No model name was given",
                _NAME_HINT,
            )
        return name

    async def _json(
        self, method: str, path: str, model: str, op: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        await self.backend.read_key()
        try:
            async with self._client(MANAGE_TIMEOUT) as http:
                resp = await http.request(method, path, json=body)
        except (httpx.HTTPError, RedirectRefused) as exc:
            raise self.backend.translate_error(exc, model=model, op=op) from None
        if resp.status_code != 200:
            raise self._status_error(resp, path, model, op)
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._err(
                ErrorKind.SERVER,
                f"Ollama on {self.where} answered {path} with something that is not JSON",
                "Is this an Ollama server? Check the URL and update Ollama",
            ) from None
        if not isinstance(data, dict):
            raise self._err(ErrorKind.SERVER, f"Ollama on {self.where} sent a bad {path} reply")
        return data

    # ---- operations ---------------------------------------------------------------------------

    async def show(self, model: str) -> ModelCard:
        """The model card (``/api/show``). Raises RouteError (MODEL_NOT_FOUND when absent)."""
        name = self._check_name(model)
        data = await self._json("POST", "/api/show", name, "show", {"model": name})
        details = data.get("details")
        info = data.get("model_info")
        caps = data.get("capabilities")
        return ModelCard(
            ref=self.ref(name),
            license=_str(data.get("license")),
            modelfile=_str(data.get("modelfile")),
            parameters=_str(data.get("parameters")),
            template=_str(data.get("template")),
            system=_str(data.get("system")),
            details=details if isinstance(details, dict) else {},
            model_info=info if isinstance(info, dict) else {},
            capabilities=tuple(str(c) for c in caps) if isinstance(caps, list) else (),
            modified_at=_time(data.get("modified_at")),
            raw=data,
        )

    async def loaded(self) -> list[LoadedModel]:
        """What is in memory now (``/api/ps``), longest keep-alive first as Ollama sorts it."""
        data = await self._json("GET", "/api/ps", "", "list loaded models")
        out: list[LoadedModel] = []
        for entry in data.get("models") or []:
            if not isinstance(entry, dict):
                continue
            name = entry.get("model") or entry.get("name")
            if not isinstance(name, str) or not name:
                continue
            raw_details = entry.get("details")
            details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
            ctx = entry.get("context_length")
            out.append(
                LoadedModel(
                    ref=self.ref(name),
                    size_bytes=_int(entry.get("size")),
                    vram_bytes=_int(entry.get("size_vram")),
                    context_length=ctx if isinstance(ctx, int) and ctx > 0 else None,
                    expires_at=_time(entry.get("expires_at")),
                    family=_str(details.get("family")) or None,
                    parameter_size=_str(details.get("parameter_size")) or None,
                    quantization=quantization_of(details.get("quantization_level")),
                )
            )
        return out

    async def unload(self, model: str) -> None:
        """Free the model's memory now (``keep_alive: 0``, as ``ollama stop`` does)."""
        name = self._check_name(model)
        data = await self._json(
            "POST",
            "/api/generate",
            name,
            "unload",
            {"model": name, "keep_alive": 0, "stream": False},
        )
        reason = data.get("done_reason")
        if reason not in (None, "unload"):
            raise self._err(
                ErrorKind.SERVER,
                f"Ollama on {self.where} did not unload '{name}' (it answered {reason!r})",
                "Update Ollama: older servers cannot unload on request",
            )

    async def delete(self, model: str) -> int | None:
        """Delete ``model``; returns its size on disk as ``/api/tags`` gave it just before (what
        the delete frees, at most — layers shared with other models stay), or None."""
        name = self._check_name(model)
        size: int | None = None
        try:
            tags = await self._json("GET", "/api/tags", name, "list")
            wanted = full_model_name(name)
            for entry in tags.get("models") or []:
                if isinstance(entry, dict) and full_model_name(str(entry.get("model"))) == wanted:
                    size = _int(entry.get("size")) or None
        except RouteError:
            pass  # the delete itself says what is wrong
        await self.backend.read_key()
        try:
            async with self._client(MANAGE_TIMEOUT) as http:
                resp = await http.request("DELETE", "/api/delete", json={"model": name})
        except (httpx.HTTPError, RedirectRefused) as exc:
            raise self.backend.translate_error(exc, model=name, op="delete") from None
        if resp.status_code != 200:
            raise self._status_error(resp, "/api/delete", name, "delete")
        self.backend.forget_details(name)
        self.backend.forget_details(full_model_name(name))
        return size

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Download ``model``: one PullProgress per progress line, the last one ``done``.

        Closing the iterator (or cancelling its task) closes the HTTP stream, which makes
        Ollama stop the download; what it got so far stays on disk for the next pull.
        Raises RouteError: unknown name, full disk, the host down or gone mid-way.
        """
        name = self._check_name(model)
        tracker = PullTracker(self.route_id, name, self._clock)
        path = "/api/pull"
        started = False
        await self.backend.read_key()
        try:
            async with (
                self._client(PULL_TIMEOUT) as http,
                http.stream("POST", path, json={"model": name, "stream": True}) as resp,
            ):
                if resp.status_code != 200:
                    await resp.aread()
                    raise self._status_error(resp, path, name, "pull")
                started = True
                async for raw in resp.aiter_lines():
                    if not raw.strip():
                        continue
                    try:
                        line = json.loads(raw)
                    except json.JSONDecodeError:
                        raise self._err(
                            ErrorKind.SERVER,
                            f"Ollama on {self.where} sent a progress line that is not JSON",
                            "Is this an Ollama server? Check the URL and update Ollama",
                        ) from None
                    if not isinstance(line, dict):
                        continue
                    progress = tracker.feed(line, where=self.where)
                    yield progress
                    if progress.done:
                        self.backend.forget_details(progress.installed_name)
                        return
        except RouteError:
            raise
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout) or not started:
                raise self.backend.translate_error(exc, model=name, op="pull") from None
            raise self._err(
                ErrorKind.TIMEOUT,
                f"Ollama on {self.where} sent no progress for {PULL_TIMEOUT.read:g} s "
                f"while pulling '{name}'",
                _RESUME_HINT,
            ) from None
        except (httpx.HTTPError, OSError, RedirectRefused) as exc:
            if not started:
                raise self.backend.translate_error(exc, model=name, op="pull") from None
            raise self._dropped(name, tracker) from None
        raise self._dropped(name, tracker)

    def _dropped(self, name: str, tracker: PullTracker) -> RouteError:
        got = tracker.last.completed if tracker.last else 0
        kept = f" after {got:,} bytes" if got else ""
        return self._err(
            ErrorKind.STREAM_DROPPED,
            f"The pull of '{name}' from {self.where} stopped before it finished{kept}",
            _RESUME_HINT,
        )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
