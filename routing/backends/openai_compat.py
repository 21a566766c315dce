"""The OpenAI-compatible route: one configured endpoint (OpenAI, Groq, LM Studio, llama.cpp,
vLLM, Ollama's ``/v1``...), spoken to with the official ``openai`` client.

The library's defaults are unsafe for a UI (600 s timeout, two retries with backoff), so the
client is built with explicit timeouts and bounded retries, and list/health use a copy with
short timeouts and no retries. Every library exception becomes a RouteError whose text never
contains the API key (servers sometimes echo a redacted key; we don't repeat theirs).

The library follows redirects and retries transport errors by default: its HTTP client is
built with ``follow_redirects=False`` and the app's hooks (``http_guard``), so a 3xx is an
error naming where it pointed, never a second request to another host, and the key goes
to this endpoint's host only. A key is withheld from a plain-http address of another
machine unless the user accepted that.

A stream that ends without a ``finish_reason`` is a failure: Ollama's ``/v1`` reports a
mid-stream error exactly that way (an empty delta, then end of stream, no ``[DONE]``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
import pydantic

from halext_desktop.routing.backends.health_report import healthy, unhealthy
from halext_desktop.routing.backends.host_key import HostKey, KeySource
from halext_desktop.routing.backends.http_errors import (
    cause_chain,
    connect_failure,
    netloc_of,
    one_line,
)
from halext_desktop.routing.backends.http_guard import (
    RedirectRefused,
    bind_authorization,
    is_plain_http_remote,
    redirect_error,
    refuse_redirects,
)
from halext_desktop.routing.errors import BUG_HINT, ErrorKind, RouteError
from halext_desktop.routing.netloc import classify_url
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.types import (
    BackendDelta,
    BackendDone,
    BackendEvent,
    BackendStarted,
    ChatMessage,
    ChatOptions,
    Health,
    Locality,
    ModelInfo,
)

log = logging.getLogger(__name__)

# Chat: connect fails fast; read is the longest gap between two chunks.
CHAT_TIMEOUT = openai.Timeout(120.0, connect=3.0)
# Listing and health: a healthy endpoint answers quickly.
META_TIMEOUT = openai.Timeout(5.0, connect=3.0)


class OpenAICompatBackend:
    """A route to one OpenAI-compatible endpoint, ``openai@<name>``.

    Args:
        name: the endpoint's name in settings (``groq``, ``lmstudio``...).
        base_url: the API root including its version path, e.g. ``https://api.groq.com/openai/v1``.
        api_key: the key from the SecretStore, or None for keyless local servers; or a
            callable returning it, called once, at the first request (``HostKey``).
        timeout: chat timeout (float seconds or ``openai.Timeout``; default read 120 s,
            connect 3 s).
        max_retries: retries of the library for connection errors, 408/409/429/5xx (default 1).
        meta_timeout: list/health timeout (default 5 s, connect 3 s; no retries).
        plain_http_ok: the user accepted sending the key over plain http to this host.

    Use it from one asyncio event loop and ``await aclose()`` when done.
    """

    kind = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: KeySource,
        *,
        timeout: float | openai.Timeout | None = None,
        max_retries: int = 1,
        meta_timeout: float | openai.Timeout | None = None,
        plain_http_ok: bool = False,
    ) -> None:
        self.name = name
        self.base_url = base_url.strip().rstrip("/")
        # Validates the endpoint name early (ModelRefError).
        self.route_id = ModelRef("openai", name, "probe").route_id
        self.netloc = netloc_of(self.base_url)
        self._locality = classify_url(self.base_url)
        self.plain_http = is_plain_http_remote(self.base_url)
        # Read at the first request (a provider may ask the keyring), not now.
        self._key = HostKey(api_key, self.base_url, plain_http_ok=plain_http_ok)
        self.chat_timeout = _as_timeout(timeout, CHAT_TIMEOUT)
        self.meta_timeout = _as_timeout(meta_timeout, META_TIMEOUT)
        self._max_retries = max_retries
        # Made at first use (and again after ``aclose``): a client costs an SSL context, and
        # clients belong to the event loop that used them.
        self._openai: openai.AsyncOpenAI | None = None
        self._openai_quick: openai.AsyncOpenAI | None = None

    @property
    def _client(self) -> openai.AsyncOpenAI:
        if self._openai is None:
            api_key = self._key.value
            # Local and LAN endpoints must never be sent through a proxy from the environment.
            http_client = openai.DefaultAsyncHttpx2Client(
                trust_env=self._locality is Locality.CLOUD,
                timeout=self.chat_timeout,
                follow_redirects=False,
                event_hooks={
                    "request": [
                        bind_authorization(self.base_url, f"Bearer {api_key}" if api_key else None)
                    ],
                    "response": [refuse_redirects],
                },
            )
            self._openai = openai.AsyncOpenAI(
                base_url=self.base_url,
                # The library insists on a key; keyless local servers get no header at all
                # (the request hook drops the placeholder).
                api_key=api_key or "none",
                max_retries=self._max_retries,
                timeout=self.chat_timeout,
                http_client=http_client,
            )
            self._openai_quick = None
        return self._openai

    @property
    def _quick(self) -> openai.AsyncOpenAI:
        if self._openai_quick is None or self._openai is None:
            self._openai_quick = self._client.with_options(max_retries=0, timeout=self.meta_timeout)
        return self._openai_quick

    def __repr__(self) -> str:
        return f"OpenAICompatBackend({self.route_id!r}, {self.base_url!r})"

    # ---- Backend protocol ---------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Models from ``GET /models`` (``data`` may be null: no models)."""
        try:
            await self._key.aresolve()
            page = await self._quick.models.list()
            entries = list(page.data or [])
        except Exception as exc:
            raise self._error(exc, op="list") from None
        return [
            ModelInfo(
                ref=ModelRef("openai", self.name, m.id),
                name=m.id,
                provider=self.name,
                source="openai",
                locality=self._locality,
                # Only what the listing says (some servers list capabilities): no guessing,
                # so an image is refused for a model not listed as taking them.
                capabilities=_listed_capabilities(m),
                extra={"owned_by": m.owned_by, "created": m.created},
            )
            for m in entries
            if m.id
        ]

    async def health(self) -> Health:
        """``GET /models`` with a short timeout and no retries. Never raises."""
        started = time.perf_counter()
        try:
            await self._key.aresolve()
            page = await self._quick.models.list()
            count = len(page.data or [])
        except Exception as exc:
            return unhealthy(self.route_id, self._error(exc, op="health"))
        latency = round((time.perf_counter() - started) * 1000)
        return healthy(self.route_id, f"{self.name} ({self.netloc})", count, latency)

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[BackendEvent, None]:
        """Stream one reply; see the Backend protocol. Closing this generator closes the
        HTTP response, so the server stops generating."""
        kwargs: dict[str, Any] = {}
        if options.json_schema is not None and options.json_mode != "prompt":
            # JSON mode is the widely supported subset; the schema itself travels in the prompt.
            kwargs["response_format"] = {"type": "json_object"}
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(options, name)
            if value is not None:
                kwargs[name] = value  # num_ctx has no /v1 parameter: the router notes it
        payload: list[Any] = [_message_payload(m) for m in messages]
        stream: openai.AsyncStream[Any] | None = None
        started = False
        finish_reason: str | None = None
        usage: Any = None
        answered: str | None = None
        try:
            await self._key.aresolve()
            stream = await self._client.chat.completions.create(
                model=model,
                messages=payload,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
            async for chunk in stream:
                if not started:
                    started = True
                    answered = chunk.model or model
                    yield BackendStarted(answered_model=answered, provider=self.name)
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        yield BackendDelta(text)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
            if finish_reason is None:
                # Ollama's /v1 (and proxies that die) end the stream without a finish chunk.
                raise RouteError(
                    ErrorKind.STREAM_DROPPED if started else ErrorKind.SERVER,
                    f"{self.netloc} ended the reply without finishing it",
                    "The server failed mid-reply; try again or check its log.",
                    route_id=self.route_id,
                )
            yield BackendDone(
                prompt_tokens=getattr(usage, "prompt_tokens", None),
                response_tokens=getattr(usage, "completion_tokens", None),
                exact_tokens=usage is not None,
                done_reason=finish_reason,
                answered_model=answered,
            )
        except Exception as exc:
            error = self._error(exc, model=model, started=started, op="chat")
            if (
                "response_format" in kwargs
                and not started
                and error.kind is ErrorKind.BAD_REQUEST
                and error.status in (400, 422)
                and re.search(r"format|schema|json", error.message, re.IGNORECASE)
            ):
                error = RouteError(
                    ErrorKind.FORMAT_REJECTED,
                    f"{self.netloc} does not accept JSON mode (HTTP {error.status})",
                    "Ask for no format; the assistants do so on their own.",
                    status=error.status,
                    route_id=self.route_id,
                )
            raise error from None
        finally:
            if stream is not None:
                await stream.close()

    def locality_of(self, model: str) -> Locality:
        """From the endpoint's host: LOCAL (loopback), SELF_HOSTED (private), else CLOUD."""
        return self._locality

    @property
    def has_key(self) -> bool:
        """An API key is sent with every request to this host. Reads the key."""
        return self._key.value is not None

    @property
    def key_withheld(self) -> bool:
        """A key was given but is not sent (plain http to another machine without the
        user's consent). Reads the key."""
        return self._key.withheld

    async def listed_locality(self, model: str) -> Locality | None:
        """This server answers ``model`` itself or fails; it never re-routes it: no I/O."""
        return self.locality_of(model)

    def may_poll(self) -> bool:
        """A configured host the user added: checking it in the background is expected."""
        return True

    async def context_length(self, model: str) -> int | None:
        """Unknown: the server does not say (the caller bounds the history by a default)."""
        return None

    async def aclose(self) -> None:
        """Close the HTTP client; the next request makes a new one."""
        client, self._openai, self._openai_quick = self._openai, None, None
        if client is not None:
            await client.close()

    # ---- helpers ----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        text = one_line(text)
        # The key is scrubbed from any server text we repeat; never logged or shown.
        secret = self._key.value if self._key.resolved else None
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
        return text

    def _server_text(self, exc: openai.APIStatusError) -> str:
        body = exc.body
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return self._scrub(body["message"])
        if isinstance(body, str):
            return self._scrub(body)
        return f"HTTP {exc.status_code}"

    def _error(
        self,
        exc: BaseException,
        *,
        model: str | None = None,
        started: bool = False,
        op: str = "chat",
    ) -> RouteError:
        """Translate any exception from the ``openai`` client into one specific RouteError."""
        if isinstance(exc, RouteError):
            return exc
        redirect = next((c for c in cause_chain(exc) if isinstance(c, RedirectRefused)), None)
        if redirect is not None:
            return redirect_error(redirect, self.route_id)
        where = self.netloc

        def err(
            kind: ErrorKind, message: str, hint: str = "", status: int | None = None
        ) -> RouteError:
            return RouteError(kind, message, hint, status=status, route_id=self.route_id)

        # Timeout before connection error: APITimeoutError subclasses APIConnectionError.
        if isinstance(exc, openai.APITimeoutError):
            if _caused_by(exc, httpx2.ConnectTimeout):
                return err(
                    ErrorKind.CONNECTION,
                    f"Timed out connecting to {where}",
                    "Check the address and your network connection.",
                )
            seconds = self.chat_timeout.read if op == "chat" else self.meta_timeout.read
            within = f" within {seconds:g} s" if seconds else ""
            return err(
                ErrorKind.TIMEOUT,
                f"No reply from {where}{within}",
                "The server may be overloaded or loading the model; try again.",
            )
        if isinstance(exc, openai.APIConnectionError):
            if started:
                return err(
                    ErrorKind.STREAM_DROPPED,
                    f"The connection to {where} dropped mid-reply",
                    "Try again; if it repeats, check the server.",
                )
            if _caused_by(exc, httpx2.ConnectError):
                message, cause = connect_failure(exc, where)
                hint = {
                    "refused": "is the server running, and is the port right?",
                    "dns": "Check the host name in the endpoint URL.",
                    "tls": "Check http:// versus https:// in the endpoint URL.",
                }.get(cause, "Check the endpoint URL and your network connection.")
                return err(ErrorKind.CONNECTION, message, hint)
            return err(
                ErrorKind.CONNECTION,
                f"{where} closed the connection without replying",
                "Check that the URL points at an OpenAI-compatible API.",
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            if self.key_withheld:
                return err(
                    ErrorKind.AUTH_FAILED,
                    f"{where} requires an API key (HTTP {exc.status_code}); the stored key was "
                    "not sent because the address is plain http:// to another machine",
                    "Use https://, or save the key again in Settings → Connections and accept "
                    "plain http for this endpoint",
                    exc.status_code,
                )
            if not self.has_key:
                return err(
                    ErrorKind.AUTH_FAILED,
                    f"{where} requires an API key (HTTP {exc.status_code})",
                    f"Add an API key for '{self.name}' in Settings.",
                    exc.status_code,
                )
            return err(
                ErrorKind.AUTH_FAILED,
                f"API key rejected by {where} (HTTP {exc.status_code})",
                f"Check the API key for '{self.name}' in Settings.",
                exc.status_code,
            )
        if isinstance(exc, openai.NotFoundError):
            # A JSON error object means the API answered "no such model"; a plain-text 404
            # (e.g. "404 page not found") means the URL is not an OpenAI-compatible API root.
            if op == "chat" and isinstance(exc.body, dict):
                return err(
                    ErrorKind.MODEL_NOT_FOUND,
                    f"model '{model}' not found on {where}",
                    "Pick another model from this endpoint's list.",
                    404,
                )
            return err(
                ErrorKind.BAD_REQUEST,
                f"{self.base_url} is not an OpenAI-compatible API root (HTTP 404)",
                "Check the URL: it usually ends in /v1.",
                404,
            )
        if isinstance(exc, openai.RateLimitError):
            return err(
                ErrorKind.BAD_REQUEST,
                f"Rate limited by {where}: {self._server_text(exc)}",
                "Wait a moment and try again, or check your plan's limits.",
                exc.status_code,
            )
        if isinstance(exc, openai.InternalServerError):
            return err(
                ErrorKind.SERVER,
                f"{where} failed: {self._server_text(exc)} (HTTP {exc.status_code})",
                "Try again later; the problem is on the server's side.",
                exc.status_code,
            )
        if isinstance(exc, openai.APIStatusError):
            return err(
                ErrorKind.BAD_REQUEST,
                f"{where} rejected the request: {self._server_text(exc)} (HTTP {exc.status_code})",
                "Check the model and its options for this endpoint.",
                exc.status_code,
            )
        bad_reply = (
            openai.APIResponseValidationError,
            json.JSONDecodeError,
            pydantic.ValidationError,
        )
        if isinstance(exc, bad_reply):
            return err(
                ErrorKind.SERVER,
                f"{where} sent a bad reply ({type(exc).__name__})",
                "Is this an OpenAI-compatible API? Check the URL.",
            )
        if isinstance(exc, openai.APIError):
            # An error event inside the stream.
            return err(
                ErrorKind.STREAM_DROPPED if started else ErrorKind.SERVER,
                f"{where} reported an error: {self._scrub(exc.message)}",
                "Try again; if it repeats, check the server.",
            )
        # The log keeps the traceback that the one-line message leaves out.
        log.error("unexpected error from %s", where, exc_info=exc)
        return err(
            ErrorKind.INTERNAL,
            f"Unexpected error talking to {where}: {type(exc).__name__}",
            BUG_HINT,
        )


def _listed_capabilities(model: Any) -> tuple[str, ...]:
    extra = getattr(model, "model_extra", None) or {}
    caps = extra.get("capabilities")
    if isinstance(caps, list):
        return tuple(c for c in caps if isinstance(c, str))
    return ()


def _message_payload(m: ChatMessage) -> dict[str, Any]:
    if not m.images:
        return {"role": m.role, "content": m.content}
    # Images travel as image_url content parts holding data: URLs (no remote URLs).
    parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}]
    for p in m.images:
        url = f"data:{p.mime};base64,{base64.b64encode(p.data).decode('ascii')}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": m.role, "content": parts}


def _as_timeout(value: float | openai.Timeout | None, default: openai.Timeout) -> openai.Timeout:
    if value is None:
        return default
    if isinstance(value, int | float):
        return openai.Timeout(float(value), connect=min(float(value), 3.0))
    return value


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(cur, kind) for cur in cause_chain(exc))
