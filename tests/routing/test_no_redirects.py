"""No backend follows a redirect: a 3xx is a REDIRECT error that names the host and the
``Location``, for chat, listing, health and login alike — proven from the request logs of
two protocol servers (the one that redirects, and the one it points at, which must see
nothing)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from halext_desktop.routing.backends.halext import HalextBackend, token_secret_name
from halext_desktop.routing.backends.http_guard import RedirectRefused
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.backends.ollama_models import OllamaModels
from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.types import ChatMessage, ChatOptions
from tests.helpers.aio import collect, run
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

MESSAGES = [ChatMessage("user", "the secret plan")]
REDIRECTS = (301, 302, 303, 307, 308)


@pytest.fixture
def proxy() -> Iterator[OllamaServer]:
    """The server the user configured; it redirects."""
    with OllamaServer() as s:
        yield s
    assert s.errors == []


@pytest.fixture
def elsewhere() -> Iterator[OllamaServer]:
    """Where the redirect points: it must never be contacted."""
    with OllamaServer() as s:
        yield s
    assert s.errors == []


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.data[name] = value

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


async def chat_error(backend: OllamaBackend | OpenAICompatBackend | HalextBackend) -> RouteError:
    try:
        events = await collect(backend.stream_chat("llama3.2", MESSAGES, ChatOptions()))
    except RouteError as exc:
        return exc
    finally:
        await backend.aclose()
    raise AssertionError(f"no error; events: {events}")


def assert_redirect(err: RouteError, where: str, location: str, status: int) -> None:
    assert err.kind is ErrorKind.REDIRECT and err.status == status
    assert err.message == f"{where} answered with a redirect to {location}; not followed"
    assert err.one_line().endswith("— set the address you mean in Settings")
    assert "server error" not in err.message


# ---- Ollama -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", REDIRECTS)
def test_ollama_chat_is_not_reposted_to_the_location(
    proxy: OllamaServer, elsewhere: OllamaServer, status: int
) -> None:
    proxy.redirect_to(elsewhere.url, status)
    err = run(chat_error(OllamaBackend("local", proxy.url, is_default=True)))
    assert_redirect(err, f"127.0.0.1:{proxy.port}", f"{elsewhere.url}/api/chat", status)
    assert [(r.method, r.path, r.status) for r in proxy.requests] == [("POST", "/api/chat", status)]
    assert elsewhere.requests == []


def test_ollama_listing_health_and_pull_refuse_redirects(
    proxy: OllamaServer, elsewhere: OllamaServer
) -> None:
    proxy.redirect_to(elsewhere.url)

    async def scenario() -> tuple[RouteError, str, RouteError]:
        backend = OllamaBackend("local", proxy.url, is_default=True)
        try:
            try:
                await backend.list_models()
            except RouteError as exc:
                listing = exc
            health = await backend.health()
            try:
                await collect(OllamaModels(backend).pull("llama3.2"))
            except RouteError as exc:
                pull = exc
            return listing, health.detail, pull
        finally:
            await backend.aclose()

    listing, health, pull = run(scenario())
    where = f"127.0.0.1:{proxy.port}"
    assert_redirect(listing, where, f"{elsewhere.url}/api/tags", 307)
    assert health.startswith(f"{where} answered with a redirect to {elsewhere.url}/api/version")
    assert_redirect(pull, where, f"{elsewhere.url}/api/pull", 307)
    assert elsewhere.requests == []


def test_ollama_relative_location_and_credentials_in_it(proxy: OllamaServer) -> None:
    proxy.redirect_to("http://user:hunter2@10.9.8.7:11434/x")
    err = run(chat_error(OllamaBackend("local", proxy.url, is_default=True)))
    assert err.kind is ErrorKind.REDIRECT
    assert "http://10.9.8.7:11434/x/api/chat" in err.message and "hunter2" not in err.message


# ---- OpenAI-compatible --------------------------------------------------------------------------


@pytest.mark.parametrize("status", (302, 307))
def test_openai_compat_chat_list_health_refuse_redirects_without_retrying(
    proxy: OllamaServer, elsewhere: OllamaServer, status: int
) -> None:
    proxy.redirect_to(elsewhere.url, status)

    async def scenario() -> tuple[RouteError, RouteError, str]:
        backend = OpenAICompatBackend("lab", proxy.url + "/v1", "sk-secret", max_retries=2)
        try:
            try:
                await backend.list_models()
            except RouteError as exc:
                listing = exc
            health = await backend.health()
            chat = await chat_error(backend)
            return listing, chat, health.detail
        finally:
            await backend.aclose()

    listing, chat, health = run(scenario())
    where = f"127.0.0.1:{proxy.port}"
    assert_redirect(listing, where, f"{elsewhere.url}/v1/models", status)
    assert_redirect(chat, where, f"{elsewhere.url}/v1/chat/completions", status)
    assert health.startswith(f"{where} answered with a redirect")
    # One request per call: a redirect is not retried either (the library retries
    # transport errors), and nothing reached the other host.
    assert [r.path for r in proxy.requests] == ["/v1/models", "/v1/models", "/v1/chat/completions"]
    assert elsewhere.requests == []


# ---- halext -------------------------------------------------------------------------------------


@pytest.fixture
def halext() -> Iterator[HalextServer]:
    with HalextServer() as s:
        yield s
    assert s.errors == []


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/ai/chat/stream", "chat"),
        ("/ai/models", "list"),
        ("/health", "health"),
        ("/token", "login"),
    ],
)
def test_halext_refuses_redirects_on_every_route(
    halext: HalextServer, elsewhere: OllamaServer, path: str, what: str
) -> None:
    store = DictStore()
    store.set(token_secret_name(halext.url), halext.issue_token("dev"))
    target = f"{elsewhere.url}/api{path}"
    halext.fail_next(path, 307, b"", headers={"location": target}, persistent=True)

    async def scenario() -> str:
        backend = HalextBackend(halext.url, store, username="dev")
        try:
            if what == "chat":
                events = await collect(
                    backend.stream_chat("ollama:llama3.1:8b", MESSAGES, ChatOptions())
                )
                raise AssertionError(f"no error: {events}")
            if what == "list":
                await backend.list_models()
            elif what == "health":
                return (await backend.health()).detail
            else:
                await backend.login("dev", "dev123", remember=False)
        except RouteError as exc:
            assert exc.kind is ErrorKind.REDIRECT and exc.status == 307
            return exc.one_line()
        finally:
            await backend.aclose()
        raise AssertionError("no error")

    line = run(scenario())
    assert line == (
        f"127.0.0.1:{halext.port} answered with a redirect to {target}; not followed "
        "— set the address you mean in Settings"
    )
    assert [r.route for r in halext.requests] == [path]
    assert elsewhere.requests == []


def test_halext_wrong_slash_is_reported_as_a_redirect(halext: HalextServer) -> None:
    """The server's own 307 for a wrong trailing slash (halext-api.md §1) is caught by the
    client's hook, and a 3xx that reaches the error mapping is a redirect there too."""

    async def scenario() -> RedirectRefused:
        backend = HalextBackend(halext.url, DictStore())
        try:
            await backend._http().get(halext.url + "/health/")
        except RedirectRefused as exc:
            return exc
        finally:
            await backend.aclose()
        raise AssertionError("the redirect went through")

    refused = run(scenario())
    assert (refused.status, refused.location) == (307, f"{halext.url}/health")
    assert [r.route for r in halext.requests] == ["/health/"]

    backend = HalextBackend(halext.url, DictStore())
    request = httpx.Request("GET", halext.url + "/ai/models/")
    err = backend._http_error(
        httpx.Response(307, headers={"location": "/api/ai/models"}, request=request),
        "/ai/models/",
    )
    assert err.kind is ErrorKind.REDIRECT
    assert err.message == (
        f"127.0.0.1:{halext.port} answered with a redirect to "
        f"{halext.root_url}/api/ai/models; not followed"
    )
