"""Secrets go only where they belong: an Ollama key to its own host (never the library's
``OLLAMA_API_KEY`` to every host), and no password, token or key over plain http to
another machine without consent. Proven from what the servers received."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from halext_desktop.routing.backends.halext import HalextBackend, token_secret_name
from halext_desktop.routing.backends.http_guard import (
    bind_authorization,
    credentials_allowed,
    is_plain_http_remote,
)
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.backends.ollama_models import OllamaModels
from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.types import ChatMessage, ChatOptions
from tests.helpers.aio import collect, run
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer, reply_text

MESSAGES = [ChatMessage("user", "hello")]


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer() as s:
        yield s
    assert s.errors == []


def auth_headers(server: OllamaServer) -> list[str | None]:
    return [r.headers.get("authorization") for r in server.requests]


async def exercise(backend: OllamaBackend) -> None:
    """Every kind of request the backend makes: list, show, health, chat, pull."""
    try:
        await backend.list_models()
        await backend.show("llama3.2")
        await backend.health()
        await collect(backend.stream_chat("llama3.2", MESSAGES, ChatOptions()))
        await collect(OllamaModels(backend).pull("tinyllama"))
    finally:
        await backend.aclose()


def test_ollama_api_key_from_the_environment_is_not_sent_by_the_library(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ollama client adds this to every request of every host it talks to.
    monkeypatch.setenv("OLLAMA_API_KEY", "env-secret")
    run(exercise(OllamaBackend("studio", server.url, is_default=False)))
    assert len(server.requests) >= 5
    assert auth_headers(server) == [None] * len(server.requests)


def test_a_host_key_goes_to_that_host_on_every_request(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-secret")
    run(exercise(OllamaBackend("studio", server.url, is_default=False, api_key="studio-key")))
    assert auth_headers(server) == ["Bearer studio-key"] * len(server.requests)


def test_two_hosts_each_get_only_their_own_key(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-secret")
    with OllamaServer() as other:

        async def both() -> None:
            await exercise(OllamaBackend("a", server.url, is_default=True, api_key="key-a"))
            await exercise(OllamaBackend("b", other.url, is_default=False))

        run(both())
        assert set(auth_headers(server)) == {"Bearer key-a"}
        assert set(auth_headers(other)) == {None}


def test_an_auth_error_says_whether_a_key_was_sent(server: OllamaServer) -> None:
    async def err(backend: OllamaBackend) -> RouteError:
        server.fail_next(401, "unauthorized")
        try:
            await collect(backend.stream_chat("llama3.2", MESSAGES, ChatOptions()))
        except RouteError as exc:
            return exc
        finally:
            await backend.aclose()
        raise AssertionError("no error")

    keyless = run(err(OllamaBackend("studio", server.url, is_default=False)))
    keyed = run(err(OllamaBackend("studio", server.url, is_default=False, api_key="sekrit-123")))
    assert keyless.kind is keyed.kind is ErrorKind.AUTH_FAILED
    assert "requires an API key" in keyless.message and "'studio'" in keyless.hint
    assert "rejected the API key" in keyed.message
    assert "sekrit-123" not in keyed.one_line()


# ---- plain http to another machine ------------------------------------------------------------


def test_what_counts_as_plain_http_to_another_machine() -> None:
    assert is_plain_http_remote("http://192.168.1.20:11434")
    assert is_plain_http_remote("http://halext.example/api")
    assert not is_plain_http_remote("https://halext.example/api")
    assert not is_plain_http_remote("http://127.0.0.1:11434")
    assert not is_plain_http_remote("http://localhost:8000/api")
    assert not is_plain_http_remote("http://[::1]:11434")
    assert not credentials_allowed("http://192.168.1.20:11434", set())
    assert credentials_allowed("http://192.168.1.20:11434", {"192.168.1.20:11434"})
    assert not credentials_allowed("http://192.168.1.20:8080", {"192.168.1.20:11434"})
    assert credentials_allowed("https://192.168.1.20:11434", set())


class Recorder:
    """An httpx transport that answers like Ollama and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/tags":
            return httpx.Response(200, json={"models": []})
        return httpx.Response(401, json={"error": "unauthorized"})


@pytest.mark.parametrize("consent", [False, True])
def test_an_ollama_key_crosses_plain_http_only_with_consent(consent: bool) -> None:
    rec = Recorder()
    url = "http://192.0.2.10:11434"
    backend = OllamaBackend(
        "lan",
        url,
        is_default=True,
        api_key="lan-key",
        plain_http_ok=consent,
        transport=httpx.MockTransport(rec),
    )
    assert backend.key_withheld is (not consent) and backend.has_key is consent

    async def go() -> RouteError:
        try:
            await backend.list_models()
            await collect(backend.stream_chat("m", MESSAGES, ChatOptions()))
        except RouteError as exc:
            return exc
        finally:
            await backend.aclose()
        raise AssertionError("no error")

    err = run(go())
    sent = {r.headers.get("authorization") for r in rec.requests}
    assert sent == ({"Bearer lan-key"} if consent else {None})
    if not consent:
        assert "was not sent because the address is plain http://" in err.message


@pytest.mark.parametrize("consent", [False, True])
def test_an_endpoint_key_crosses_plain_http_only_with_consent(consent: bool) -> None:
    backend = OpenAICompatBackend("lan", "http://192.0.2.10:8000/v1", "sk-x", plain_http_ok=consent)
    try:
        assert backend.key_withheld is (not consent) and backend.has_key is consent
    finally:
        run(backend.aclose())


def test_halext_password_and_token_cross_plain_http_only_with_consent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"detail": "Incorrect username or password"})

    url = "http://halext.example/api"
    store = _Store()
    store.set(token_secret_name(url), "a.b.c")
    refused = HalextBackend(url, store, transport=httpx.MockTransport(handler))

    async def attempts(backend: HalextBackend) -> list[RouteError]:
        errors = []
        try:
            for call in (
                lambda: backend.login("dev", "pw", remember=False),
                backend.list_models,
                lambda: collect(backend.stream_chat("ollama:x", MESSAGES, ChatOptions())),
            ):
                try:
                    await call()
                except RouteError as exc:
                    errors.append(exc)
        finally:
            await backend.aclose()
        return errors

    errors = run(attempts(refused))
    assert [e.kind for e in errors] == [ErrorKind.INSECURE] * 3
    assert "halext.example:80 is plain http://" in errors[0].message
    assert seen == []  # nothing left: not the password, not the token, not the prompt
    # Health carries no credential: it may go.
    health = run(_health(refused))
    assert not health.ok and len(seen) == 1 and "authorization" not in seen[0].headers

    # Consent given (the window asked, or the command line warned): it goes.
    seen.clear()
    allowed = HalextBackend(url, store, transport=httpx.MockTransport(handler), plain_http_ok=True)
    errors = run(attempts(allowed))
    assert ErrorKind.INSECURE not in {e.kind for e in errors}
    assert seen[0].url.path == "/api/token" and b"password=pw" in seen[0].content


def test_a_consent_given_a_moment_ago_counts_at_once() -> None:
    consents: set[str] = set()
    backend = HalextBackend(
        "http://halext.example/api",
        _Store(),
        plain_http_ok=lambda: "halext.example:80" in consents,
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"access_token": "x"})),
    )

    async def login() -> ErrorKind:
        try:
            await backend.login("dev", "pw", remember=False)
        except RouteError as exc:
            return exc.kind
        finally:
            await backend.aclose()
        return ErrorKind.INTERNAL

    assert run(login()) is ErrorKind.INSECURE
    consents.add("halext.example:80")
    assert run(login()) is ErrorKind.SERVER  # sent now; "x" is no usable token


def test_the_token_never_goes_to_another_origin() -> None:
    hook = bind_authorization("http://127.0.0.1:11434", "Bearer k")

    async def headers_for(url: str, given: str | None) -> str | None:
        request = httpx.Request("GET", url, headers={"Authorization": given} if given else {})
        await hook(request)
        return request.headers.get("authorization")

    assert run(headers_for("http://127.0.0.1:11434/api/tags", None)) == "Bearer k"
    assert run(headers_for("http://127.0.0.1:11435/api/tags", "Bearer env")) is None
    assert run(headers_for("https://127.0.0.1:11434/api/tags", "Bearer env")) is None
    assert run(headers_for("http://other.example/api/tags", "Bearer env")) is None


def test_halext_token_is_stripped_from_any_other_origin(server: OllamaServer) -> None:
    """Even a request built for another origin by mistake never carries the token."""
    with HalextServer() as halext:
        store = _Store()
        backend = HalextBackend(halext.url, store)

        async def go() -> None:
            try:
                await backend._http().get(
                    server.url + "/api/version", headers={"Authorization": "Bearer t"}
                )
                await backend._http().get(
                    halext.url + "/health", headers={"Authorization": "Bearer t"}
                )
            finally:
                await backend.aclose()

        run(go())
        assert server.requests[0].headers.get("authorization") is None
        assert halext.requests[0].headers.get("authorization") == "Bearer t"


async def _health(backend: HalextBackend):  # type: ignore[no-untyped-def]
    try:
        return await backend.health()
    finally:
        await backend.aclose()


class _Store:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.data[name] = value

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


def test_reply_text_is_unchanged_with_a_key(server: OllamaServer) -> None:
    """A key changes nothing else of the exchange."""

    async def go() -> str:
        backend = OllamaBackend("a", server.url, is_default=True, api_key="k")
        try:
            events = await collect(backend.stream_chat("llama3.2", MESSAGES, ChatOptions()))
        finally:
            await backend.aclose()
        return "".join(getattr(e, "text", "") for e in events)

    assert run(go()) == reply_text("llama3.2", "hello")


def test_a_key_provider_is_asked_once_at_the_first_request(server: OllamaServer) -> None:
    """Backends are built at every start, but a key is read (from the keyring, slowly) only
    when a request to that host is made, and only once."""
    asked: list[str] = []

    def ollama_key() -> str:
        asked.append("ollama")
        return "lazy-ollama-key"

    def endpoint_key() -> str:
        asked.append("openai")
        return "lazy-endpoint-key"

    backend = OllamaBackend("studio", server.url, is_default=False, api_key=ollama_key)
    endpoint = OpenAICompatBackend("lab", server.url + "/v1", endpoint_key, max_retries=0)
    assert asked == []

    async def go() -> None:
        try:
            await collect(backend.stream_chat("llama3.2", MESSAGES, ChatOptions()))
            assert asked == ["ollama"]
            await backend.list_models()
            await collect(OllamaModels(backend).pull("tinyllama"))
            await collect(endpoint.stream_chat("llama3.2", MESSAGES, ChatOptions()))
            await endpoint.list_models()
        finally:
            await backend.aclose()
            await endpoint.aclose()

    run(go())
    assert asked == ["ollama", "openai"]
    assert backend.has_key and endpoint.has_key and asked == ["ollama", "openai"]
    native = {r.headers.get("authorization") for r in server.requests if r.path.startswith("/api")}
    compat = {r.headers.get("authorization") for r in server.requests if r.path.startswith("/v1")}
    assert native == {"Bearer lazy-ollama-key"} and compat == {"Bearer lazy-endpoint-key"}
    assert len(server.requests) >= 5


def test_a_provided_key_is_still_withheld_from_plain_http_without_consent() -> None:
    rec = Recorder()
    backend = OllamaBackend(
        "lan",
        "http://192.0.2.10:11434",
        is_default=True,
        api_key=lambda: "lan-key",
        transport=httpx.MockTransport(rec),
    )

    async def go() -> None:
        try:
            await backend.list_models()
        finally:
            await backend.aclose()

    run(go())
    assert [r.headers.get("authorization") for r in rec.requests] == [None]
    assert backend.key_withheld and not backend.has_key
