"""The Ollama route: one configured Ollama server, spoken to with the official ``ollama`` client.

Why two HTTP clients: the ``ollama`` client takes one timeout for all calls, and a chat needs a
long read timeout (the first token waits for the model to load) while a model list or a health
check must fail fast. Chat and pull go through ``ollama.AsyncClient`` (a chat's stream is read
line by line from that client's own HTTP client, see ``ollama_chat_lines``: pydantic per
chunk cost a long reply more than the rest of the app's path); ``/api/version`` (which
the library does not wrap), ``/api/tags`` and ``/api/show`` go through a plain
``httpx.AsyncClient`` with short timeouts, parsed with the library's own pydantic types.
``/api/tags`` is read raw because the library drops ``remote_host``, which marks Ollama *cloud*
models (text leaves for ollama.com) — the cloud policy must see it.

Every library exception is translated to a RouteError (see ollama-protocol.md §5 for what the
client raises when), and a stopped stream is closed so the server stops generating.

Both clients refuse redirects and bind the API key to this one host (``http_guard``): the
``ollama`` client would otherwise follow a 307 to another machine with the whole prompt, and
it sends ``OLLAMA_API_KEY`` to every host it talks to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
import pydantic

from halext_desktop.routing.backends.health_report import healthy, unhealthy
from halext_desktop.routing.backends.host_key import HostKey, KeySource
from halext_desktop.routing.backends.http_errors import connect_failure, netloc_of, one_line
from halext_desktop.routing.backends.http_guard import (
    RedirectRefused,
    bind_authorization,
    is_plain_http_remote,
    redirect_error,
    refuse_redirects,
)
from halext_desktop.routing.backends.ollama_chat_lines import chat_body, chat_response, plain_text
from halext_desktop.routing.backends.ollama_import import ollama
from halext_desktop.routing.errors import BUG_HINT, ErrorKind, RouteError
from halext_desktop.routing.netloc import classify_url, host_of
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

DEFAULT_PORT = 11434
# Chat: connect fails fast, but a token may take long (model load, big prompt evaluation).
CHAT_TIMEOUT = httpx.Timeout(connect=3.0, read=120.0, write=10.0, pool=5.0)
# Listing, show, version: a healthy server answers in milliseconds.
META_TIMEOUT = httpx.Timeout(5.0, connect=3.0)

# gin's default body for an unknown route; the ollama client keeps only the text, so this is
# the one way to tell "wrong URL" from "model not found" (both are HTTP 404).
_GIN_404 = "404 page not found"


def normalize_ollama_url(url: str) -> str:
    """What the ``ollama`` client would connect to, spelled out: scheme and port made explicit
    the way ``ollama._client._parse_host`` does (bare host → ``http://host:11434``), no
    trailing slash."""
    url = (url or "").strip()
    if not url:
        return f"http://127.0.0.1:{DEFAULT_PORT}"
    if "://" not in url:
        if url.startswith(":"):
            url = "127.0.0.1" + url
        parts = urlsplit(f"http://{url}")
        netloc = parts.netloc if parts.port else f"{parts.netloc}:{DEFAULT_PORT}"
        url = f"http://{netloc}{parts.path}"
    return url.rstrip("/")


def _explicit_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _is_cloud_model_name(model: str) -> bool:
    """Ollama's cloud models are tagged ``…:cloud`` / ``…:<size>-cloud``."""
    tag = model.rsplit(":", 1)[1] if ":" in model.rsplit("/", 1)[-1] else ""
    return tag == "cloud" or tag.endswith("-cloud")


class OllamaBackend:
    """A route to one Ollama server (``ollama`` for the default host, ``ollama@<name>``).

    Args:
        name: the host's name in settings (used in ``ollama@<name>`` when not the default).
        base_url: the server root, e.g. ``http://127.0.0.1:11434`` (no ``/v1``).
        is_default: the first configured host answers ``ollama/<model>`` references.
        timeout: chat/pull timeouts (default connect 3 s, read 120 s — the read timeout is the
            longest gap between two tokens, model load included).
        meta_timeout: list/show/version timeouts (default 5 s, connect 3 s).
        api_key: this host's API key (an Ollama behind an authenticating proxy, or
            ollama.com), sent as ``Authorization: Bearer`` to this host and nowhere else;
            or a callable returning it, called once, at the first request (``HostKey``).
        plain_http_ok: the user accepted sending the key over plain http to this host
            (without it, a key is withheld from ``http://`` addresses of other machines).
        transport: an httpx transport for both clients (tests).

    Use it from one asyncio event loop (its HTTP connection pools belong to that loop), and
    ``await aclose()`` when done.
    """

    kind = "ollama"

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        is_default: bool,
        timeout: httpx.Timeout | None = None,
        meta_timeout: httpx.Timeout | None = None,
        api_key: KeySource = None,
        plain_http_ok: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = normalize_ollama_url(base_url)
        self.is_default = is_default
        self._ref_host = None if is_default else name
        # Validates the host name early (ModelRefError) instead of at the first model listed.
        self.route_id = ModelRef("ollama", self._ref_host, "probe").route_id
        self.netloc = netloc_of(self.base_url)
        # An Ollama server is the user's own machine or server, never a third-party provider.
        where = classify_url(self.base_url)
        self._locality = Locality.LOCAL if where is Locality.LOCAL else Locality.SELF_HOSTED
        self.chat_timeout = timeout or CHAT_TIMEOUT
        self.meta_timeout = meta_timeout or META_TIMEOUT
        # Local and LAN addresses must never be sent through a proxy from the environment.
        trust_env = where is Locality.CLOUD
        self.plain_http = is_plain_http_remote(self.base_url)
        # Read at the first request (a provider may ask the keyring), not now.
        self._key = HostKey(api_key, self.base_url, plain_http_ok=plain_http_ok)
        self._hooks_made: dict[str, list[Any]] | None = None
        self._trust_env = trust_env
        self._transport = transport
        # Made at first use (and again after ``aclose``): building an HTTP client costs
        # milliseconds (an SSL context each), and a command may never talk to this host.
        self._chat_client: ollama.AsyncClient | None = None
        self._meta_client: httpx.AsyncClient | None = None
        self._remote_models: set[str] = set()
        self._details: dict[str, ModelInfo] = {}

    def __repr__(self) -> str:
        return f"OllamaBackend({self.route_id!r}, {self.base_url!r})"

    @property
    def _hooks(self) -> dict[str, list[Any]]:
        """The guards of every client: this host's key only (read now if it was not yet),
        every 3xx refused."""
        if self._hooks_made is None:
            key = self._key.value
            self._hooks_made = {
                # Sets this host's key, and strips the one the library adds from OLLAMA_API_KEY.
                "request": [bind_authorization(self.base_url, f"Bearer {key}" if key else None)],
                "response": [refuse_redirects],
            }
        return self._hooks_made

    async def read_key(self) -> None:
        """Read this host's key now, off the event loop, unless it was read already (a
        keyring may take a while to answer; ``new_http_client`` would read it in place)."""
        if not self._key.resolved:
            await self._key.aresolve()

    @property
    def key_withheld(self) -> bool:
        """A key was given but is not sent (plain http without consent). Reads the key."""
        return self._key.withheld

    def new_http_client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        """A fresh client for this host with the same guards as the backend's own (this
        host's key only, no proxy for local addresses, every 3xx refused as RedirectRefused,
        which ``translate_error`` words). For callers that need their own timeouts or event
        loop, such as model management."""
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            trust_env=self._trust_env,
            follow_redirects=False,
            event_hooks=self._hooks,
            headers={"Accept": "application/json"},
            **self._tls(),
        )

    def _tls(self) -> dict[str, Any]:
        """For a plain-http host: a TLS context that trusts nothing, instead of loading the
        CA bundle for connections this client never makes (it speaks only to this http://
        address and follows no redirect; were TLS ever attempted, it would fail closed)."""
        return {"verify": _no_tls()} if self.base_url.startswith("http://") else {}

    def _chat(self) -> ollama.AsyncClient:
        if self._chat_client is None:
            self._chat_client = ollama.AsyncClient(
                host=self.base_url,
                timeout=self.chat_timeout,
                trust_env=self._trust_env,
                follow_redirects=False,
                event_hooks=self._hooks,
                transport=self._transport,
                **self._tls(),
            )
        return self._chat_client

    def _meta(self) -> httpx.AsyncClient:
        if self._meta_client is None:
            self._meta_client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.meta_timeout,
                trust_env=self._trust_env,
                follow_redirects=False,
                event_hooks=self._hooks,
                headers={"Accept": "application/json"},
                transport=self._transport,
                **self._tls(),
            )
        return self._meta_client

    # ---- Backend protocol ---------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Installed models (``/api/tags``); raises RouteError when the server cannot be asked."""
        try:
            data = await self._get_json("GET", "/api/tags")
            parsed = ollama.ListResponse.model_validate(data)
        except Exception as exc:
            raise self._error(exc, op="list") from None
        raw_entries = data.get("models") or []
        models: list[ModelInfo] = []
        remote: set[str] = set()
        for entry, raw in zip(parsed.models, raw_entries, strict=False):
            if not entry.model:
                continue
            raw = raw if isinstance(raw, dict) else {}
            remote_host = raw.get("remote_host")
            if remote_host or _is_cloud_model_name(entry.model):
                remote.add(entry.model)
            raw_details = raw.get("details")
            ctx = raw_details.get("context_length") if isinstance(raw_details, dict) else None
            caps = raw.get("capabilities")
            details = entry.details
            models.append(
                ModelInfo(
                    ref=ModelRef("ollama", self._ref_host, entry.model),
                    name=entry.model,
                    provider="ollama",
                    source="ollama",
                    locality=self.locality_of(entry.model) if not remote_host else Locality.CLOUD,
                    size_bytes=int(entry.size) if entry.size is not None else None,
                    context_length=ctx if isinstance(ctx, int) else None,
                    family=details.family if details else None,
                    quantization=quantization_of(details.quantization_level if details else None),
                    parameter_size=details.parameter_size if details else None,
                    capabilities=(
                        tuple(caps)
                        if isinstance(caps, list)
                        else _guess_capabilities(entry.model, details.family if details else None)
                    ),
                    extra={
                        "digest": entry.digest,
                        "modified_at": entry.modified_at.isoformat() if entry.modified_at else None,
                        **({"remote_host": remote_host} if remote_host else {}),
                    },
                )
            )
        self._remote_models = remote
        return models

    async def model_details(self, model: str) -> ModelInfo:
        """One model with what only ``/api/show`` knows: context length and capabilities."""
        if model in self._details:
            return self._details[model]
        try:
            data = await self._get_json("POST", "/api/show", json={"model": model})
            shown = ollama.ShowResponse.model_validate(data)
        except Exception as exc:
            raise self._error(exc, model=model, op="show") from None
        info = dict(shown.modelinfo or {})
        arch = info.get("general.architecture")
        ctx = info.get(f"{arch}.context_length") if arch else None
        num_ctx = _num_ctx(shown.parameters)
        details = shown.details
        result = ModelInfo(
            ref=ModelRef("ollama", self._ref_host, model),
            name=model,
            provider="ollama",
            source="ollama",
            locality=self.locality_of(model),
            context_length=ctx if isinstance(ctx, int) else None,
            family=details.family if details else None,
            quantization=quantization_of(details.quantization_level if details else None),
            parameter_size=details.parameter_size if details else None,
            capabilities=tuple(shown.capabilities or ()),
            extra={
                **({"architecture": arch} if arch else {}),
                **({"num_ctx": num_ctx} if num_ctx else {}),
            },
        )
        self._details[model] = result
        return result

    async def context_length(self, model: str) -> int | None:
        """The context the model runs with: its Modelfile's ``num_ctx`` when it sets one,
        else the length it was trained for (``/api/show``, asked once per model). None when
        the server cannot be asked."""
        try:
            info = await self.model_details(model)
        except RouteError:
            return None
        num_ctx = info.extra.get("num_ctx")
        return num_ctx if isinstance(num_ctx, int) else info.context_length

    async def show(self, model: str) -> dict[str, Any]:
        """The raw ``/api/show`` object (license, template, model_info...)."""
        try:
            data = await self._get_json("POST", "/api/show", json={"model": model})
        except Exception as exc:
            raise self._error(exc, model=model, op="show") from None
        return data

    async def health(self) -> Health:
        """``/api/version`` plus the model count. Never raises."""
        started = time.perf_counter()
        try:
            data = await self._get_json("GET", "/api/version")
            latency = round((time.perf_counter() - started) * 1000)
            version = data.get("version")
            if not isinstance(version, str):
                raise json.JSONDecodeError("no version field", json.dumps(data)[:80], 0)
            tags = await self._get_json("GET", "/api/tags")
            count = len(tags.get("models") or [])
        except Exception as exc:
            return unhealthy(self.route_id, self._error(exc, op="health"))
        return healthy(self.route_id, f"Ollama {version}", count, latency, version=version)

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[BackendEvent, None]:
        """Stream one reply; see the Backend protocol. Closing this generator closes the HTTP
        stream, so Ollama stops generating."""
        kwargs: dict[str, Any] = {}
        if options.json_schema is not None and options.json_mode != "prompt":
            kwargs["format"] = options.json_schema if options.json_mode == "schema" else "json"
        native = {
            "temperature": options.temperature,
            "top_p": options.top_p,
            "num_ctx": options.num_ctx,
            "num_predict": options.max_tokens,
            "seed": options.seed,
        }
        if any(v is not None for v in native.values()):
            kwargs["options"] = {k: v for k, v in native.items() if v is not None}
        if not model:
            # The library's request model refuses it before sending; so do we.
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                "Invalid request for Ollama: the model name is empty",
                "Check the model name.",
                route_id=self.route_id,
            )
        body = chat_body(model, messages, kwargs)
        response: httpx.Response | None = None
        lines: AsyncIterator[str] | None = None
        started = False
        if not self._key.resolved:
            await self._key.aresolve()  # the first request: its key, off the loop
        try:
            # The ``ollama`` client's own HTTP client (its headers, timeouts and guards),
            # read here line by line: see ollama_chat_lines for why.
            http = self._chat()._client
            request = http.build_request("POST", "/api/chat", json=body)
            response = await http.send(request, stream=True)
            if not response.is_success:
                await response.aread()
                raise ollama.ResponseError(response.text, response.status_code)
            lines = response.aiter_lines()
            async for line in lines:
                part = json.loads(line)
                text = plain_text(part)
                if text is not None:
                    # The hot path: a chunk of text, every line but the last.
                    if not started:
                        started = True
                        yield BackendStarted(
                            answered_model=part.get("model") or model, provider="ollama"
                        )
                    if text:
                        yield BackendDelta(text)
                    continue
                full = chat_response(part, line)
                if not started:
                    started = True
                    yield BackendStarted(answered_model=full.model or model, provider="ollama")
                # The final (done) line may carry the last piece of text: always append it.
                text = full.message.content
                if text:
                    yield BackendDelta(text)
                if full.done:
                    done = BackendDone(
                        prompt_tokens=full.prompt_eval_count,
                        response_tokens=full.eval_count,
                        exact_tokens=True,
                        done_reason=full.done_reason,
                        answered_model=full.model,
                        eval_duration_ns=full.eval_duration,
                    )
                    # Read the response to its end (the chunked body's last bytes follow the
                    # done line at once): a response closed unread takes its connection with
                    # it, and the next request would pay a new TCP (and TLS) handshake.
                    await _drain(lines)
                    yield done
                    return
            raise RouteError(
                ErrorKind.STREAM_DROPPED if started else ErrorKind.SERVER,
                f"Ollama at {self.netloc} ended the reply without its final 'done' line",
                "Try again; if it repeats, check the Ollama server log.",
                route_id=self.route_id,
            )
        except Exception as exc:
            raise self._error(
                exc,
                model=model,
                started=started,
                op="chat",
                asked_format="format" in kwargs,
            ) from None
        finally:
            try:
                if lines is not None:
                    # Stopped mid-reply: httpx's line reader is left at a yield, not finished.
                    await lines.aclose()  # type: ignore[attr-defined]
            finally:
                if response is not None:
                    # Without this the connection stays open and Ollama keeps generating.
                    await response.aclose()

    def locality_of(self, model: str) -> Locality:
        """LOCAL or SELF_HOSTED from the base URL — CLOUD for Ollama cloud models, which the
        server forwards to ollama.com."""
        if model in self._remote_models or _is_cloud_model_name(model):
            return Locality.CLOUD
        return self._locality

    @property
    def has_key(self) -> bool:
        """An API key is sent with every request to this host. Reads the key."""
        return self._key.value is not None

    async def listed_locality(self, model: str) -> Locality | None:
        """This server answers ``model`` itself or fails; it never re-routes it: no I/O."""
        return self.locality_of(model)

    def may_poll(self) -> bool:
        """A configured host the user added: checking it in the background is expected."""
        return True

    async def aclose(self) -> None:
        """Close the HTTP clients; the next request makes new ones (for another event
        loop, say: clients belong to the loop that used them)."""
        chat, self._chat_client = self._chat_client, None
        meta, self._meta_client = self._meta_client, None
        if chat is not None:
            await chat.close()
        if meta is not None:
            await meta.aclose()

    # ---- for model management (routing/backends/ollama_models.py makes its own requests) --

    def translate_error(
        self, exc: BaseException, *, model: str | None = None, op: str = "show"
    ) -> RouteError:
        """The RouteError a failed request to this host means (refused, timed out...)."""
        return self._error(exc, model=model, op=op)

    def forget_details(self, model: str) -> None:
        """Drop what ``model_details`` cached for ``model``: a pull or delete changed it."""
        self._details.pop(model, None)

    # ---- helpers ----------------------------------------------------------------------------

    async def _get_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if not self._key.resolved:
            await self._key.aresolve()
        response = await self._meta().request(method, path, **kwargs)
        if response.status_code >= 400:
            # Same shape as the library's errors, so one translation covers both clients.
            raise ollama.ResponseError(response.text, response.status_code)
        data = response.json()
        if not isinstance(data, dict):
            raise json.JSONDecodeError("expected a JSON object", response.text[:80], 0)
        return data

    def _error(
        self,
        exc: BaseException,
        *,
        model: str | None = None,
        started: bool = False,
        op: str = "chat",
        asked_format: bool = False,
    ) -> RouteError:
        """Translate any exception from the clients into one specific RouteError.
        ``asked_format``: the request carried a ``format`` (structured output), so a
        rejection that names it is a format error, not a model or memory problem."""
        if isinstance(exc, RouteError):
            return exc
        if isinstance(exc, RedirectRefused):
            return redirect_error(exc, self.route_id)
        where = self.netloc

        def err(
            kind: ErrorKind, message: str, hint: str = "", status: int | None = None
        ) -> RouteError:
            return RouteError(kind, message, hint, status=status, route_id=self.route_id)

        if isinstance(exc, ollama.ResponseError):
            status, text = exc.status_code, one_line(exc.error)
            if status in (401, 403):
                return self._auth_error(status, text)
            if asked_format and not started and status in (-1, 400, 422) and _about_format(text):
                return err(
                    ErrorKind.FORMAT_REJECTED,
                    f"Ollama on {where} does not accept the requested output format: {text}",
                    "Ask for JSON mode or no format; the assistants do so on their own.",
                    status if status > 0 else None,
                )
            if status == -1:
                if op == "pull":
                    return err(
                        ErrorKind.MODEL_NOT_FOUND
                        if "manifest" in text
                        else ErrorKind.STREAM_DROPPED,
                        f"Pulling '{model}' on {where} failed: {text}",
                        "Check the model name and the Ollama server's internet access.",
                    )
                if not started:
                    # An error line before any text: the model did not start (out of
                    # memory while loading, a bad option), nothing was cut off.
                    return err(
                        ErrorKind.SERVER,
                        f"Ollama on {where} could not answer: {text}",
                        "Check the Ollama server log (a model too big for memory, a bad option).",
                    )
                return err(
                    ErrorKind.STREAM_DROPPED,
                    f"Ollama on {where} failed mid-reply: {text}",
                    "Try again; if it repeats, check the Ollama server log (memory, GPU).",
                )
            if status == 404 and text == _GIN_404:
                hint = (
                    "remove /v1: Ollama's native API is at the server root"
                    if urlsplit(self.base_url).path.rstrip("/").endswith("/v1")
                    else "Check the URL: it should be the Ollama server root, e.g. http://127.0.0.1:11434"
                )
                return err(
                    ErrorKind.BAD_REQUEST,
                    f"{self.base_url} is not an Ollama API root (404 page not found)",
                    hint,
                    status,
                )
            if status == 404:
                name = model or "?"
                return err(
                    ErrorKind.MODEL_NOT_FOUND,
                    f"model '{name}' is not installed on {where}",
                    f"Run `ollama pull {name}` on that machine, or pick another model.",
                    status,
                )
            if status == 503:
                return err(
                    ErrorKind.SERVER,
                    f"Ollama on {where} is busy: {text}",
                    "Wait for other requests to finish, then try again.",
                    status,
                )
            if 400 <= status < 500:
                return err(
                    ErrorKind.BAD_REQUEST,
                    f"Ollama on {where} rejected the request: {text} (HTTP {status})",
                    "Check the model and its options.",
                    status,
                )
            return err(
                ErrorKind.SERVER,
                f"Ollama on {where} failed: {text} (HTTP {status})",
                "Check the Ollama server log; restarting `ollama serve` often helps.",
                status,
            )
        # The library turns ConnectError into a bare builtin ConnectionError (non-streaming calls);
        # its subclasses (reset, broken pipe) are drops, handled below with OSError.
        if (
            isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            or type(exc) is ConnectionError
        ):
            message, cause = connect_failure(exc, where)
            return err(ErrorKind.CONNECTION, message, self._connect_hint(cause))
        if isinstance(exc, httpx.TimeoutException):
            seconds = self.chat_timeout.read if op in ("chat", "pull") else self.meta_timeout.read
            within = f" within {seconds:g} s" if seconds else ""
            return err(
                ErrorKind.TIMEOUT,
                f"No reply from Ollama on {where}{within}",
                "The model may still be loading or the machine is overloaded; try again.",
            )
        if isinstance(exc, httpx.HTTPError | OSError):
            if started:
                return err(
                    ErrorKind.STREAM_DROPPED,
                    f"The connection to Ollama on {where} dropped mid-reply",
                    "Ollama may have crashed or restarted; try again.",
                )
            return err(
                ErrorKind.CONNECTION,
                f"Ollama on {where} closed the connection without replying",
                "Check that this address is an Ollama server and that it is healthy.",
            )
        if isinstance(exc, pydantic.ValidationError) and exc.title.endswith("Request"):
            # Raised by the client before sending (e.g. an empty model name).
            return err(
                ErrorKind.BAD_REQUEST,
                f"Invalid request for Ollama: {one_line(str(exc.errors()[0].get('msg', '')))}",
                "Check the model name.",
            )
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return err(
                ErrorKind.SERVER,
                f"Ollama on {where} sent a bad reply ({type(exc).__name__})",
                "Is this an Ollama server? Check the URL and update Ollama.",
            )
        # The log keeps the traceback that the one-line message leaves out.
        log.error("unexpected error from Ollama on %s", where, exc_info=exc)
        return err(
            ErrorKind.INTERNAL,
            f"Unexpected error talking to Ollama on {where}: {type(exc).__name__}",
            BUG_HINT,
        )

    def _auth_error(self, status: int, text: str) -> RouteError:
        """401/403: an authenticating proxy or ollama.com wants a key (or another one)."""
        if self.key_withheld:
            message = (
                f"Ollama on {self.netloc} requires an API key (HTTP {status}); the stored key "
                "was not sent because the address is plain http:// to another machine"
            )
            hint = (
                "Use https://, or save the key again in Settings → Connections and accept "
                "plain http for this host"
            )
        elif self.has_key:
            message = f"Ollama on {self.netloc} rejected the API key (HTTP {status}): {text}"
            hint = f"Check the API key of the Ollama host '{self.name}' in Settings → Connections"
        else:
            message = f"Ollama on {self.netloc} requires an API key (HTTP {status})"
            hint = f"Add an API key for the Ollama host '{self.name}' in Settings → Connections"
        return RouteError(
            ErrorKind.AUTH_FAILED, message, hint, status=status, route_id=self.route_id
        )

    def _connect_hint(self, cause: str) -> str:
        host = host_of(self.base_url)
        if host in ("0.0.0.0", "::"):
            return (
                f"{host} is the server's bind address (OLLAMA_HOST); connect to 127.0.0.1 "
                "or the machine's LAN address instead"
            )
        parts = urlsplit(self.base_url)
        if cause == "refused" and parts.scheme == "http" and _explicit_port(parts) is None:
            return (
                "the URL names no port, so port 80 was used; Ollama listens on 11434 "
                f"(e.g. http://{netloc_of(self.base_url).rsplit(':', 1)[0]}:11434)"
            )
        if cause == "refused":
            if self._locality is Locality.LOCAL:
                return "is `ollama serve` running?"
            return (
                "is `ollama serve` running there, with OLLAMA_HOST=0.0.0.0 so it accepts "
                "connections from the network?"
            )
        if cause == "dns":
            return "Check the host name, or use the machine's IP address."
        if cause == "tls":
            return (
                "Ollama speaks plain HTTP unless a proxy adds TLS: try http:// instead of https://."
            )
        return "Check the address and that the machine is on and reachable."


_FORMAT_WORDS = re.compile(r"\bformat\b|schema|json", re.IGNORECASE)


def _about_format(text: str) -> bool:
    """A server's error names the ``format`` field (``invalid format…``, Go's ``cannot
    unmarshal object into Go struct field ChatRequest.format of type string``)."""
    return bool(_FORMAT_WORDS.search(text))


# What servers put in ``quantization_level`` when a model has none to report.
_NO_QUANTIZATION = frozenset({"", "none", "unknown", "n/a", "na", "null", "-", "?"})


def quantization_of(value: object) -> str | None:
    """A model's quantization as a server reports it (``Q4_K_M``, ``F16``), or None when
    it reports none (empty, ``none``, ``unknown``…): nothing to show, not a tag."""
    if not isinstance(value, str) or value.strip().lower() in _NO_QUANTIZATION:
        return None
    return value.strip()


_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def _num_ctx(parameters: str | None) -> int | None:
    """``num_ctx`` from ``/api/show``'s ``parameters`` (the Modelfile's PARAMETER lines)."""
    found = _NUM_CTX.search(parameters or "")
    return int(found.group(1)) if found else None


_NO_TLS: ssl.SSLContext | None = None


def _no_tls() -> ssl.SSLContext:
    """One TLS client context that verifies certificates and trusts no authority."""
    global _NO_TLS
    if _NO_TLS is None:
        _NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _NO_TLS


# What may follow the done line before the stream is given up (and its connection with it):
# nothing, normally. A server that goes on is not waited for.
_DRAIN_LINES = 4
_DRAIN_SECONDS = 1.0


async def _drain(stream: AsyncIterator[Any]) -> None:
    """Read what is left of a finished stream (normally only the end of its body), so httpx
    returns the connection to its pool. Never raises: the reply is already complete."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            extra = 0
            async for _part in stream:
                extra += 1
                if extra >= _DRAIN_LINES:
                    break
    except Exception:  # TimeoutError too: the connection is simply not reused
        log.debug("the stream went on after its done line; its connection is dropped")


def _guess_capabilities(model: str, family: str | None) -> tuple[str, ...]:
    """Older servers' /api/tags has no ``capabilities``; /api/show per model would cost a
    request each. BERT-family models and ``*embed*`` names are embedding models (nomic-embed-text,
    mxbai-embed-large, all-minilm), which cannot chat: say so, so the picker can grey them out."""
    name = model.lower()
    fam = (family or "").lower()
    if "bert" in fam or "embed" in name or name.startswith("all-minilm"):
        return ("embedding",)
    return ()
