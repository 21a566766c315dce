"""OpenAICompatBackend against the test server's OpenAI-compatible ``/v1`` (real HTTP)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
from halext_desktop.routing.errors import ErrorKind, RouteError
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
from tests.helpers.aio import collect, run
from tests.servers.ollama_server import OllamaServer, prompt_tokens, reply_text, tokenize

KEY = "sk-test-0123456789abcdef"
PROMPT = "why is the sky blue"
MESSAGES = [ChatMessage("system", "be brief"), ChatMessage("user", PROMPT)]
WIRE = [{"role": m.role, "content": m.content} for m in MESSAGES]


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer() as s:
        yield s
    assert s.errors == []


def backend_for(
    url: str, api_key: str | None = KEY, max_retries: int = 0, **kwargs: object
) -> OpenAICompatBackend:
    return OpenAICompatBackend("lab", url, api_key, max_retries=max_retries, **kwargs)  # type: ignore[arg-type]


async def chat_events(
    b: OpenAICompatBackend, model: str = "llama3.2", options: ChatOptions | None = None
) -> list[BackendEvent]:
    try:
        return await collect(b.stream_chat(model, MESSAGES, options or ChatOptions()))
    finally:
        await b.aclose()


async def chat_error(
    b: OpenAICompatBackend, model: str = "llama3.2"
) -> tuple[list[BackendEvent], RouteError]:
    seen: list[BackendEvent] = []
    try:
        async for event in b.stream_chat(model, MESSAGES, ChatOptions()):
            seen.append(event)
    except RouteError as exc:
        return seen, exc
    finally:
        await b.aclose()
    raise AssertionError(f"no RouteError; events: {seen}")


async def listed(b: OpenAICompatBackend) -> list[ModelInfo]:
    try:
        return await b.list_models()
    finally:
        await b.aclose()


async def checked(b: OpenAICompatBackend) -> Health:
    try:
        return await b.health()
    finally:
        await b.aclose()


def assert_no_key(err: RouteError) -> None:
    for text in (err.message, err.hint, repr(err), str(err), err.one_line()):
        assert KEY not in text


# ---- construction and listing -------------------------------------------------------------------


def test_route_id_kind_locality_by_host() -> None:
    local = OpenAICompatBackend("lmstudio", "http://127.0.0.1:1234/v1", None)
    lan = OpenAICompatBackend("box", "http://192.168.1.9:8000/v1", None)
    cloud = OpenAICompatBackend("groq", "https://api.groq.com/openai/v1", KEY)
    try:
        assert (local.kind, local.route_id, cloud.route_id) == (
            "openai",
            "openai@lmstudio",
            "openai@groq",
        )
        assert isinstance(cloud, Backend)
        assert local.locality_of("m") is Locality.LOCAL
        assert lan.locality_of("m") is Locality.SELF_HOSTED
        assert cloud.locality_of("m") is Locality.CLOUD
        assert KEY not in repr(cloud)
    finally:
        for b in (local, lan, cloud):
            run(b.aclose())


def test_list_models_refs_round_trip(server: OllamaServer) -> None:
    models = run(listed(backend_for(server.url + "/v1")))
    assert [m.name for m in models] == [s.name for s in server.models]
    first = models[0]
    assert first.ref == ModelRef("openai", "lab", server.models[0].name)
    assert ModelRef.parse(str(first.ref)) == first.ref
    assert (first.source, first.locality, first.provider) == ("openai", Locality.LOCAL, "lab")
    rec = server.requests_to("/v1/models")[0]
    assert rec.headers["authorization"] == f"Bearer {KEY}"


def test_null_data_is_an_empty_list(server: OllamaServer) -> None:
    server.set_models([])
    assert run(listed(backend_for(server.url + "/v1"))) == []


def test_list_on_a_non_openai_root_says_check_the_url(server: OllamaServer) -> None:
    async def go() -> RouteError:
        b = backend_for(server.url)  # missing /v1: the server answers a plain-text 404
        try:
            with pytest.raises(RouteError) as info:
                await b.list_models()
            return info.value
        finally:
            await b.aclose()

    err = run(go())
    assert err.kind is ErrorKind.BAD_REQUEST and err.status == 404 and "/v1" in err.hint


# ---- health -------------------------------------------------------------------------------------


def test_health_ok_and_down(server: OllamaServer) -> None:
    h = run(checked(backend_for(server.url + "/v1")))
    assert h.ok and h.model_count == len(server.models) and h.route_id == "openai@lab"
    assert re.fullmatch(rf"lab \(127\.0\.0\.1:{server.port}\) · 4 models · \d+ ms", h.detail)
    server.fail_next(500, "overloaded", times=3)
    failing = run(checked(backend_for(server.url + "/v1", max_retries=3)))
    assert not failing.ok and "overloaded" in failing.detail
    # Health never retries, whatever the chat retry setting: one quick answer for the UI.
    assert len(server.requests_to("/v1/models")) == 2
    server.stop()
    down = run(checked(backend_for(server.url + "/v1")))
    refused = f"Connection refused at 127.0.0.1:{server.port}"
    assert not down.ok
    assert down.detail == f"{refused} — is the server running, and is the port right?"


def test_health_rejected_key_is_auth_failed_without_the_key(server: OllamaServer) -> None:
    server.fail_next(401, f"Incorrect API key provided: {KEY}")
    h = run(checked(backend_for(server.url + "/v1")))
    assert not h.ok and "API key rejected" in h.detail and KEY not in h.detail


# ---- chat ---------------------------------------------------------------------------------------


def test_stream_yields_started_deltas_done_with_exact_usage(server: OllamaServer) -> None:
    events = run(chat_events(backend_for(server.url + "/v1")))
    expected = reply_text("llama3.2", PROMPT)
    assert events[0] == BackendStarted(answered_model="llama3.2", provider="lab")
    deltas = [e.text for e in events if isinstance(e, BackendDelta)]
    assert deltas == tokenize(expected)
    done = events[-1]
    assert isinstance(done, BackendDone) and done.exact_tokens and done.done_reason == "stop"
    assert (done.prompt_tokens, done.response_tokens) == (prompt_tokens(WIRE), len(deltas))
    sent = server.requests_to("/v1/chat/completions")[0].json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == WIRE and "response_format" not in sent


def test_json_schema_asks_for_json_mode_and_temperature_is_sent(server: OllamaServer) -> None:
    options = ChatOptions(json_schema={"type": "object"}, temperature=0.1)
    events = run(chat_events(backend_for(server.url + "/v1"), options=options))
    sent = server.requests_to("/v1/chat/completions")[0].json
    assert sent["response_format"] == {"type": "json_object"} and sent["temperature"] == 0.1
    text = "".join(e.text for e in events if isinstance(e, BackendDelta))
    assert text == server.expected_reply("llama3.2", WIRE, "json")


def test_unknown_model_is_model_not_found(server: OllamaServer) -> None:
    seen, err = run(chat_error(backend_for(server.url + "/v1"), "ghost"))
    assert seen == [] and err.kind is ErrorKind.MODEL_NOT_FOUND and err.status == 404
    assert err.message == f"model 'ghost' not found on 127.0.0.1:{server.port}"


def test_midstream_failure_without_finish_reason_is_stream_dropped(server: OllamaServer) -> None:
    server.error_after(2)
    seen, err = run(chat_error(backend_for(server.url + "/v1")))
    assert [type(e) for e in seen] == [BackendStarted, BackendDelta, BackendDelta]
    assert err.kind is ErrorKind.STREAM_DROPPED


def test_dropped_connection_is_stream_dropped(server: OllamaServer) -> None:
    server.drop_after(3)
    seen, err = run(chat_error(backend_for(server.url + "/v1")))
    assert len([e for e in seen if isinstance(e, BackendDelta)]) == 3
    assert err.kind is ErrorKind.STREAM_DROPPED


def test_server_error_is_retried_a_bounded_number_of_times(server: OllamaServer) -> None:
    server.fail_next(500, "runner crashed", times=5)
    _, err = run(chat_error(backend_for(server.url + "/v1", max_retries=1)))
    assert err.kind is ErrorKind.SERVER and err.status == 500 and "runner crashed" in err.message
    assert len(server.requests_to("/v1/chat/completions")) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (422, ErrorKind.BAD_REQUEST),
        (429, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH_FAILED),
        (403, ErrorKind.AUTH_FAILED),
        (503, ErrorKind.SERVER),
    ],
)
def test_status_errors_map_and_never_repeat_the_key(
    server: OllamaServer, status: int, kind: ErrorKind
) -> None:
    server.fail_next(status, f"Incorrect API key provided: {KEY}")
    _, err = run(chat_error(backend_for(server.url + "/v1")))
    assert err.kind is kind and err.status == status
    assert_no_key(err)


def test_auth_failure_message_says_api_key_rejected(server: OllamaServer) -> None:
    server.fail_next(401, "invalid api key")
    _, err = run(chat_error(backend_for(server.url + "/v1")))
    assert err.message == f"API key rejected by 127.0.0.1:{server.port} (HTTP 401)"
    server.fail_next(401, "missing api key")
    _, keyless = run(chat_error(backend_for(server.url + "/v1", api_key=None)))
    assert keyless.kind is ErrorKind.AUTH_FAILED and "requires an API key" in keyless.message
    # Keyless: no Authorization at all (not even the library's placeholder key).
    rec = server.requests_to("/v1/chat/completions")[-1]
    assert "authorization" not in rec.headers


def test_read_timeout_is_timeout(server: OllamaServer) -> None:
    server.delay_first_byte(5.0)
    _, err = run(chat_error(backend_for(server.url + "/v1", timeout=0.2)))
    assert err.kind is ErrorKind.TIMEOUT and "within 0.2 s" in err.message
    server.delay_first_byte(0)


def test_server_down_is_connection_error(server: OllamaServer) -> None:
    server.stop()
    _, err = run(chat_error(backend_for(server.url + "/v1")))
    assert err.kind is ErrorKind.CONNECTION
    assert err.message == f"Connection refused at 127.0.0.1:{server.port}"


def test_aclose_mid_stream_closes_the_response(server: OllamaServer) -> None:
    server.set_token_delay(5.0)

    async def go() -> list[BackendEvent]:
        b = backend_for(server.url + "/v1")
        seen: list[BackendEvent] = []
        try:
            stream = b.stream_chat("llama3.2", MESSAGES, ChatOptions())
            async for event in stream:
                seen.append(event)
                if isinstance(event, BackendDelta):
                    break
            await stream.aclose()
            # Checked before the client closes (that would close every connection anyway).
            rec = await asyncio.to_thread(server.wait_closed_early)
            assert rec.path == "/v1/chat/completions" and rec.lines_sent == 1
            return seen
        finally:
            await b.aclose()

    assert [type(e) for e in run(go())] == [BackendStarted, BackendDelta]
