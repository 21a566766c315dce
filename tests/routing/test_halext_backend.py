"""HalextBackend against the halext protocol test server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.halext import (
    HalextBackend,
    password_secret_name,
    token_secret_name,
)
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.jwt_claims import (
    decode_claims,
    seconds_left,
    token_expiry,
    token_subject,
)
from halext_desktop.routing.types import (
    BackendDelta,
    BackendDone,
    BackendEvent,
    BackendStarted,
    ChatMessage,
    ChatOptions,
    Health,
    Locality,
)
from tests.helpers.aio import run
from tests.servers.halext_server import (
    NGINX_502,
    HalextServer,
    expected_reply,
    mock_chunks,
    reply_chunks,
)

PASSWORD = "dev123"


class DictStore:
    """A CredentialStore whose contents a test can inspect."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


class Clock:
    """The backend's clock, moved together with the server's in expiry tests."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[HalextServer]:
    with HalextServer() as srv:
        yield srv
    assert srv.errors == [], srv.errors


@pytest.fixture
def store() -> DictStore:
    return DictStore()


def make(
    server: HalextServer, store: DictStore, clock: Clock | None = None, **kwargs: object
) -> HalextBackend:
    return HalextBackend(server.url, store, clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]


async def drain(
    agen: AsyncIterator[BackendEvent],
) -> tuple[list[BackendEvent], RouteError | None]:
    events: list[BackendEvent] = []
    try:
        async for event in agen:
            events.append(event)
    except RouteError as err:
        return events, err
    return events, None


def deltas(events: list[BackendEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, BackendDelta)]


def msgs(*pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role, content) for role, content in pairs]  # type: ignore[arg-type]


async def signed_in(backend: HalextBackend, remember: bool = False) -> str:
    return await backend.login("dev", PASSWORD, remember=remember)


def assert_no_secrets(text: str, *secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            assert secret not in text


# ---- jwt claims ----------------------------------------------------------------------------------


def test_jwt_claims_read_sub_and_exp(server: HalextServer) -> None:
    token = server.issue_token("dev", lifetime_s=100)
    assert token_subject(token) == "dev"
    exp = token_expiry(token)
    assert exp is not None and abs(exp - (server.now() + 100)) <= 1
    left = seconds_left(token, server.now())
    assert left is not None and 98 <= left <= 100
    for bad in ("", "abc", "a.b", "a.!!!.c", None):
        assert decode_claims(bad) is None
        assert token_subject(bad) is None
        assert token_expiry(bad) is None


# ---- sign-in -------------------------------------------------------------------------------------


def test_satisfies_the_backend_protocol(server: HalextServer, store: DictStore) -> None:
    backend = make(server, store)
    assert isinstance(backend, Backend)
    assert (backend.kind, backend.route_id, backend.base_url) == ("halext", "halext", server.url)


def test_login_stores_the_token_and_the_password_only_when_remembered(
    server: HalextServer, store: DictStore
) -> None:
    async def scenario() -> None:
        backend = make(server, store)
        try:
            assert backend.signed_in_user() is None
            assert await signed_in(backend, remember=False) == "dev"
            token = store.values[token_secret_name(server.url)]
            assert token_subject(token) == "dev"
            assert password_secret_name(server.url, "dev") not in store.values
            assert backend.signed_in_user() == "dev"
            me = await backend.whoami()
            assert (me["username"], me["is_admin"]) == ("dev", True)

            await backend.login("dev", PASSWORD, remember=True)
            assert store.values[password_secret_name(server.url, "dev")] == PASSWORD
            assert_no_secrets(repr(backend), token, PASSWORD)

            # Unticking "remember me" forgets the remembered password.
            await backend.login("dev", PASSWORD, remember=False)
            assert password_secret_name(server.url, "dev") not in store.values

            await backend.login("dev", PASSWORD, remember=True)
            await backend.logout()
            assert store.values == {}
            assert backend.signed_in_user() is None
        finally:
            await backend.aclose()

    run(scenario())
    form = server.requests_to("/token")[0].form
    assert form == {"username": "dev", "password": PASSWORD}
    assert server.requests_to("/token")[0].path == "/api/token"


def test_wrong_password_and_email_login(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> None:
        backend = make(server, store)
        try:
            with pytest.raises(RouteError) as info:
                await backend.login("dev", "wrong-pw", remember=True)
            assert info.value.kind is ErrorKind.AUTH_FAILED
            assert info.value.message == "Incorrect username or password"
            assert_no_secrets(info.value.one_line() + repr(info.value), "wrong-pw")
            assert store.values == {}
            assert await backend.login("dev@example.com", PASSWORD, remember=False) == "dev"
        finally:
            await backend.aclose()

    run(scenario())


def test_proactive_relogin_shortly_before_expiry(server: HalextServer, store: DictStore) -> None:
    clock = Clock()

    async def scenario() -> None:
        backend = make(server, store, clock)
        try:
            await signed_in(backend, remember=True)
            first = store.values[token_secret_name(server.url)]
            await backend.whoami()
            assert len(server.requests_to("/token")) == 1  # far from expiry: no re-login
            # 30 s before exp on both clocks: still valid on the server, but due for renewal.
            clock.now += 1800 - 30
            server.advance_clock(1800 - 30)
            await backend.list_models()
            second = store.values[token_secret_name(server.url)]
            assert second != first
            assert token_expiry(second) == pytest.approx(server.now() + 1800, abs=2)
        finally:
            await backend.aclose()

    run(scenario())
    routes = [(r.method, r.route) for r in server.requests]
    assert routes == [
        ("POST", "/token"),
        ("GET", "/users/me/"),
        ("POST", "/token"),
        ("GET", "/ai/models"),
    ]
    models_req = server.requests_to("/ai/models")[0]
    assert models_req.status == 200
    assert (
        models_req.headers["authorization"]
        == f"Bearer {store.values[token_secret_name(server.url)]}"
    )


def test_401_relogs_in_once_and_retries_once(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> None:
        backend = make(server, store)
        try:
            await signed_in(backend, remember=True)
            server.expire_all_tokens()  # the server forgets it; our clock says it is fine
            me = await backend.whoami()
            assert me["username"] == "dev"
        finally:
            await backend.aclose()

    run(scenario())
    assert [(r.route, r.status) for r in server.requests] == [
        ("/token", 200),
        ("/users/me/", 401),
        ("/token", 200),
        ("/users/me/", 200),
    ]


def test_401_in_a_stream_relogs_in_and_streams(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> list[BackendEvent]:
        backend = make(server, store)
        try:
            await signed_in(backend, remember=True)
            server.expire_all_tokens()
            events, err = await drain(
                backend.stream_chat("mock:llama3.1", msgs(("user", "hi")), ChatOptions())
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    events = run(scenario())
    assert "".join(deltas(events)) == "".join(mock_chunks())
    assert [r.status for r in server.requests_to("/ai/chat/stream")] == [401, 200]


def test_expired_session_without_password_is_signed_out(
    server: HalextServer, store: DictStore
) -> None:
    async def scenario() -> None:
        backend = make(server, store)
        try:
            await signed_in(backend, remember=False)
            token = store.values[token_secret_name(server.url)]
            server.expire_all_tokens()
            for call in (backend.list_models(), backend.whoami()):
                with pytest.raises(RouteError) as info:
                    await call
                assert info.value.kind is ErrorKind.SIGNED_OUT
            err = info.value
            events, stream_err = await drain(
                backend.stream_chat("mock:llama3.1", msgs(("user", "hi")), ChatOptions())
            )
            assert events == [] and stream_err is not None
            assert stream_err.kind is ErrorKind.SIGNED_OUT
            assert_no_secrets(err.one_line() + repr(err), token, PASSWORD)
            assert token_secret_name(server.url) not in store.values
            assert backend.signed_in_user() is None
        finally:
            await backend.aclose()

    run(scenario())
    # The first 401 dropped the token: later calls were refused without another request.
    assert [r.route for r in server.requests] == ["/token", "/ai/models"]


def test_session_expired_message(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> RouteError:
        backend = make(server, store)
        try:
            await signed_in(backend)
            server.advance_clock(1801)  # the backend's clock is not moved: the server decides
            with pytest.raises(RouteError) as info:
                await backend.whoami()
            return info.value
        finally:
            await backend.aclose()

    err = run(scenario())
    assert (err.kind, err.message, err.hint) == (
        ErrorKind.SIGNED_OUT,
        "Signed out of halext (session expired)",
        "Sign in again",
    )


def test_never_signed_in_sends_nothing(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> RouteError:
        backend = make(server, store, username="dev")
        try:
            with pytest.raises(RouteError) as info:
                await backend.list_models()
            return info.value
        finally:
            await backend.aclose()

    assert run(scenario()).kind is ErrorKind.SIGNED_OUT
    assert server.requests == []


def test_session_password_signs_in_on_demand_and_is_never_stored(
    server: HalextServer, store: DictStore
) -> None:
    async def scenario() -> None:
        backend = make(server, store, username="dev", session_password=PASSWORD)
        try:
            models = await backend.list_models()
            assert models
            assert backend.signed_in_user() == "dev"
        finally:
            await backend.aclose()

    run(scenario())
    assert list(store.values) == [token_secret_name(server.url)]
    assert [r.route for r in server.requests] == ["/token", "/ai/models"]


def test_rejected_saved_password_signs_out_and_is_forgotten(
    server: HalextServer, store: DictStore
) -> None:
    async def scenario() -> RouteError:
        backend = make(server, store)
        try:
            await signed_in(backend, remember=True)
            server.set_password("dev", "changed")
            server.expire_all_tokens()
            with pytest.raises(RouteError) as info:
                await backend.whoami()
            return info.value
        finally:
            await backend.aclose()

    err = run(scenario())
    assert err.kind is ErrorKind.SIGNED_OUT
    assert "password was rejected" in err.message
    assert store.values == {}


def test_wrong_session_password_names_the_environment_not_a_saved_password(
    server: HalextServer, store: DictStore
) -> None:
    async def scenario() -> RouteError:
        backend = make(server, store, username="dev", session_password="not-the-password")
        try:
            with pytest.raises(RouteError) as info:
                await backend.list_models()
            return info.value
        finally:
            await backend.aclose()

    err = run(scenario())
    assert err.kind is ErrorKind.AUTH_FAILED
    assert "saved" not in err.one_line()
    assert "HALEXT_PASSWORD" in err.one_line() and "'dev'" in err.message
    assert "not-the-password" not in err.one_line() + repr(err)
    assert [r.route for r in server.requests] == ["/token"]


# ---- models --------------------------------------------------------------------------------------


def test_models_map_to_model_info_with_localities(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> HalextBackend:
        backend = make(server, store)
        try:
            await signed_in(backend)
            backend.models = await backend.list_models()  # type: ignore[attr-defined]
            return backend
        finally:
            await backend.aclose()

    backend = run(scenario())
    models = {str(m.ref): m for m in backend.models}  # type: ignore[attr-defined]
    assert backend.last_default_model_id == "gemini:gemini-2.5-flash"
    first = backend.models[0]  # type: ignore[attr-defined]
    assert str(first.ref) == "halext/gemini:gemini-2.5-flash" and first.extra["default"] is True

    mini = models["halext/openai:gpt-4o-mini"]
    assert (mini.provider, mini.source, mini.locality) == ("openai", "openai", Locality.CLOUD)
    assert mini.context_length == 128000
    assert mini.extra["endpoint"] == "https://api.openai.com"
    assert mini.extra["default"] is False
    assert "vision" in mini.capabilities

    node = models["halext/client:3:qwen2.5:7b"]
    assert (node.name, node.provider, node.source) == ("qwen2.5:7b", "ollama", "client")
    assert node.locality is Locality.SELF_HOSTED
    assert (node.node_name, node.latency_ms, node.extra["node_id"]) == ("Studio", 22, 3)

    local = models["halext/ollama:llama3.1:8b"]
    assert local.locality is Locality.SELF_HOSTED
    assert isinstance(local.size_bytes, int) and local.size_bytes > 0
    assert sum(m.is_cloud for m in models.values()) == 10  # 6 curated OpenAI + 4 Gemini


def test_mock_only_listing_is_self_hosted(store: DictStore) -> None:
    with HalextServer(cloud_configured=False, server_ollama_models=None, client_nodes=[]) as srv:

        async def scenario() -> list[str]:
            backend = make(srv, store)
            try:
                await signed_in(backend)
                models = await backend.list_models()
                assert all(m.locality is Locality.SELF_HOSTED for m in models)
                return [m.ref.model for m in models]
            finally:
                await backend.aclose()

        assert run(scenario()) == ["mock:llama3.1", "mock:mistral"]


def test_locality_of(server: HalextServer, store: DictStore) -> None:
    backend = make(server, store)
    cloud = ["openai:gpt-4o-mini", "gemini:gemini-2.5-pro", "OpenAI:gpt-4o", "mistral", "bogus:x"]
    local = ["ollama:llama3.1:8b", "ollama-local:x", "client:3:qwen2.5:7b", "mock:llama3.1",
             "openwebui:llama3"]  # fmt: skip
    assert [backend.locality_of(m) for m in cloud] == [Locality.CLOUD] * len(cloud)
    assert [backend.locality_of(m) for m in local] == [Locality.SELF_HOSTED] * len(local)


# ---- streaming -----------------------------------------------------------------------------------


def test_stream_reconstructs_the_reply_exactly(server: HalextServer, store: DictStore) -> None:
    prompt = "first line\nsecond  line "
    history = msgs(("system", "be brief"), ("user", "earlier"), ("assistant", "ok"))

    async def scenario() -> list[BackendEvent]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            events, err = await drain(
                backend.stream_chat(
                    "ollama:llama3.1:8b", [*history, ChatMessage("user", prompt)], ChatOptions()
                )
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    events = run(scenario())
    assert events[0] == BackendStarted(answered_model="ollama:llama3.1:8b", provider="ollama")
    expected = expected_reply("ollama:llama3.1:8b", prompt)
    assert deltas(events) == reply_chunks(expected)  # one delta per server chunk, verbatim
    assert "".join(deltas(events)) == expected
    done = events[-1]
    assert isinstance(done, BackendDone)
    assert (done.prompt_tokens, done.response_tokens) == (len(prompt) // 4, len(expected) // 4)
    assert (done.exact_tokens, done.done_reason, done.answered_model) == (False, "stop", None)

    sent = server.requests_to("/ai/chat/stream")[0].json
    assert sent == {
        "prompt": prompt,
        "history": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "ok"},
        ],
        "model": "ollama:llama3.1:8b",
    }


def test_stream_keeps_newlines_blank_lines_and_leading_spaces(
    server: HalextServer, store: DictStore
) -> None:
    script = ["Hello", " world", "\n\n", "- item\n- item 2", "  indented", "\n\ndata:x", "end\n"]
    server.stream_script(script)

    async def scenario() -> list[BackendEvent]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            events, err = await drain(
                backend.stream_chat("client:3:qwen2.5:7b", msgs(("user", "x")), ChatOptions())
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    events = run(scenario())
    assert deltas(events) == script
    assert events[0] == BackendStarted("client:3:qwen2.5:7b", "client")


def test_server_mock_fallback_is_detected(server: HalextServer, store: DictStore) -> None:
    async def scenario(model: str) -> list[BackendEvent]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            events, err = await drain(
                backend.stream_chat(model, msgs(("user", "x")), ChatOptions())
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    fell_back = run(scenario("ollama:no-such-model"))
    assert fell_back[0] == BackendStarted("ollama:no-such-model", "ollama")
    done = fell_back[-1]
    assert isinstance(done, BackendDone)
    assert (done.answered_model, done.done_reason) == ("mock:llama3.1", "server_fallback")

    honest = run(scenario("mock:llama3.1"))[-1]
    assert isinstance(honest, BackendDone)
    assert (honest.answered_model, honest.done_reason) == (None, "stop")


def test_header_names_the_model_that_answers(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> BackendEvent:
        backend = make(server, store)
        try:
            await signed_in(backend)
            events, _ = await drain(
                backend.stream_chat("bogus:x", msgs(("user", "x")), ChatOptions())
            )
            return events[0]
        finally:
            await backend.aclose()

    # An unknown provider is silently resolved to OpenAI by the server: the header says so.
    assert run(scenario()) == BackendStarted("openai:gpt-4o-mini", "openai")


@pytest.mark.parametrize(
    ("status", "body", "ctype", "kind", "message"),
    [
        (500, "Internal Server Error", "text/plain", ErrorKind.SERVER,
         "halext server error 500: Internal Server Error"),
        (502, NGINX_502, "text/html", ErrorKind.SERVER, "halext server error 502: Bad Gateway"),
        (503, '{"detail":"AI provider timed out"}', "application/json", ErrorKind.SERVER,
         "halext server error 503: AI provider timed out"),
        (422, '{"detail":[{"type":"string_type","loc":["body","history",0,"content"],'
              '"msg":"Input should be a valid string","input":1}]}', "application/json",
         ErrorKind.BAD_REQUEST, "halext rejected the request to /ai/chat/stream: "
         "Input should be a valid string (body.history.0.content)"),
    ],
)  # fmt: skip
def test_error_answers_become_one_clear_line(
    server: HalextServer,
    store: DictStore,
    status: int,
    body: str,
    ctype: str,
    kind: ErrorKind,
    message: str,
) -> None:
    async def scenario() -> tuple[list[BackendEvent], RouteError | None]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            server.fail_next("/ai/chat/stream", status, body, ctype)
            return await drain(
                backend.stream_chat("mock:llama3.1", msgs(("user", "x")), ChatOptions())
            )
        finally:
            await backend.aclose()

    events, err = run(scenario())
    assert events == []
    assert err is not None
    assert (err.kind, err.message, err.status) == (kind, message, status)
    assert "\n" not in err.one_line() and err.hint


def test_dropped_stream_keeps_the_deltas_then_fails(server: HalextServer, store: DictStore) -> None:
    server.stream_script(["one ", "two ", "three ", "four "], drop_after=3)

    async def scenario() -> tuple[list[BackendEvent], RouteError | None]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            return await drain(backend.stream_chat("mock:x", msgs(("user", "x")), ChatOptions()))
        finally:
            await backend.aclose()

    events, err = run(scenario())
    assert err is not None and err.kind is ErrorKind.STREAM_DROPPED
    assert deltas(events) == ["one ", "two ", "three "]
    assert not any(isinstance(e, BackendDone) for e in events)


def test_stream_without_done_is_dropped(server: HalextServer, store: DictStore) -> None:
    # A well-formed body that simply ends: no [DONE] means the reply is incomplete.
    server.fail_next("/ai/chat/stream", 200, "data: partial \n\ndata: reply", "text/event-stream")

    async def scenario() -> tuple[list[BackendEvent], RouteError | None]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            return await drain(backend.stream_chat("mock:x", msgs(("user", "x")), ChatOptions()))
        finally:
            await backend.aclose()

    events, err = run(scenario())
    assert err is not None and err.kind is ErrorKind.STREAM_DROPPED
    assert "".join(deltas(events)) == "partial reply"


def test_closing_the_stream_closes_the_connection(server: HalextServer, store: DictStore) -> None:
    server.set_chunk_delay(0.1)  # 15 mock words: ~1.5 s if it ran to the end

    async def scenario() -> list[str]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            agen = backend.stream_chat("mock:llama3.1", msgs(("user", "x")), ChatOptions())
            got: list[str] = []
            async for event in agen:  # type: ignore[attr-defined]
                if isinstance(event, BackendDelta):
                    got.append(event.text)
                    break
            await agen.aclose()  # type: ignore[attr-defined]
            return got
        finally:
            await backend.aclose()

    assert run(scenario()) == ["I "]
    rec = server.wait_closed_early(5.0)
    assert rec.route == "/ai/chat/stream"
    assert rec.chunks_sent < len(mock_chunks())
    assert not rec.completed


def test_cancelling_the_task_closes_the_connection(server: HalextServer, store: DictStore) -> None:
    server.set_chunk_delay(0.1)

    async def scenario() -> list[str]:
        backend = make(server, store)
        got: list[str] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for event in backend.stream_chat(
                "mock:llama3.1", msgs(("user", "x")), ChatOptions()
            ):
                if isinstance(event, BackendDelta):
                    got.append(event.text)
                    first.set()

        try:
            await signed_in(backend)
            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 5.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return got
        finally:
            await backend.aclose()

    got = run(scenario())
    rec = server.wait_closed_early(5.0)
    assert 1 <= len(got) < len(mock_chunks())
    assert rec.chunks_sent < len(mock_chunks())


def test_read_timeout(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> RouteError | None:
        backend = make(server, store, timeout=httpx.Timeout(0.3))
        try:
            await signed_in(backend)
            server.delay_first_byte(3.0, path="/ai/chat/stream")
            _, err = await drain(backend.stream_chat("mock:x", msgs(("user", "x")), ChatOptions()))
            return err
        finally:
            await backend.aclose()

    err = run(scenario())
    assert err is not None and err.kind is ErrorKind.TIMEOUT
    assert err.message == "halext did not answer /ai/chat/stream within 0.3 s"
    server.wait_closed_early(5.0)  # the server saw us give up


def test_stream_needs_an_explicit_model(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> RouteError | None:
        backend = make(server, store)
        try:
            await signed_in(backend)
            _, err = await drain(backend.stream_chat("", msgs(("user", "x")), ChatOptions()))
            return err
        finally:
            await backend.aclose()

    err = run(scenario())
    assert err is not None and err.kind is ErrorKind.BAD_REQUEST
    assert server.requests_to("/ai/chat/stream") == []


def test_json_schema_is_asked_for_in_the_prompt(server: HalextServer, store: DictStore) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}

    async def scenario() -> None:
        backend = make(server, store)
        try:
            await signed_in(backend)
            await drain(
                backend.stream_chat(
                    "mock:x", msgs(("user", "name it")), ChatOptions(json_schema=schema)
                )
            )
        finally:
            await backend.aclose()

    run(scenario())
    sent = server.requests_to("/ai/chat/stream")[0].json
    assert sent["prompt"].startswith("name it\n\n")
    assert '"title"' in sent["prompt"]
    assert set(sent) == {"prompt", "history", "model"}


# ---- connection, health, extras ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(store: DictStore) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"

    async def scenario() -> None:
        backend = HalextBackend(url, store)
        try:
            health = await backend.health()
            assert not health.ok
            assert health.detail == (
                f"Connection refused at 127.0.0.1:{port} — check the server URL in Settings"
            )
            with pytest.raises(RouteError) as info:
                await backend.login("dev", PASSWORD, remember=False)
            assert info.value.kind is ErrorKind.CONNECTION
            store.set(token_secret_name(url), "a.b.c")
            _, err = await drain(backend.stream_chat("mock:x", msgs(("user", "x")), ChatOptions()))
            assert err is not None and err.kind is ErrorKind.CONNECTION
            assert f"127.0.0.1:{port}" in err.message
        finally:
            await backend.aclose()

    run(scenario())


def _failing_transport(error: BaseException) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request) from error

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("bottom", "message", "hint"),
    [
        # anyio's error when every address of a name (::1 and 127.0.0.1) refused.
        (
            ExceptionGroup(
                "multiple connection attempts failed",
                [ConnectionRefusedError(111, "refused"), ConnectionRefusedError(111, "refused")],
            ),
            "Connection refused at localhost:8000",
            "check the server URL in Settings",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            "Cannot resolve the host name in localhost:8000",
            "Check the server URL in Settings and your network",
        ),
        (
            PermissionError(13, "Permission denied"),
            "Cannot connect to localhost:8000 (All connection attempts failed)",
            "check the server URL in Settings",
        ),
    ],
)
def test_connect_failures_name_their_cause(
    store: DictStore, bottom: BaseException, message: str, hint: str
) -> None:
    async def scenario() -> Health:
        cause = OSError("All connection attempts failed")
        cause.__cause__ = bottom
        backend = HalextBackend(
            "http://localhost:8000/api", store, transport=_failing_transport(cause)
        )
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    assert run(scenario()).detail == f"{message} — {hint}"


def test_health_reports_version_user_and_latency(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> tuple[str, str]:
        backend = make(server, store)
        try:
            before = (await backend.health()).detail
            await signed_in(backend)
            health = await backend.health()
            assert health.ok and health.version == "0.2.0-refactored"
            assert health.signed_in_as == "dev"
            return before, health.detail
        finally:
            await backend.aclose()

    before, after = run(scenario())
    assert re.fullmatch(r"halext 0\.2\.0-refactored · not signed in · \d+ ms", before)
    assert re.fullmatch(r"halext 0\.2\.0-refactored · signed in as dev · \d+ ms", after)
    assert all("authorization" not in r.headers for r in server.requests_to("/health"))


def test_health_of_a_proxy_error_page(server: HalextServer, store: DictStore) -> None:
    server.fail_next("/health", 502, NGINX_502, "text/html")

    async def scenario() -> str:
        backend = make(server, store)
        try:
            health = await backend.health()
            assert not health.ok
            return health.detail
        finally:
            await backend.aclose()

    assert run(scenario()).startswith("halext server error 502: Bad Gateway — ")


def test_proxies_from_the_environment_are_not_used_for_local_servers(
    server: HalextServer, store: DictStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{free_port()}")

    async def scenario() -> str:
        backend = make(server, store)
        try:
            return await signed_in(backend)
        finally:
            await backend.aclose()

    assert run(scenario()) == "dev"


def test_chat_once_reports_what_answered(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> list[tuple[str, str, str]]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            return [
                await backend.chat_once("ollama-local:qwen2.5:7b", msgs(("user", "hello"))),
                await backend.chat_once("ollama:nope", msgs(("user", "hello"))),
            ]
        finally:
            await backend.aclose()

    ok, fallback = run(scenario())
    assert ok == (expected_reply("ollama:qwen2.5:7b", "hello"), "ollama:qwen2.5:7b", "ollama-local")
    assert fallback[1:] == ("openai:gpt-4o-mini", "openai")  # the server's silent fallback


def test_admin_ai_clients_and_the_known_500(server: HalextServer, store: DictStore) -> None:
    async def scenario() -> tuple[list[dict[str, object]], RouteError]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            nodes = await backend.admin_ai_clients()
            server.set_node(3, last_seen_at="2026-01-05T10:00:00")
            with pytest.raises(RouteError) as info:
                await backend.admin_ai_clients()
            return nodes, info.value
        finally:
            await backend.aclose()

    nodes, err = run(scenario())
    assert [n["name"] for n in nodes] == ["Studio"]
    assert err.kind is ErrorKind.SERVER and "known server bug" in err.message


def test_provider_failing_mid_stream_is_flagged(server: HalextServer, store: DictStore) -> None:
    server.fail_provider("ollama:qwen2.5:7b", after_chunks=3)

    async def scenario() -> list[BackendEvent]:
        backend = make(server, store)
        try:
            await signed_in(backend)
            events, err = await drain(
                backend.stream_chat("ollama:qwen2.5:7b", msgs(("user", "x")), ChatOptions())
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    events = run(scenario())
    real = reply_chunks(expected_reply("ollama:qwen2.5:7b", "x"))[:3]
    assert deltas(events) == real + mock_chunks()
    done = events[-1]
    assert isinstance(done, BackendDone)
    assert (done.answered_model, done.done_reason) == ("mock:llama3.1", "server_fallback")


def test_stream_split_into_single_bytes_by_the_network(store: DictStore) -> None:
    """The parser under the backend: the body arrives one byte per read."""
    chunks = ["Hi", " there\n", "\n\n- a", "  b", "é✓"]
    body = b"".join(f"data: {c}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"

    async def one_byte_at_a_time() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i : i + 1]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/ai/chat/stream"
        return httpx.Response(
            200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "x-halext-ai-model": "client:3:qwen2.5:7b",
            },  # fmt: skip
            content=one_byte_at_a_time(),
        )

    url = "https://halext.test/api"
    with HalextServer() as srv:  # only to mint a token the way the server does
        store.set(token_secret_name(url), srv.issue_token("dev"))

    async def scenario() -> list[BackendEvent]:
        backend = HalextBackend(url, store, transport=httpx.MockTransport(handler))
        try:
            events, err = await drain(
                backend.stream_chat("client:3:qwen2.5:7b", msgs(("user", "x")), ChatOptions())
            )
            assert err is None
            return events
        finally:
            await backend.aclose()

    events = run(scenario())
    assert "".join(deltas(events)) == "".join(chunks)
    # Text goes on as it arrives, a byte at a time here: never a whole chunk late.
    assert len(deltas(events)) > len(chunks)
    assert events[0] == BackendStarted("client:3:qwen2.5:7b", "client")
    assert isinstance(events[-1], BackendDone)


def test_after_a_refused_token_every_call_says_the_session_expired(server: HalextServer) -> None:
    """A model list meets the 401 first; the chat after it must not claim "never signed in"."""
    from halext_desktop.routing.backends.halext import HalextBackend
    from halext_desktop.routing.errors import ErrorKind, RouteError
    from halext_desktop.storage.secrets import MemorySecretStore
    from tests.helpers.aio import run as arun

    async def go() -> list[str]:
        backend = HalextBackend(server.url, MemorySecretStore())
        messages: list[str] = []
        try:
            await backend.login("dev", "dev123", remember=False)
            server.expire_all_tokens()
            for _ in range(2):
                try:
                    await backend.list_models()
                except RouteError as exc:
                    assert exc.kind is ErrorKind.SIGNED_OUT
                    messages.append(exc.message)
        finally:
            await backend.aclose()
        return messages

    assert arun(go()) == ["Signed out of halext (session expired)"] * 2
