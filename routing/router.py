"""The shared Router: policy first, then one backend stream, one usage row per attempt.

It runs on the app's asyncio loop thread (or ``asyncio.run`` in the CLI) and knows
nothing of Qt. Every request ends in exactly one terminal event — Finished, Failed or
Cancelled — and every route it contacts (or refuses) gets exactly one usage row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import (
    CLOUD_REASON,
    Policy,
    halext_model_is_cloud,
    short_reason,
)
from halext_desktop.routing.refs import ModelRef, canonical_model_id
from halext_desktop.routing.types import (
    BackendDone,
    BackendEvent,
    BackendStarted,
    Cancelled,
    ChatRequest,
    Delta,
    Failed,
    Finished,
    Health,
    Locality,
    ModelListing,
    RouterEvent,
    Started,
    UsageRecord,
    UsageStatus,
    not_sent_note,
)
from halext_desktop.routing.usage_sink import UsageSink

log = logging.getLogger(__name__)

# What each route kind calls its chat endpoint, stored in the usage row's `endpoint`.
_ENDPOINTS = {"halext": "/ai/chat/stream", "ollama": "/api/chat", "openai": "/chat/completions"}
# Failures no model had a part in: the route refused the credentials (or would not get
# them), pointed elsewhere, or could not be reached. Their rows carry no token estimate,
# and an authentication failure is the route's, not the model's.
_AUTH_KINDS = (ErrorKind.SIGNED_OUT, ErrorKind.AUTH_FAILED, ErrorKind.INSECURE)
_NO_MODEL_KINDS = (*_AUTH_KINDS, ErrorKind.REDIRECT, ErrorKind.CONNECTION)
UNLISTED_REASON = "halext does not list this model"
# Failures the fallback list must not paper over: the user's choice was refused, or the
# user has to act (sign in, allow plain http, configure the route).
_NO_FALLBACK_KINDS = (
    ErrorKind.BLOCKED,
    ErrorKind.AUTH_FAILED,
    ErrorKind.NOT_CONFIGURED,
    ErrorKind.INSECURE,
)


class CancelToken:
    """Set from any thread to stop a request; the router closes the backend stream.

    Stop costs a reply nothing while nobody presses it: the router awaits the backend's
    stream directly, and only a cancel (``on_cancel`` callbacks, run on the router's loop)
    interrupts the read in progress.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cancelled = False
        self._lock = threading.Lock()
        self._callbacks: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []

    def bind(self) -> asyncio.Event:
        """An event of the running loop that is set once the token is cancelled."""
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            if self._cancelled:
                self._event.set()
        return self._event

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback()`` on the running loop once the token is cancelled (soon, when it
        already is); returns the function that forgets it."""
        loop = asyncio.get_running_loop()
        entry = (loop, callback)
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(entry)
                added = True
            else:
                added = False
        if not added:
            loop.call_soon(callback)
            return _nothing

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(entry)

        return remove

    def cancel(self) -> None:
        """Thread-safe and idempotent."""
        with self._lock:
            first = not self._cancelled
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        if not first:
            return
        for loop, callback in callbacks:
            # A closed loop has nothing left to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)
        if self._event is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._event.set)


def _nothing() -> None:
    return None


def same_model(asked: str, answered: str) -> bool:
    """Equal ids, treating Ollama's implicit ``:latest`` tag and halext's
    ``ollama-local:`` alias as the same model."""
    return canonical_model_id(asked) == canonical_model_id(answered)


class Router:
    """Sends chat requests to backends under the user's policy and logs usage.

    Args:
        backends: route_id -> Backend. Replace with ``set_backends`` when settings change.
        policy: returns the current Policy (read at the start of every request).
        usage_sink: receives exactly one UsageRecord per route attempt.
        fallbacks: returns the user's fallback list (model references), tried in order when
            a route fails before its first token.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        backends: Mapping[str, Backend],
        policy: Callable[[], Policy],
        usage_sink: UsageSink,
        *,
        fallbacks: Callable[[], list[ModelRef]] = list,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backends: dict[str, Backend] = dict(backends)
        self._policy = policy
        self._sink = usage_sink
        self._fallbacks = fallbacks
        self._clock = clock

    # ---- configuration ---------------------------------------------------------------

    @property
    def backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def backend(self, route_id: str) -> Backend | None:
        return self._backends.get(route_id)

    def backend_for(self, ref: ModelRef) -> Backend | None:
        """The backend a reference goes to. ``openai/<model>`` (no endpoint name) means the
        first configured OpenAI-compatible endpoint, as ``ollama/<model>`` means the first
        Ollama host."""
        backend = self._backends.get(ref.route_id)
        if backend is None and ref.host is None:
            backend = next((b for b in self._backends.values() if b.kind == ref.kind), None)
        return backend

    async def set_backends(self, backends: Mapping[str, Backend]) -> None:
        """Swap in a new set of backends (settings changed); closes the ones dropped."""
        old = self._backends
        self._backends = dict(backends)
        for rid, b in old.items():
            if self._backends.get(rid) is not b:
                with contextlib.suppress(Exception):
                    await b.aclose()

    async def aclose(self) -> None:
        for b in self._backends.values():
            with contextlib.suppress(Exception):
                await b.aclose()

    def policy(self) -> Policy:
        return self._policy()

    def locality_of(self, ref: ModelRef) -> Locality:
        """Where a request for ``ref`` would send the text (CLOUD when unknown: fail safe)."""
        backend = self.backend_for(ref)
        if backend is None:
            if ref.kind == "halext":
                return Locality.CLOUD if halext_model_is_cloud(ref.model) else Locality.SELF_HOSTED
            return Locality.CLOUD if ref.kind == "openai" else Locality.LOCAL
        return backend.locality_of(ref.model)

    def refusal(self, ref: ModelRef) -> str | None:
        """Why policy refuses ``ref`` now, or None."""
        return self._policy().refusal(ref, self.locality_of(ref))

    async def context_length(self, ref: ModelRef) -> int | None:
        """How many tokens ``ref``'s model takes in, when its route can tell (None when it
        cannot, or policy refuses ``ref``: nothing is asked of a route that may not be
        used). Never raises."""
        backend = self.backend_for(ref)
        if backend is None or self.refusal(ref):
            return None
        try:
            return await backend.context_length(ref.model)
        except Exception:  # a hint for the history's size is never worth failing a reply
            log.debug("context length of %s unknown", ref, exc_info=True)
            return None

    async def capabilities(self, ref: ModelRef) -> tuple[str, ...] | None:
        """What ``ref`` can take (``vision`` for images), as its route says: Ollama's
        ``/api/show`` ``capabilities``, halext's ``supports_vision``, an OpenAI-compatible
        listing's ``capabilities`` (none unless it says so). None when the route cannot be
        asked now (not configured, refused by policy: the request itself says why)."""
        backend = self.backend_for(ref)
        if backend is None or self.refusal(ref) or self._policy().route_allowed(backend.kind):
            return None
        details = getattr(backend, "model_details", None)
        if details is not None:
            info = await details(ref.model)
            return tuple(info.capabilities)
        for info in await backend.list_models():
            if info.ref.model == ref.model:
                return tuple(info.capabilities)
        return ()

    # ---- listing and health ----------------------------------------------------------

    async def list_models(self) -> ModelListing:
        """Ask every route that policy allows contacting; one route's failure never hides
        the others. Offline skips halext and OpenAI-compatible routes without any I/O."""
        policy = self._policy()
        listing = ModelListing(models=[])
        allowed: list[Backend] = []
        for rid, backend in self._backends.items():
            reason = policy.route_allowed(backend.kind)
            if reason:
                listing.skipped[rid] = reason
            else:
                allowed.append(backend)
        results = await asyncio.gather(*(b.list_models() for b in allowed), return_exceptions=True)
        for backend, result in zip(allowed, results, strict=True):
            if isinstance(result, RouteError):
                listing.errors[backend.route_id] = result
            elif isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.exception("listing %s failed", backend.route_id, exc_info=result)
                listing.errors[backend.route_id] = RouteError(
                    ErrorKind.INTERNAL, f"{backend.route_id}: {type(result).__name__}"
                )
            else:
                listing.models.extend(result)
        return listing

    async def health_all(self) -> list[Health]:
        """Health of every route policy allows contacting and that may be polled unasked
        (halext only once the user signed in to it: no contact before that)."""
        policy = self._policy()
        allowed = [
            b for b in self._backends.values() if not policy.route_allowed(b.kind) and b.may_poll()
        ]
        return list(await asyncio.gather(*(b.health() for b in allowed)))

    # ---- chat ------------------------------------------------------------------------

    def _candidates(self, request: ChatRequest) -> list[ModelRef]:
        refs = [request.ref]
        if request.use_fallbacks:
            for ref in self._fallbacks():
                if ref not in refs:
                    refs.append(ref)
        return refs

    async def stream(
        self, request: ChatRequest, cancel: CancelToken | None = None
    ) -> AsyncIterator[RouterEvent]:
        """Run one chat request; yields Started, Delta*, then exactly one terminal event.

        Policy is checked before any I/O. If the asked route fails before its first token
        and the user has a fallback list, the next allowed route answers and Started/Finished
        carry a note that says so.
        """
        cancel = cancel or CancelToken()
        policy = self._policy()
        candidates = self._candidates(request)
        notes: list[str] = []
        last_error: RouteError | None = None
        last_usage: UsageRecord | None = None

        for index, ref in enumerate(candidates):
            is_primary = index == 0
            backend = self.backend_for(ref)
            if backend is None:
                err = RouteError(
                    ErrorKind.NOT_CONFIGURED,
                    f"No route named {ref.route_id!r} is configured",
                    "Add the host or endpoint in Settings → Connections",
                    route_id=ref.route_id,
                )
                if is_primary:
                    usage = self._attempt_for(request, ref).record(UsageStatus.ERROR, err)
                    last_error, last_usage = err, usage
                    if len(candidates) == 1:
                        yield Failed(err, "", usage, not_sent=f"{ref.route_id} is not configured")
                        return
                    notes.append(f"{ref} is not configured")
                continue

            locality = backend.locality_of(ref.model)
            reason = policy.refusal(ref, locality)
            if reason:
                err = RouteError(
                    ErrorKind.BLOCKED,
                    f"{ref} was not sent: {reason}",
                    "Pick a local model, or change this in Settings → AI",
                    route_id=ref.route_id,
                )
                if is_primary:
                    # The user asked for it explicitly: refuse clearly, never substitute silently.
                    usage = self._attempt_for(request, ref).record(UsageStatus.BLOCKED, err)
                    yield Failed(err, "", usage, not_sent=short_reason(reason))
                    return
                continue

            if policy.disable_cloud:
                # The id alone is not enough: a server may re-route an id it cannot resolve
                # (halext answers it with its default model, which may be a cloud one). Send
                # only what the server's current list says stays off the cloud.
                refused = await self._unlisted_refusal(request, ref, backend)
                if refused is not None:
                    listing_failed = refused.not_sent is None
                    if (
                        listing_failed
                        and refused.error.kind not in _NO_FALLBACK_KINDS
                        and index + 1 < len(candidates)
                        and not cancel.cancelled
                    ):
                        # The list could not be had: like any failure before the first token.
                        last_error, last_usage = refused.error, refused.usage
                        notes.append(f"{ref} failed before answering: {refused.error.message}")
                        continue
                    if is_primary or listing_failed:
                        yield Failed(
                            refused.error,
                            "",
                            refused.usage,
                            tuple(notes),
                            not_sent=refused.not_sent,
                        )
                        return
                    continue

            if cancel.cancelled:
                usage = self._attempt_for(request, ref).record(UsageStatus.CANCELLED)
                yield Cancelled("", usage)
                return

            # One route, read here rather than in a nested generator: a reply's chunks pass
            # through one generator of ours (and the backend's), not two.
            attempt = self._attempt_for(request, ref)
            attempt.start()
            unsent = not_sent_note(backend.kind, request.options)
            if unsent and unsent not in notes:
                notes.append(unsent)  # said under the reply and by the CLI, never silently
            agen = backend.stream_chat(ref.model, list(request.messages), request.options)
            reader = _Reader(asyncio.current_task())
            task = reader.task
            started_any = False
            terminal: RouterEvent | None = None
            forget = cancel.on_cancel(reader.stop)
            parts = attempt.parts
            next_item = agen.__anext__
            try:
                while True:
                    if cancel._cancelled:
                        raise _Stopped  # a Stop while the consumer held the last chunk
                    reader.reading = True
                    try:
                        item = await next_item()
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if reader.stopped and task is not None and task.uncancel() == 0:
                            raise _Stopped from None
                        raise  # the task itself is being cancelled (the app is shutting down)
                    except BaseException:
                        if reader.stopped and task is not None and task.cancelling():
                            # The backend turned our cancel into its own error: it is a Stop.
                            task.uncancel()
                            raise _Stopped from None
                        raise
                    finally:
                        reader.reading = False
                    if reader.stopped:
                        # The chunk had arrived before the cancel took effect: Stop all the same.
                        if task is not None and task.cancelling():
                            task.uncancel()
                        raise _Stopped
                    if type(item) is Delta:
                        # The hot path: the backend's chunk is passed on as it is.
                        text = item.text
                        if text:
                            if not parts:
                                attempt.first_text()
                            parts.append(text)
                            started_any = True
                            yield item
                        continue
                    started = self._on_event(
                        item, attempt, request, ref, policy, notes, index, locality, last_error
                    )
                    if started is None:
                        continue
                    if isinstance(started, Failed):
                        terminal = started
                        break
                    yield started
            except _Stopped:
                # Stop: the read in progress was cancelled (the backend's finally closed the
                # HTTP response), or none had begun; closing the stream below ends the rest.
                forget()
                await _close(agen)
                terminal = Cancelled(
                    attempt.text, attempt.record(UsageStatus.CANCELLED), attempt.answered
                )
            except RouteError as err:
                err.route_id = err.route_id or ref.route_id
                usage = attempt.record(UsageStatus.ERROR, err)
                terminal = Failed(
                    err, attempt.text, usage, tuple(notes), attempt.answered_if_text()
                )
            except asyncio.CancelledError:
                # The task itself was cancelled (app shutting down): still one row, then propagate.
                attempt.record(UsageStatus.CANCELLED)
                raise
            except Exception as exc:  # a bug in a backend must not lose the partial reply
                log.exception("backend %s crashed", ref.route_id)
                crash = RouteError(
                    ErrorKind.INTERNAL,
                    f"Unexpected error from {ref.route_id}: {type(exc).__name__}",
                    route_id=ref.route_id,
                )
                usage = attempt.record(UsageStatus.ERROR, crash)
                terminal = Failed(
                    crash, attempt.text, usage, tuple(notes), attempt.answered_if_text()
                )
            finally:
                forget()
                await _close(agen)
            if terminal is None:
                terminal = self._outcome(attempt, ref, notes)
            if (
                isinstance(terminal, Failed)
                and not started_any
                and terminal.error.kind not in _NO_FALLBACK_KINDS
                and index + 1 < len(candidates)
                and not cancel.cancelled
            ):
                last_error, last_usage = terminal.error, terminal.usage
                notes.append(f"{ref} failed before answering: {terminal.error.message}")
                continue
            yield terminal
            return

        # Every candidate was unusable: report the first real failure.
        assert last_error is not None and last_usage is not None
        yield Failed(last_error, "", last_usage, tuple(notes))

    async def _unlisted_refusal(
        self, request: ChatRequest, ref: ModelRef, backend: Backend
    ) -> Failed | None:
        """With cloud providers disabled: None when the server lists ``ref`` as staying off
        the cloud, else the Failed event that ends the attempt (nothing was sent)."""
        try:
            listed = await backend.listed_locality(ref.model)
        except RouteError as exc:
            exc.route_id = exc.route_id or ref.route_id
            usage = self._attempt_for(request, ref).record(UsageStatus.ERROR, exc)
            return Failed(exc, "", usage)
        if listed is None:
            err = RouteError(
                ErrorKind.BLOCKED,
                f"{ref} was not sent: {backend.route_id} does not list {ref.model} now, and "
                "it answers an id it does not know with its default model, which may be a "
                "cloud model",
                "Pick a listed model (Ctrl+K, or `halext-desktop models`); the server's "
                "admin may have removed or deactivated it",
                route_id=ref.route_id,
            )
            usage = self._attempt_for(request, ref).record(UsageStatus.BLOCKED, err)
            return Failed(err, "", usage, not_sent=UNLISTED_REASON)
        if listed is Locality.CLOUD:
            err = RouteError(
                ErrorKind.BLOCKED,
                f"{ref} was not sent: {backend.route_id} lists it as a cloud model; {CLOUD_REASON}",
                "Pick a local model, or change this in Settings → AI",
                route_id=ref.route_id,
            )
            usage = self._attempt_for(request, ref).record(UsageStatus.BLOCKED, err)
            return Failed(err, "", usage, not_sent=short_reason(CLOUD_REASON))
        return None

    def _on_event(
        self,
        item: BackendEvent,
        attempt: _Attempt,
        request: ChatRequest,
        ref: ModelRef,
        policy: Policy,
        notes: list[str],
        index: int,
        locality: Locality,
        previous: RouteError | None,
    ) -> Started | Failed | None:
        """What a backend event other than text means: Started to pass on, Failed when the
        reply must be stopped (halext revealed a cloud model with cloud disabled), or
        None (the closing event, kept for the usage row)."""
        if isinstance(item, BackendStarted):
            answered = ModelRef(ref.kind, ref.host, item.answered_model or ref.model)
            attempt.answered = answered
            if (
                ref.kind == "halext"
                and policy.disable_cloud
                and halext_model_is_cloud(item.answered_model)
            ):
                err = RouteError(
                    ErrorKind.BLOCKED,
                    f"halext answered with the cloud model {item.answered_model}; "
                    "the reply was stopped and discarded",
                    "Cloud providers are disabled. Pick another model, or ask the server's admin",
                    route_id=ref.route_id,
                )
                attempt.discard_reply()
                usage = attempt.record(UsageStatus.BLOCKED, err)
                return Failed(err, "", usage, tuple(notes), answered)
            if not same_model(ref.model, item.answered_model):
                notes.append(f"Asked {ref.model} — the server answered with {item.answered_model}")
            if index > 0:
                notes.append(
                    f"Fallback: {request.ref} failed"
                    + (f" ({previous.message})" if previous else "")
                    + f"; {ref} answered"
                )
            return Started(request.ref, answered, item.answered_model, locality, tuple(notes))
        if isinstance(item, BackendDone):
            attempt.done = item
            if item.answered_model and not same_model(attempt.answered.model, item.answered_model):
                notes.append(
                    f"Asked {ref.model} — the server answered with {item.answered_model}"
                    + (" (its silent fallback)" if item.done_reason == "server_fallback" else "")
                )
                attempt.answered = ModelRef(ref.kind, ref.host, item.answered_model)
        return None

    def _outcome(self, attempt: _Attempt, ref: ModelRef, notes: list[str]) -> Failed | Finished:
        """The terminal event of a stream that ended normally."""
        if ref.kind == "halext" and attempt.answered.model.lower().startswith("mock:"):
            # halext's mock provider: the server had no working model and sent its canned
            # sentence. That is no answer: a failure, and never history for the next turn.
            placeholder = RouteError(
                ErrorKind.PLACEHOLDER,
                f"halext had no working model for {ref.model} and sent its placeholder text",
                "Pick another model (Ctrl+K), or ask the server's admin to check it",
                route_id=ref.route_id,
            )
            usage = attempt.record(UsageStatus.PLACEHOLDER, placeholder)
            return Failed(placeholder, attempt.text, usage, tuple(notes), attempt.answered)
        usage = attempt.record(UsageStatus.OK)
        # The route's own measurement of its speed, when it made one (Ollama does).
        timed = attempt.done if attempt.done and attempt.done.exact_tokens else None
        return Finished(
            attempt.text,
            usage,
            tuple(notes),
            attempt.answered,
            eval_count=timed.response_tokens if timed else None,
            eval_duration_ns=timed.eval_duration_ns if timed else None,
        )

    # ---- usage -----------------------------------------------------------------------

    def _attempt_for(self, request: ChatRequest, ref: ModelRef) -> _Attempt:
        """The usage record of one route attempt at ``ref``; ``record`` writes its row."""
        # Until the backend names who answers, the asked reference stands for it.
        return _Attempt(request, asked=ref, answered=ref, sink=self._sink, clock=self._clock)


class _Reader:
    """The read in progress of one attempt, which Stop cancels (a cancel token's callback,
    run on the router's loop): the backend's ``finally`` closes the HTTP response, so the
    server stops generating."""

    __slots__ = ("reading", "stopped", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.reading = False
        self.stopped = False

    def stop(self) -> None:
        task = self.task
        if self.reading and not self.stopped and task is not None and not task.done():
            self.stopped = True
            task.cancel()


class _Stopped(Exception):
    """Stop was pressed (the cancel token): the attempt ends as Cancelled."""


async def _close(agen: AsyncIterator[object]) -> None:
    """Close a backend stream (a no-op once it has ended)."""
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


@dataclass(slots=True)
class _Attempt:
    """What one route attempt has gathered so far, and the one usage row it ends with.

    The router fills it in as the stream goes (``start``, ``answered``, ``first_text``,
    ``parts``, ``done``) and calls ``record`` exactly once per attempt, whatever the
    outcome. An attempt refused before any I/O (not configured, blocked, cancelled) is
    recorded unstarted: its latency is 0.

    Attributes:
        request: what was asked.
        asked: the route and model this attempt went to (the request's, or a fallback).
        answered: who answered: ``asked`` until the backend names another model.
        sink: receives the row.
        clock: monotonic seconds.
        t0: when the request was sent, or None when it never was.
        ttft: seconds from ``t0`` to the first text, or None.
        parts: the reply's text so far.
        done: the backend's closing event, with its token counts, once it came.
    """

    request: ChatRequest
    asked: ModelRef
    answered: ModelRef
    sink: UsageSink
    clock: Callable[[], float]
    t0: float | None = None
    ttft: float | None = None
    parts: list[str] = field(default_factory=list)
    done: BackendDone | None = None

    def start(self) -> None:
        self.t0 = self.clock()

    def first_text(self) -> None:
        """The reply's first text arrived now (its time to first token)."""
        if self.ttft is None and self.t0 is not None:
            self.ttft = self.clock() - self.t0

    def discard_reply(self) -> None:
        """Forget what arrived (a reply stopped by policy is not kept, not even its counts)."""
        self.parts.clear()
        self.ttft = None
        self.done = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def answered_if_text(self) -> ModelRef | None:
        """Who answered, when some of the reply came (a failure before any text names none)."""
        return self.answered if self.parts else None

    def record(self, status: UsageStatus, error: RouteError | None = None) -> UsageRecord:
        """Build this attempt's usage row, hand it to the sink (a failing sink is logged,
        never raised: the reply matters more than its log row) and return it."""
        request, done = self.request, self.done
        prompt = request.messages[-1].content if request.messages else ""
        exact = bool(done and done.exact_tokens and done.prompt_tokens is not None)
        no_model = error is not None and error.kind in _NO_MODEL_KINDS and not self.parts
        model_identifier = str(self.answered)
        if error is not None and error.kind in _AUTH_KINDS:
            # The route refused the credentials: that is the route's failure, not the model's.
            model_identifier = self.asked.route_id
        if self.t0 is None or no_model:
            # Nothing was sent (refused before any I/O), or no model saw it: no estimate.
            prompt_tokens = response_tokens = 0
            exact = False
        elif exact and done is not None:
            prompt_tokens = done.prompt_tokens or 0
            response_tokens = done.response_tokens or 0
        else:
            # The halext server's own estimate: len(text) // 4 of the prompt and of the reply.
            prompt_tokens = (
                done.prompt_tokens if done and done.prompt_tokens is not None else len(prompt) // 4
            )
            response_tokens = len(self.text) // 4
        endpoint = _ENDPOINTS.get(self.asked.kind, "")
        if request.endpoint_name != "chat":
            endpoint = f"{request.endpoint_name}:{endpoint}"
        row = UsageRecord(
            model_identifier=model_identifier,
            endpoint=endpoint,
            prompt_tokens=prompt_tokens,
            response_tokens=response_tokens,
            total_tokens=prompt_tokens + response_tokens,
            latency_ms=int((self.clock() - self.t0) * 1000) if self.t0 is not None else 0,
            created_at=datetime.now(UTC),
            conversation_id=request.conversation_id,
            route=self.asked.route_id,
            requested_model=str(request.ref),
            status=status,
            error=error.message if error else None,
            ttft_ms=int(self.ttft * 1000) if self.ttft is not None else None,
            tokens_exact=exact,
        )
        try:
            self.sink.record(row)
        except Exception:  # the reply matters more than its log row; say so in the log
            log.exception("could not write the usage row")
        return row
