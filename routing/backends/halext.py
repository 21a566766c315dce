"""The halext route: the halext-org API (halext-api.md) over one ``httpx.AsyncClient``.

What this backend owns:

- Sign-in: form login to ``/token``; the JWT goes to the CredentialStore, the password too
  only when the user chose "remember me". The token's ``exp`` (read unverified) drives a
  proactive re-login 60 s before expiry, and a 401 triggers one re-login and one retry,
  both only when a password is at hand (remembered, or given for this process). Otherwise
  the caller gets ``SIGNED_OUT``.
- Models: ``GET /ai/models`` mapped to ModelInfo (cloud = source openai/gemini).
- Chat: ``POST /ai/chat/stream`` parsed with the exact-reconstruction rule
  (routing/halext_stream.py), the answering model from ``X-Halext-AI-Model``, and the server's
  silent mock fallback detected from the body.
- Errors: every httpx/JSON failure becomes a RouteError with one specific line and a hint.
- What the switches promise: no redirect is followed (a 3xx is a REDIRECT error naming its
  ``Location``); the token never goes to another origin; over plain ``http://`` to another
  machine no password or token is sent unless the user accepted it (``plain_http_ok``);
  ``listed_locality`` tells the router, from the server's current ``/ai/models``, whether an
  id is listed and where it goes (the server answers an id it cannot resolve with its
  default model, which may be a cloud one).

Secrets never appear in messages, reprs or logs: errors are raised ``from None`` so they do
not drag along an httpx request (whose headers hold the token).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx

from halext_desktop.routing.backends.base import CredentialStore
from halext_desktop.routing.backends.http_errors import connect_failure, netloc_of, one_line
from halext_desktop.routing.backends.http_guard import (
    RedirectRefused,
    authorization_only_to,
    insecure_error,
    is_plain_http_remote,
    redirect_error,
    refuse_redirects,
)
from halext_desktop.routing.errors import BUG_HINT, ErrorKind, RouteError
from halext_desktop.routing.halext_stream import (
    HalextStreamParser,
    StreamFormatError,
    ends_with_mock_reply,
)
from halext_desktop.routing.jwt_claims import token_expiry, token_subject
from halext_desktop.routing.netloc import classify_url
from halext_desktop.routing.policy import halext_model_is_cloud
from halext_desktop.routing.refs import ModelRef, ModelRefError, canonical_model_id
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

ROUTE_ID = "halext"
MOCK_MODEL = "mock:llama3.1"
# Re-login this long before the token's exp, so a request never starts with a token that
# expires while in flight.
REFRESH_MARGIN_S = 60.0
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=5.0)
# Upstream streams may take up to 120 s between chunks (its own provider timeout).
STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=10.0, pool=5.0)
# Provider keys whose models run on hardware the halext operator controls (§4).
_SELF_HOSTED_KEYS = frozenset({"ollama", "ollama-local", "client", "openwebui", "mock"})
# How long a /ai/models answer vouches for an id before a chat with cloud providers
# disabled asks again (an id missing from it is always asked again). Short on purpose: it
# covers a burst (regenerate, an assistant, a fallback), not the next turn — a node an admin
# deactivates mid-conversation must be noticed before the next prompt leaves, or the server
# re-routes that prompt to its default model, which may be OpenAI.
LISTING_TTL_S = 5.0
_SIGN_IN_HINT = "Sign in from Settings → Connections, or run `halext-desktop login`"
_SERVER_HINT = "The halext server or its proxy failed; try again, or tell the server's admin"


def token_secret_name(base_url: str) -> str:
    """CredentialStore name of the JWT for ``base_url``."""
    return f"halext-token:{base_url}"


def password_secret_name(base_url: str, username: str) -> str:
    """CredentialStore name of a remembered password."""
    return f"halext-password:{base_url}:{username}"


class HalextBackend:
    """A Backend for one halext server.

    Args:
        base_url: the API base, ending in ``/api`` (e.g. ``https://org.halext.org/api``).
        credentials: where the token (and a remembered password) live.
        username: the user to re-login as (settings, or HALEXT_USERNAME).
        remember: the "remember me" choice the app last saved (login's default).
        session_password: a password for this process only (HALEXT_PASSWORD); never stored.
        timeout: overrides both the request and the stream timeouts (tests).
        clock: Unix seconds, compared with the token's ``exp``.
        transport: an httpx transport (tests).
        plain_http_ok: the user accepted that the password and token cross plain http to
            this server (a plain-http address of another machine is refused without it);
            a callable is asked before every such request, so a consent given a moment ago
            counts at once.
        monotonic: seconds for the listing cache's age (tests).

    Attributes:
        last_default_model_id: ``default_model_id`` of the last ``/ai/models`` answer.
        plain_http: the address is plain http:// to another machine.
    """

    kind = "halext"
    route_id = ROUTE_ID

    def __init__(
        self,
        base_url: str,
        credentials: CredentialStore,
        *,
        username: str = "",
        remember: bool = False,
        session_password: str | None = None,
        timeout: httpx.Timeout | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        plain_http_ok: bool | Callable[[], bool] = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.plain_http = is_plain_http_remote(self.base_url)
        self._plain_http_ok = plain_http_ok
        self._monotonic = monotonic
        # canonical id -> where the text goes, from the last /ai/models; and when it came.
        self._listed: dict[str, Locality] = {}
        self._listed_at: float | None = None
        self._credentials = credentials
        self._username = username
        self.remember = remember
        self._session_password = session_password or None
        self._timeout = timeout or DEFAULT_TIMEOUT
        self._stream_timeout = timeout or STREAM_TIMEOUT
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._token_cache: str | None = None
        self._session_expired = False  # a token we held was refused and forgotten
        self._login_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.last_default_model_id: str | None = None
        self._hostport = netloc_of(self.base_url)

    def __repr__(self) -> str:
        return f"HalextBackend({self.base_url!r}, username={self._username!r})"

    # ---- plumbing ---------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        # Created on first use, inside the loop that uses it (pools belong to one loop).
        if self._client is None:
            # Never send a loopback/LAN address through a proxy from the environment.
            local = classify_url(self.base_url) is not Locality.CLOUD
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                trust_env=not local,
                follow_redirects=False,
                transport=self._transport,
                headers={"Accept": "application/json"},
                event_hooks={
                    # Requests set their own token; this only removes it from any request
                    # to another origin.
                    "request": [authorization_only_to(self.base_url)],
                    "response": [refuse_redirects],
                },
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _check_transport_security(self, what: str) -> None:
        """Refuse, before any I/O, to send ``what`` over plain http to another machine
        without the user's consent."""
        if not self.plain_http:
            return
        ok = self._plain_http_ok() if callable(self._plain_http_ok) else self._plain_http_ok
        if not ok:
            raise insecure_error(self.base_url, what, ROUTE_ID)

    def may_poll(self) -> bool:
        """Whether unattended checks (start-up, the status bar's timer) may contact this
        server: only once the user signed in to it (a token is held, or a password is at
        hand). A fresh install that only wants local models never contacts halext."""
        return bool(self._token() or self._password())

    def _login_lock(self) -> asyncio.Lock:
        # One lock per running loop: an asyncio.Lock must not be shared across loops.
        loop = asyncio.get_running_loop()
        lock = self._login_locks.get(loop)
        if lock is None:
            lock = self._login_locks[loop] = asyncio.Lock()
        return lock

    # ---- secrets ----------------------------------------------------------------------

    @property
    def username(self) -> str:
        return self._username

    def _token(self) -> str | None:
        # Only a token is cached: while there is none, the store is asked again, so a
        # sign-in by another process (the CLI) is picked up without a restart.
        if self._token_cache is None:
            try:
                self._token_cache = self._credentials.get(token_secret_name(self.base_url))
            except Exception:  # a broken keyring means "no token", not a crash
                log.warning("could not read the halext token from the credential store")
        return self._token_cache

    def _store_token(self, token: str | None) -> None:
        self._token_cache = token
        if token is not None:
            self._session_expired = False
        name = token_secret_name(self.base_url)
        try:
            if token is None:
                self._credentials.delete(name)
            else:
                self._credentials.set(name, token)
        except Exception:  # keep working for this session even if the keyring refuses
            log.warning("could not update the halext token in the credential store")

    def _password(self) -> str | None:
        if self._session_password:
            return self._session_password
        if not self._username:
            return None
        try:
            return self._credentials.get(password_secret_name(self.base_url, self._username))
        except Exception:
            log.warning("could not read a remembered halext password")
            return None

    def _forget_password(self, username: str) -> None:
        if not username:
            return
        try:
            self._credentials.delete(password_secret_name(self.base_url, username))
        except Exception:
            log.warning("could not delete a remembered halext password")

    def signed_in_user(self) -> str | None:
        """The ``sub`` of the held token while it has not expired by our clock; no I/O."""
        token = self._token()
        if not token:
            return None
        exp = token_expiry(token)
        if exp is not None and exp <= self._clock():
            return None
        return token_subject(token)

    # ---- authentication ---------------------------------------------------------------

    async def login(self, username: str, password: str, *, remember: bool) -> str:
        """Form-login to ``/token``; stores the token (and the password if ``remember``).

        Returns the signed-in username (the token's ``sub``). Raises RouteError
        (AUTH_FAILED for wrong credentials).
        """
        token = await self._request_token(username, password)
        self._username = username
        self.remember = remember
        self._store_token(token)
        if remember:
            try:
                self._credentials.set(password_secret_name(self.base_url, username), password)
            except Exception:
                log.warning("could not remember the halext password in the credential store")
        else:
            self._forget_password(username)  # unticking "remember me" forgets the old one
        return token_subject(token) or username

    async def _request_token(self, username: str, password: str) -> str:
        self._check_transport_security("Your halext password")
        with self._translate("/token"):
            resp = await self._http().post(
                self._url("/token"), data={"username": username, "password": password}
            )
        if resp.status_code == 401:
            raise RouteError(
                ErrorKind.AUTH_FAILED,
                "Incorrect username or password",
                "Check them and sign in again (the username or the email works)",
                status=401,
                route_id=ROUTE_ID,
            )
        if resp.status_code != 200:
            raise self._http_error(resp, "/token")
        body = self._json_of(resp, "/token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or token_subject(token) is None:
            raise RouteError(
                ErrorKind.SERVER,
                "halext answered the sign-in without a usable token",
                _SERVER_HINT,
                status=resp.status_code,
                route_id=ROUTE_ID,
            )
        return token

    async def logout(self) -> None:
        """Forget the token and any remembered password (halext has no logout endpoint)."""
        sub = token_subject(self._token())
        self._store_token(None)
        self._forget_password(self._username)
        if sub and sub != self._username:
            self._forget_password(sub)

    async def _relogin(self, password: str, stale: str | None) -> str:
        """Log in again with ``password`` unless another task already replaced ``stale``."""
        async with self._login_lock():
            current = self._token()
            if current and current != stale and not self._needs_refresh(current):
                return current
            username = self._username or token_subject(stale) or ""
            try:
                token = await self._request_token(username, password)
            except RouteError as err:
                if err.kind is not ErrorKind.AUTH_FAILED:
                    raise
                self._store_token(None)
                if self._session_password:
                    # HALEXT_PASSWORD: nothing was saved, so "sign in again" would not help.
                    raise RouteError(
                        ErrorKind.AUTH_FAILED,
                        f"halext rejected the password given for {username!r} "
                        "(Incorrect username or password)",
                        "Check HALEXT_USERNAME and HALEXT_PASSWORD",
                        status=401,
                        route_id=ROUTE_ID,
                    ) from None
                self._forget_password(self._username)  # it no longer works: don't retry it
                raise _signed_out("the saved password was rejected", status=401) from None
            if not self._username:
                self._username = username
            self._store_token(token)
            return token

    def _needs_refresh(self, token: str) -> bool:
        exp = token_expiry(token)
        return exp is not None and exp - self._clock() <= REFRESH_MARGIN_S

    async def _usable_token(self) -> str:
        """A token to send: the held one, or a fresh one when it is (nearly) expired and a
        password is at hand. Without a password an old token is still sent: the server's
        clock decides, and its 401 becomes SIGNED_OUT."""
        token = self._token()
        password = self._password()
        if token is None:
            if password:
                return await self._relogin(password, None)
            if self._session_expired:
                # Another call (a model list, a health check) already met the 401: say the
                # same thing it would have said, not "never signed in".
                raise _signed_out("session expired")
            raise RouteError(
                ErrorKind.SIGNED_OUT, "Not signed in to halext", _SIGN_IN_HINT, route_id=ROUTE_ID
            )
        if password and self._needs_refresh(token):
            return await self._relogin(password, token)
        return token

    async def _after_401(self, rejected: str) -> None:
        """The server refused ``rejected``: log in again when possible, else SIGNED_OUT."""
        password = self._password()
        if password is None:
            if self._token() == rejected:
                self._store_token(None)
                self._session_expired = True
            raise _signed_out("session expired", status=401)
        await self._relogin(password, rejected)

    async def _authed(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One authenticated request, with at most one re-login and retry on 401."""
        self._check_transport_security("Your halext sign-in token")
        for attempt in (1, 2):
            token = await self._usable_token()
            with self._translate(path):
                resp = await self._http().request(
                    method,
                    self._url(path),
                    params=params,
                    json=json_body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=timeout or self._timeout,
                )
            if resp.status_code == 401 and attempt == 1:
                await self._after_401(token)
                continue
            if resp.status_code == 401:
                self._store_token(None)
                raise _signed_out("the server refused a fresh token", status=401)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- errors -----------------------------------------------------------------------

    async def _authed_json(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """An authenticated request whose answer must be a 200 with JSON; else RouteError."""
        resp = await self._authed(method, path, json_body=json_body)
        if resp.status_code != 200:
            raise self._http_error(resp, path)
        return self._json_of(resp, path)

    def _translate(self, path: str) -> _Translate:
        return _Translate(self, path)

    def _connect_error(self, exc: Exception) -> RouteError:
        message, cause = connect_failure(exc, self._hostport)
        if cause == "other":
            # Nothing telling at the bottom of the chain: the library's own words are all
            # there is to go on.
            message += f" ({one_line(str(exc) or type(exc).__name__)})"
        hint = {
            "dns": "Check the server URL in Settings and your network",
            "tls": "Check the server URL (https vs http) and the server's certificate",
        }.get(cause, "check the server URL in Settings")
        return _route_error(ErrorKind.CONNECTION, message, hint)

    def _json_of(self, resp: httpx.Response, path: str) -> Any:
        try:
            return resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RouteError(
                ErrorKind.SERVER,
                f"halext answered {path} with something that is not JSON",
                "Check that the server URL points at the halext API (it ends in /api)",
                status=resp.status_code,
                route_id=ROUTE_ID,
            ) from None

    def _http_error(self, resp: httpx.Response, path: str) -> RouteError:
        """One clear line for a non-2xx answer (JSON detail, plain text, or an HTML page)."""
        status = resp.status_code
        if 300 <= status < 400 and status != 304:
            # The response hook raises first; this covers a client built without it.
            location = resp.headers.get("location", "")
            return redirect_error(
                RedirectRefused(
                    self._hostport,
                    status,
                    str(resp.url.join(location)) if location else "",
                    path,
                ),
                ROUTE_ID,
            )
        detail = _detail_of(resp)
        if status >= 500 or detail is None:
            text = detail or _text_summary(resp)
            return RouteError(
                ErrorKind.SERVER,
                f"halext server error {status}: {text}",
                _SERVER_HINT,
                status=status,
                route_id=ROUTE_ID,
            )
        if status == 422:
            return RouteError(
                ErrorKind.BAD_REQUEST,
                f"halext rejected the request to {path}: {detail}",
                BUG_HINT,
                status=status,
                route_id=ROUTE_ID,
            )
        if status == 403:
            return RouteError(
                ErrorKind.BAD_REQUEST,
                f"halext refused {path}: {detail}",
                "Ask the server's admin for access",
                status=status,
                route_id=ROUTE_ID,
            )
        if status == 404:
            return RouteError(
                ErrorKind.BAD_REQUEST,
                f"halext has no {path} ({detail})",
                "Check the server URL in Settings (it should end in /api)",
                status=status,
                route_id=ROUTE_ID,
            )
        return RouteError(
            ErrorKind.BAD_REQUEST,
            f"halext refused {path} ({status}): {detail}",
            status=status,
            route_id=ROUTE_ID,
        )

    # ---- Backend protocol -------------------------------------------------------------

    def locality_of(self, model: str) -> Locality:
        """CLOUD for ``openai:``/``gemini:`` models. Ids the server would complete with its
        own (mutable, possibly cloud) default — no provider prefix, or an unknown one — are
        CLOUD too: failing safe is the only honest answer for those."""
        if halext_model_is_cloud(model):
            return Locality.CLOUD
        key, sep, _ = model.partition(":")
        if not sep or key.lower() not in _SELF_HOSTED_KEYS:
            return Locality.CLOUD
        return Locality.SELF_HOSTED

    async def list_models(self) -> list[ModelInfo]:
        """``GET /ai/models`` as ModelInfo (note: the server rewrites its default on this call)."""
        body = await self._authed_json("GET", "/ai/models")
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            raise _unexpected_shape("model list")
        default = body.get("default_model_id")
        self.last_default_model_id = default if isinstance(default, str) else None
        out: list[ModelInfo] = []
        for entry in body["models"]:
            info = _model_info(entry, self.last_default_model_id)
            if info is not None:
                out.append(info)
        self._listed = {canonical_model_id(m.ref.model): m.locality for m in out}
        self._listed_at = self._monotonic()
        return out

    async def listed_locality(self, model: str) -> Locality | None:
        """Where the server's current ``/ai/models`` says ``model`` goes, or None when it
        does not list it. The last listing answers for LISTING_TTL_S; an id it lacks (or an
        older listing) is asked again. Raises RouteError when the list cannot be had."""
        key = canonical_model_id(model)
        fresh = self._listed_at is not None and self._monotonic() - self._listed_at <= LISTING_TTL_S
        if not (fresh and key in self._listed):
            await self.list_models()
        return self._listed.get(key)

    async def context_length(self, model: str) -> int | None:
        """Unknown: the server does not say (the caller bounds the history by a default)."""
        return None

    async def health(self) -> Health:
        """``GET /health`` (no auth). Never raises."""
        t0 = time.monotonic()
        user = self.signed_in_user()
        try:
            with self._translate("/health"):
                resp = await self._http().get(self._url("/health"))
            if resp.status_code != 200:
                raise self._http_error(resp, "/health")
            body = self._json_of(resp, "/health")
        except RouteError as err:
            return Health(ROUTE_ID, ok=False, detail=err.one_line(), signed_in_as=user)
        ms = int((time.monotonic() - t0) * 1000)
        body = body if isinstance(body, dict) else {}
        version = body.get("version") if isinstance(body.get("version"), str) else None
        status = body.get("status")
        parts = [f"halext {version or '(unknown version)'}"]
        if status not in (None, "healthy"):
            parts.append(str(status))
        parts.append(f"signed in as {user}" if user else "not signed in")
        parts.append(f"{ms} ms")
        return Health(
            ROUTE_ID,
            ok=True,
            latency_ms=ms,
            version=version,
            detail=" · ".join(parts),
            signed_in_as=user,
        )

    async def whoami(self) -> dict[str, Any]:
        """``GET /users/me/``: the User (username, email, is_admin...)."""
        body = await self._authed_json("GET", "/users/me/")
        if not isinstance(body, dict):
            raise _unexpected_shape("user record")
        return body

    def _chat_body(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> dict[str, Any]:
        if not model:
            # Never let the server pick: its shared default may be a cloud model (§4).
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                "No halext model was chosen",
                "Pick a model",
                route_id=ROUTE_ID,
            )
        if not messages:
            raise RouteError(ErrorKind.BAD_REQUEST, "Nothing to send", route_id=ROUTE_ID)
        if any(m.images for m in messages):
            # The chat request has only prompt, history and model (§5.3): no images field.
            raise RouteError(
                ErrorKind.BAD_REQUEST,
                "The halext API cannot carry images",
                "Pick a local vision model, or send the message without the image",
                route_id=ROUTE_ID,
            )
        *history, last = messages
        prompt = last.content
        if options.json_schema is not None:
            # halext has no structured-output field: ask for it in the prompt.
            schema = json.dumps(options.json_schema, ensure_ascii=False)
            prompt = (
                f"{prompt}\n\nReply with only a JSON value that matches this JSON schema, "
                f"with no prose and no code fences:\n{schema}"
            )
        return {
            "prompt": prompt,
            "history": [{"role": str(m.role), "content": str(m.content)} for m in history],
            "model": model,
        }

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        """``POST /ai/chat/stream``: BackendStarted, BackendDelta as text arrives, BackendDone.

        Text is handed on as soon as it cannot be framing (routing/halext_stream.py); a
        timeout or a dropped connection first hands on what arrived. Closing this generator
        (or cancelling the task) closes the response.
        """
        body = self._chat_body(model, messages, options)
        path = "/ai/chat/stream"
        self._check_transport_security("Your halext sign-in token (and the message)")
        for attempt in (1, 2):
            token = await self._usable_token()
            started = False
            parser = HalextStreamParser()
            parts: list[str] = []
            answered = model
            try:
                async with self._http().stream(
                    "POST",
                    self._url(path),
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
                    timeout=self._stream_timeout,
                ) as resp:
                    if resp.status_code == 401 and attempt == 1:
                        await resp.aclose()
                        await self._after_401(token)
                        continue
                    if resp.status_code != 200:
                        await resp.aread()
                        if resp.status_code == 401:
                            self._store_token(None)
                            raise _signed_out("the server refused a fresh token", status=401)
                        raise self._http_error(resp, path)
                    ctype = resp.headers.get("content-type", "")
                    if "text/event-stream" not in ctype:
                        await resp.aread()
                        raise RouteError(
                            ErrorKind.SERVER,
                            f"halext answered the chat with {ctype or 'no content type'}, "
                            "not a stream",
                            "Check that the server URL points at the halext API (it ends in /api)",
                            status=resp.status_code,
                            route_id=ROUTE_ID,
                        )
                    answered = resp.headers.get("x-halext-ai-model") or model
                    started = True
                    yield BackendStarted(answered_model=answered, provider=_provider_of(answered))
                    try:
                        async for data in resp.aiter_bytes():
                            # Text goes on as soon as it cannot be framing (not a chunk late).
                            for text in parser.feed(data):
                                parts.append(text)
                                yield BackendDelta(text)
                    except (httpx.RemoteProtocolError, httpx.ReadError):
                        pass  # the connection broke: finish() below tells whether [DONE] made it
            except RedirectRefused as exc:
                raise redirect_error(exc, ROUTE_ID) from None
            except StreamFormatError:
                raise RouteError(
                    ErrorKind.SERVER,
                    "halext's stream is not in the expected `data: ` format",
                    "Check that the server URL points at the halext API (it ends in /api)",
                    route_id=ROUTE_ID,
                ) from None
            except httpx.TimeoutException as exc:
                # Whatever arrived before the stall is part of the reply: hand it on first.
                for text in parser.finish():
                    parts.append(text)
                    yield BackendDelta(text)
                raise self._timeout_error(exc, path, started) from None
            except httpx.HTTPError as exc:
                if started:
                    for text in parser.finish():
                        parts.append(text)
                        yield BackendDelta(text)
                    raise _dropped(len("".join(parts))) from None
                raise self._transport_error(exc, path) from None
            for text in parser.finish():
                parts.append(text)
                yield BackendDelta(text)
            if not parser.done:
                raise _dropped(len("".join(parts)))
            reply = "".join(parts)
            prompt = body["prompt"]
            # No error events exist: a failing provider shows only as the mock sentence at
            # the end of the body while the header still names the model that was asked.
            fell_back = ends_with_mock_reply(reply) and not answered.startswith("mock:")
            yield BackendDone(
                prompt_tokens=len(prompt) // 4,
                response_tokens=len(reply) // 4,
                exact_tokens=False,
                done_reason="server_fallback" if fell_back else "stop",
                answered_model=MOCK_MODEL if fell_back else None,
            )
            return

    def _timeout_error(self, exc: Exception, path: str, started: bool) -> RouteError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return _route_error(
                ErrorKind.TIMEOUT,
                f"Timed out connecting to {self._hostport}",
                "check the server URL in Settings and your network",
            )
        if isinstance(exc, httpx.WriteTimeout):
            return _route_error(
                ErrorKind.TIMEOUT,
                f"Timed out sending the request to {self._hostport}",
                "Check your network and try again",
            )
        what = "stopped sending the reply" if started else f"did not answer {path}"
        seconds = self._stream_timeout.read if path.endswith("/stream") else self._timeout.read
        return _route_error(
            ErrorKind.TIMEOUT,
            f"halext {what} within {_secs(seconds)}",
            "The server or its model may be overloaded; try again",
        )

    def _transport_error(self, exc: Exception, path: str) -> RouteError:
        if isinstance(exc, httpx.ConnectError):
            return self._connect_error(exc)
        if isinstance(exc, httpx.TimeoutException):
            return self._timeout_error(exc, path, False)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return _route_error(
                ErrorKind.CONNECTION,
                f"halext closed the connection without answering {path}",
                "Check the server URL in Settings; the server may be restarting",
            )
        return _route_error(
            ErrorKind.CONNECTION,
            f"Request to {self._hostport} failed ({type(exc).__name__})",
            "check the server URL in Settings",
        )

    # ---- non-streaming extras -----------------------------------------------------------

    async def chat_once(self, model: str, messages: list[ChatMessage]) -> tuple[str, str, str]:
        """``POST /ai/chat`` → (text, answered model id, routing key). The server's silent
        fallback shows as an answered id different from ``model`` (e.g. mock:llama3.1)."""
        body = self._chat_body(model, messages, ChatOptions())
        data = await self._authed_json("POST", "/ai/chat", json_body=body)
        if not isinstance(data, dict) or not isinstance(data.get("response"), str):
            raise _unexpected_shape("chat reply")
        answered_raw, provider_raw = data.get("model"), data.get("provider")
        answered: str = answered_raw if isinstance(answered_raw, str) else model
        provider: str = provider_raw if isinstance(provider_raw, str) else ""
        return data["response"], answered, provider or _provider_of(answered) or ""

    async def admin_ai_clients(self) -> list[dict[str, Any]]:
        """``GET /admin/ai-clients`` (admin only). At upstream a689c6c this 500s once any
        node has been seen; that is reported as such rather than as a generic failure."""
        resp = await self._authed("GET", "/admin/ai-clients")
        if resp.status_code >= 500:
            raise RouteError(
                ErrorKind.SERVER,
                f"halext could not list its AI clients (error {resp.status_code}: a known "
                "server bug once a node has been seen)",
                "Use Show Models on a node instead, or update the halext server",
                status=resp.status_code,
                route_id=ROUTE_ID,
            )
        if resp.status_code != 200:
            raise self._http_error(resp, "/admin/ai-clients")
        data = self._json_of(resp, "/admin/ai-clients")
        if not isinstance(data, list):
            raise _unexpected_shape("AI client list")
        return [d for d in data if isinstance(d, dict)]

    async def authed_request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One authenticated request to ``path`` (re-login and one retry on 401; redirects
        are not followed) for modules that speak other halext endpoints
        (``halext_admin.py``). Transport failures raise RouteError; the caller reads the
        status."""
        return await self._authed(method, path, json_body=json_body, timeout=timeout)


class _Translate:
    """``with backend._translate(path):`` turns httpx exceptions into RouteError."""

    def __init__(self, backend: HalextBackend, path: str) -> None:
        self._backend = backend
        self._path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if isinstance(exc, RedirectRefused):
            raise redirect_error(exc, ROUTE_ID) from None
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return False
        # `from None`: the httpx exception holds the request, whose headers hold the token.
        raise self._backend._transport_error(exc, self._path) from None


# ---- helpers ----------------------------------------------------------------------------------


def _provider_of(model_id: str) -> str | None:
    key, sep, _ = model_id.partition(":")
    return key if sep and key else None


def _signed_out(reason: str, *, status: int | None = None) -> RouteError:
    """SIGNED_OUT for a session that ended: the message names why; the remedy is always the same."""
    return RouteError(
        ErrorKind.SIGNED_OUT,
        f"Signed out of halext ({reason})",
        "Sign in again",
        status=status,
        route_id=ROUTE_ID,
    )


def _unexpected_shape(what: str) -> RouteError:
    return RouteError(
        ErrorKind.SERVER,
        f"halext's {what} has an unexpected shape",
        _SERVER_HINT,
        route_id=ROUTE_ID,
    )


def _route_error(kind: ErrorKind, message: str, hint: str) -> RouteError:
    return RouteError(kind, message, hint, route_id=ROUTE_ID)


def _dropped(chars: int) -> RouteError:
    return RouteError(
        ErrorKind.STREAM_DROPPED,
        f"The halext stream was cut off before it finished (after {chars} characters)",
        "Send again to retry",
        route_id=ROUTE_ID,
    )


def _secs(value: float | None) -> str:
    if value is None:
        return "the time limit"
    return f"{value:g} s"


def _detail_of(resp: httpx.Response) -> str | None:
    """FastAPI's ``detail`` as one line (422: the first error's msg and where), or None
    when the body is not FastAPI JSON."""
    try:
        data = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or "detail" not in data:
        return None
    detail = data["detail"]
    if isinstance(detail, str):
        return one_line(detail)
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        msg = str(first.get("msg") or "invalid request")
        loc = first.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        return one_line(f"{msg} ({where})" if where else msg)
    return one_line(json.dumps(detail))


_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _text_summary(resp: httpx.Response) -> str:
    """A non-JSON error body as one short line: a plain-text body's first line, an HTML
    page's reason phrase (nginx's "502 Bad Gateway" page → "Bad Gateway")."""
    text = resp.text.strip()
    ctype = resp.headers.get("content-type", "")
    if "html" in ctype or text.lower().startswith(("<html", "<!doctype")):
        return resp.reason_phrase or (
            one_line(m.group(1)) if (m := _TITLE_RE.search(text)) else "an HTML error page"
        )
    if not text:
        return resp.reason_phrase or "empty response"
    return one_line(text.splitlines()[0])


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _model_info(entry: Any, default_id: str | None) -> ModelInfo | None:
    """One AiModelInfo as ModelInfo; None for an entry without a usable id."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        return None
    model_id = entry["id"]
    try:
        ref = ModelRef(ROUTE_ID, None, model_id)
    except ModelRefError:
        return None
    provider = entry.get("provider") if isinstance(entry.get("provider"), str) else None
    source = entry.get("source") if isinstance(entry.get("source"), str) else None
    provider = provider or _provider_of(model_id) or "unknown"
    source = source or provider
    cloud = source in ("openai", "gemini") or halext_model_is_cloud(model_id)
    caps: list[str] = ["completion"]
    if entry.get("supports_vision") is True:
        caps.append("vision")
    if entry.get("supports_function_calling") is True:
        caps.append("tools")
    extra: dict[str, Any] = {"default": model_id == default_id}
    for key in (
        "endpoint",
        "node_id",
        "description",
        "max_output_tokens",
        "input_cost_per_1m",
        "output_cost_per_1m",
        "modified_at",
    ):
        if entry.get(key) is not None:
            extra[key] = entry[key]
    name = entry.get("name") if isinstance(entry.get("name"), str) else None
    return ModelInfo(
        ref=ref,
        name=name or model_id,
        provider=provider,
        source=source,
        locality=Locality.CLOUD if cloud else Locality.SELF_HOSTED,
        size_bytes=_int_or_none(entry.get("size")),
        context_length=_int_or_none(entry.get("context_window")),
        node_name=entry.get("node_name") if isinstance(entry.get("node_name"), str) else None,
        latency_ms=_int_or_none(entry.get("latency_ms")),
        capabilities=tuple(caps),
        extra=extra,
    )
