"""OllamaBackend against the Ollama protocol test server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.ollama_backend import OllamaBackend, normalize_ollama_url
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.refs import ModelRef, ModelRefError
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
from tests.helpers.aio import collect, run
from tests.servers.ollama_server import (
    BUSY_MESSAGE,
    ModelSpec,
    OllamaServer,
    prompt_tokens,
    reply_text,
    tokenize,
)

PROMPT = "why is the sky blue"
MESSAGES = [ChatMessage("system", "be brief"), ChatMessage("user", PROMPT)]
WIRE = [{"role": m.role, "content": m.content} for m in MESSAGES]


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer() as s:
        yield s
    assert s.errors == []


def backend_for(url: str, **kwargs: object) -> OllamaBackend:
    kwargs.setdefault("is_default", True)
    return OllamaBackend("local", url, **kwargs)  # type: ignore[arg-type]


async def chat_events(
    b: OllamaBackend, model: str = "llama3.2", options: ChatOptions | None = None
) -> list[BackendEvent]:
    try:
        return await collect(b.stream_chat(model, MESSAGES, options or ChatOptions()))
    finally:
        await b.aclose()


async def chat_error(
    b: OllamaBackend, model: str = "llama3.2"
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


# ---- construction -------------------------------------------------------------------------------


def test_route_ids_kind_and_protocol() -> None:
    b = OllamaBackend("local", "http://127.0.0.1:11434", is_default=True)
    studio = OllamaBackend("studio", "http://192.168.1.20:11434", is_default=False)
    try:
        assert (b.kind, b.route_id, studio.route_id) == ("ollama", "ollama", "ollama@studio")
        assert isinstance(b, Backend)
        assert b.locality_of("llama3.2") is Locality.LOCAL
        assert studio.locality_of("llama3.2") is Locality.SELF_HOSTED
        with pytest.raises(ModelRefError):
            OllamaBackend("bad name", "http://127.0.0.1:11434", is_default=False)
    finally:
        run(b.aclose())
        run(studio.aclose())


def test_a_public_ollama_host_is_self_hosted_but_cloud_models_are_cloud() -> None:
    b = OllamaBackend("vps", "https://ollama.example.com", is_default=False)
    try:
        assert b.locality_of("llama3.2") is Locality.SELF_HOSTED
        assert b.locality_of("gpt-oss:120b-cloud") is Locality.CLOUD
        assert b.locality_of("kimi-k2:cloud") is Locality.CLOUD
    finally:
        run(b.aclose())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        (":5000", "http://127.0.0.1:5000"),
        ("10.0.0.2:8080/", "http://10.0.0.2:8080"),
        ("http://studio.lan:11434/", "http://studio.lan:11434"),
        ("https://ollama.example.com", "https://ollama.example.com"),
    ],
)
def test_base_url_is_normalized_like_the_ollama_client(given: str, expected: str) -> None:
    assert normalize_ollama_url(given) == expected


# ---- listing ------------------------------------------------------------------------------------


def test_list_models_maps_tags_and_refs_round_trip(server: OllamaServer) -> None:
    async def go() -> list:
        b = backend_for(server.url)
        try:
            return await b.list_models()
        finally:
            await b.aclose()

    models = run(go())
    assert [m.name for m in models] == [s.name for s in server.models]
    first = models[0]
    spec = server.models[0]
    assert first.ref == ModelRef("ollama", None, spec.name)
    assert ModelRef.parse(str(first.ref)) == first.ref
    assert (first.provider, first.source, first.locality) == ("ollama", "ollama", Locality.LOCAL)
    assert first.size_bytes == spec.size and first.family == spec.family
    assert (first.quantization, first.parameter_size) == (spec.quantization_level, "3.2B")
    assert first.extra["digest"] == spec.digest


def test_a_server_that_reports_no_quantization_tags_no_model_with_it(
    server: OllamaServer,
) -> None:
    # Some Ollama-compatible servers say "none" (or "unknown", or "") for every model.
    server.set_models(
        [
            {"name": "plain:1b", "quantization_level": "none"},
            {"name": "other:1b", "quantization_level": "unknown"},
            {"name": "blank:1b", "quantization_level": ""},
            {"name": "real:1b", "quantization_level": "Q8_0"},
        ]
    )

    async def go() -> list:
        b = backend_for(server.url)
        try:
            return await b.list_models()
        finally:
            await b.aclose()

    quants = {m.name: m.quantization for m in run(go())}
    assert quants == {
        "plain:1b": None,
        "other:1b": None,
        "blank:1b": None,
        "real:1b": "Q8_0",
    }


def test_named_host_refs_and_cloud_models_are_marked(server: OllamaServer) -> None:
    server.set_models(
        ["llama3.2", ModelSpec("gpt-oss:120b-cloud", remote_host="https://ollama.com:443")]
    )

    async def go() -> tuple[list, Locality]:
        b = OllamaBackend("studio", server.url, is_default=False)
        try:
            return await b.list_models(), b.locality_of("gpt-oss:120b-cloud")
        finally:
            await b.aclose()

    models, later = run(go())
    assert [str(m.ref) for m in models] == [
        "ollama@studio/llama3.2:latest",
        "ollama@studio/gpt-oss:120b-cloud",
    ]
    assert [m.locality for m in models] == [Locality.LOCAL, Locality.CLOUD]
    assert models[1].extra["remote_host"] == "https://ollama.com:443"
    assert later is Locality.CLOUD


def test_model_details_reads_context_length_from_show(server: OllamaServer) -> None:
    async def go() -> tuple:
        b = backend_for(server.url)
        try:
            info = await b.model_details("qwen2.5:7b")
            again = await b.model_details("qwen2.5:7b")  # cached: no second /api/show
            with pytest.raises(RouteError) as missing:
                await b.model_details("ghost")
            raw = await b.show("llama3.2")
            return info, again, missing.value, raw
        finally:
            await b.aclose()

    info, again, missing, raw = run(go())
    assert info.context_length == 32768 and info.capabilities == ("completion", "tools")
    assert info is again and len(server.requests_to("/api/show")) == 3
    assert missing.kind is ErrorKind.MODEL_NOT_FOUND and "ghost" in missing.message
    assert raw["model_info"]["llama.context_length"] == 131072


def test_context_length_is_the_modelfiles_num_ctx_else_the_trained_length() -> None:
    """The context a model runs with: a Modelfile's ``PARAMETER num_ctx`` when it sets one
    (Ollama then uses that, not the length it was trained for)."""
    models = [ModelSpec("plain:1b", context_length=32768), ModelSpec("tuned:1b", num_ctx=4096)]
    with OllamaServer(models=models) as srv:

        async def go() -> tuple[int | None, ...]:
            b = backend_for(srv.url)
            try:
                return (
                    await b.context_length("plain:1b"),
                    await b.context_length("tuned:1b"),
                    await b.context_length("tuned:1b"),  # asked once per model
                    await b.context_length("ghost:1b"),  # not installed: unknown, no error
                )
            finally:
                await b.aclose()

        assert run(go()) == (32768, 4096, 4096, None)
        assert len(srv.requests_to("/api/show")) == 3
    assert srv.errors == []


def test_list_failures_are_route_errors(server: OllamaServer) -> None:
    server.fail_next(500, "model list cache unavailable", path="/api/tags")

    async def go() -> RouteError:
        b = backend_for(server.url)
        try:
            with pytest.raises(RouteError) as info:
                await b.list_models()
            return info.value
        finally:
            await b.aclose()

    err = run(go())
    assert err.kind is ErrorKind.SERVER and err.status == 500
    assert "model list cache unavailable" in err.message and err.route_id == "ollama"


# ---- health -------------------------------------------------------------------------------------


def test_health_ok_reports_version_count_and_latency(server: OllamaServer) -> None:
    async def go() -> Health:
        b = backend_for(server.url)
        try:
            return await b.health()
        finally:
            await b.aclose()

    h = run(go())
    assert h.ok and h.version == "0.12.3" and h.model_count == len(server.models)
    assert re.fullmatch(r"Ollama 0\.12\.3 · 4 models · \d+ ms", h.detail)


def test_health_when_server_is_down_names_the_fix() -> None:
    with OllamaServer() as s:
        url, port = s.url, s.port

    async def go(u: str) -> Health:
        b = backend_for(u)
        try:
            return await b.health()
        finally:
            await b.aclose()

    h = run(go(url))
    assert not h.ok
    assert h.detail == f"Connection refused at 127.0.0.1:{port} — is `ollama serve` running?"
    zero = run(go(f"http://0.0.0.0:{port}"))
    assert not zero.ok and "0.0.0.0 is the server's bind address" in zero.detail


def test_url_without_port_names_port_80_and_the_fix() -> None:
    """``http://host`` means port 80 (the ollama client agrees); say so, not just "host"."""
    with OllamaServer() as s:
        closed_port = s.port

    async def refused() -> httpx.ConnectError:
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://127.0.0.1:{closed_port}/")
            return info.value

    exc = run(refused())
    portless = backend_for("http://127.0.0.1")
    err = portless._error(exc, op="chat")
    assert err.kind is ErrorKind.CONNECTION
    assert err.message == "Connection refused at 127.0.0.1:80"
    assert "port 80" in err.hint and "http://127.0.0.1:11434" in err.hint
    # A bare host (no scheme) means Ollama's own port, as with OLLAMA_HOST.
    assert backend_for("127.0.0.1").netloc == "127.0.0.1:11434"
    assert backend_for("https://ollama.example.org").netloc == "ollama.example.org:443"


def test_health_with_v1_url_says_remove_v1(server: OllamaServer) -> None:
    async def go() -> Health:
        b = backend_for(server.url + "/v1")
        try:
            return await b.health()
        finally:
            await b.aclose()

    h = run(go())
    assert not h.ok and "remove /v1: Ollama's native API is at the server root" in h.detail
    assert "\n" not in h.detail


def test_health_timeout_is_reported_not_raised(server: OllamaServer) -> None:
    server.delay_first_byte(5.0)

    async def go() -> Health:
        b = backend_for(server.url, meta_timeout=httpx.Timeout(0.2, connect=1.0))
        try:
            return await b.health()
        finally:
            await b.aclose()

    h = run(go())
    assert not h.ok and h.detail.startswith(
        f"No reply from Ollama on 127.0.0.1:{server.port} within 0.2 s"
    )
    server.delay_first_byte(0)


# ---- chat ---------------------------------------------------------------------------------------


def test_stream_chat_yields_started_deltas_done_with_exact_counts(server: OllamaServer) -> None:
    events = run(chat_events(backend_for(server.url)))
    expected = reply_text("llama3.2", PROMPT)
    assert events[0] == BackendStarted(answered_model="llama3.2", provider="ollama")
    deltas = [e.text for e in events if isinstance(e, BackendDelta)]
    assert deltas == tokenize(expected) and "".join(deltas) == expected
    done = events[-1]
    assert isinstance(done, BackendDone) and done.exact_tokens and done.done_reason == "stop"
    assert (done.prompt_tokens, done.response_tokens) == (prompt_tokens(WIRE), len(deltas))
    sent = server.requests_to("/api/chat")[0].json
    assert sent["messages"] == WIRE and sent["stream"] is True
    assert "format" not in sent and "options" not in sent


def test_final_chunk_text_is_not_lost(server: OllamaServer) -> None:
    server.last_token_in_done = True
    events = run(chat_events(backend_for(server.url)))
    text = "".join(e.text for e in events if isinstance(e, BackendDelta))
    assert text == reply_text("llama3.2", PROMPT)


def test_json_schema_goes_as_format_and_temperature_as_option(server: OllamaServer) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    options = ChatOptions(json_schema=schema, temperature=0.3)
    events = run(chat_events(backend_for(server.url), options=options))
    sent = server.requests_to("/api/chat")[0].json
    assert sent["format"] == schema and sent["options"] == {"temperature": 0.3}
    text = "".join(e.text for e in events if isinstance(e, BackendDelta))
    assert text == server.expected_reply("llama3.2", WIRE, schema)


def test_num_ctx_goes_as_an_option(server: OllamaServer) -> None:
    run(chat_events(backend_for(server.url), options=ChatOptions(num_ctx=8192)))
    assert server.requests_to("/api/chat")[0].json["options"] == {"num_ctx": 8192}


def test_replies_reuse_one_connection(server: OllamaServer) -> None:
    """Each reply is read to the end of its response (the done line, then the chunked
    body's end), so the connection goes back to the pool: three replies, one TCP
    connection (a response closed unread takes its connection with it)."""

    async def go() -> list[list[BackendEvent]]:
        b = backend_for(server.url)
        try:
            return [
                await collect(b.stream_chat("llama3.2", MESSAGES, ChatOptions())) for _ in "abc"
            ]
        finally:
            await b.aclose()

    replies = run(go())
    assert all(isinstance(events[-1], BackendDone) for events in replies)
    assert len(server.requests_to("/api/chat")) == 3 and not server.closed_early
    assert server.connections == 1


def test_a_backend_makes_no_http_client_until_it_is_used(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building the routes costs a command nothing: the HTTP clients (an SSL context each)
    are made at the first request, and again after ``aclose`` (for another event loop)."""
    made: list[str] = []
    real_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: object, **kwargs: object) -> None:
        made.append("client")
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    b = backend_for(server.url)
    assert made == []
    assert run(chat_events(b))[-1] == run(chat_events(b))[-1]  # closed in between
    assert made == ["client", "client"]  # the chat client, made again after aclose


def test_unknown_model_is_model_not_found_with_pull_hint(server: OllamaServer) -> None:
    seen, err = run(chat_error(backend_for(server.url), "ghost:7b"))
    assert seen == [] and err.kind is ErrorKind.MODEL_NOT_FOUND and err.status == 404
    assert err.message == f"model 'ghost:7b' is not installed on 127.0.0.1:{server.port}"
    assert "ollama pull ghost:7b" in err.hint


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, ErrorKind.SERVER), (400, ErrorKind.BAD_REQUEST), (502, ErrorKind.SERVER)],
)
def test_http_errors_before_streaming(server: OllamaServer, status: int, kind: ErrorKind) -> None:
    server.fail_next(status, "something specific")
    seen, err = run(chat_error(backend_for(server.url)))
    assert seen == [] and err.kind is kind and err.status == status
    assert "something specific" in err.message


def test_busy_server_is_a_server_error_with_advice(server: OllamaServer) -> None:
    server.busy()
    _, err = run(chat_error(backend_for(server.url)))
    assert (
        err.kind is ErrorKind.SERVER
        and err.status == 503
        and BUSY_MESSAGE.split(".")[0] in err.message
    )


def test_midstream_error_line_is_stream_dropped_with_server_text(server: OllamaServer) -> None:
    server.error_after(2, "CUDA error: out of memory")
    seen, err = run(chat_error(backend_for(server.url)))
    assert isinstance(seen[0], BackendStarted) and len(seen) == 3
    assert err.kind is ErrorKind.STREAM_DROPPED and "CUDA error: out of memory" in err.message


def test_dropped_connection_is_stream_dropped(server: OllamaServer) -> None:
    server.drop_after(2)
    seen, err = run(chat_error(backend_for(server.url)))
    assert [type(e) for e in seen] == [BackendStarted, BackendDelta, BackendDelta]
    assert err.kind is ErrorKind.STREAM_DROPPED


@pytest.mark.parametrize("raw", ["\n", '{"done": true}\n'])
def test_bad_lines_are_a_bad_reply_not_a_raw_exception(server: OllamaServer, raw: str) -> None:
    server.raw_line_after(1, raw)
    _, err = run(chat_error(backend_for(server.url)))
    assert err.kind is ErrorKind.SERVER and "bad reply" in err.message


def test_a_chunk_with_more_than_text_is_read_by_the_library_and_its_text_kept(
    server: OllamaServer,
) -> None:
    """Plain chunks are read from the JSON as it is; a chunk with anything else (here a
    thinking piece and an unknown key) goes through the library's ChatResponse, which keeps
    its text and drops what it does not know."""
    line = (
        '{"model":"llama3.2","created_at":"2025-10-26T17:21:21.196249Z","remote_host":"x",'
        '"message":{"role":"assistant","content":" EXTRA","thinking":"hm"},"done":false}\n'
    )
    server.raw_line_after(2, line)
    events = run(chat_events(backend_for(server.url)))
    deltas = [e.text for e in events if isinstance(e, BackendDelta)]
    expected = tokenize(reply_text("llama3.2", PROMPT))
    assert deltas == [*expected[:2], " EXTRA", *expected[2:]]
    assert isinstance(events[-1], BackendDone) and events[-1].done_reason == "stop"


@pytest.mark.parametrize(
    "raw",
    [
        '{"model":"llama3.2","message":{"role":"assistant","content":5},"done":false}\n',
        '{"model":"llama3.2","message":{"content":"no role"},"done":false}\n',
        '["not", "an", "object"]\n',
    ],
)
def test_ill_typed_chunks_are_a_bad_reply(server: OllamaServer, raw: str) -> None:
    server.raw_line_after(1, raw)
    seen, err = run(chat_error(backend_for(server.url)))
    assert [type(e) for e in seen] == [BackendStarted, BackendDelta]
    assert err.kind is ErrorKind.SERVER and "bad reply" in err.message


def test_an_empty_model_name_is_refused_before_sending(server: OllamaServer) -> None:
    seen, err = run(chat_error(backend_for(server.url), ""))
    assert seen == [] and err.kind is ErrorKind.BAD_REQUEST and "model name" in err.message
    assert server.requests_to("/api/chat") == []


def test_read_timeout_is_timeout(server: OllamaServer) -> None:
    server.delay_first_byte(5.0)
    b = backend_for(server.url, timeout=httpx.Timeout(5.0, read=0.2))
    _, err = run(chat_error(b))
    assert err.kind is ErrorKind.TIMEOUT and "within 0.2 s" in err.message
    server.delay_first_byte(0)


def test_server_down_then_back_with_the_same_backend(server: OllamaServer) -> None:
    async def go() -> tuple[RouteError, list[BackendEvent]]:
        b = backend_for(server.url)
        try:
            server.stop()
            with pytest.raises(RouteError) as down:
                await collect(b.stream_chat("llama3.2", MESSAGES, ChatOptions()))
            server.start()
            return down.value, await collect(b.stream_chat("llama3.2", MESSAGES, ChatOptions()))
        finally:
            await b.aclose()

    down, events = run(go())
    assert down.kind is ErrorKind.CONNECTION
    assert down.one_line() == f"Connection refused at {server.url[7:]} — is `ollama serve` running?"
    assert isinstance(events[-1], BackendDone)


def test_proxy_variables_are_ignored_for_local_hosts(
    server: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: any request sent through it would fail to connect.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    events = run(chat_events(backend_for(server.url)))
    assert isinstance(events[-1], BackendDone)


# ---- stop / cancel ------------------------------------------------------------------------------


def test_aclose_mid_stream_closes_the_connection(server: OllamaServer) -> None:
    server.set_token_delay(5.0)

    async def go() -> list[BackendEvent]:
        b = backend_for(server.url)
        seen: list[BackendEvent] = []
        try:
            stream = b.stream_chat("llama3.2", MESSAGES, ChatOptions())
            async for event in stream:
                seen.append(event)
                if isinstance(event, BackendDelta):
                    break
            await stream.aclose()
            # Checked while the backend's HTTP client is still open: closing the client closes
            # every connection and would hide a stream that was left open.
            rec = await asyncio.to_thread(server.wait_closed_early)
            assert rec.path == "/api/chat" and rec.lines_sent == 1
            return seen
        finally:
            await b.aclose()

    seen = run(go())
    assert [type(e) for e in seen] == [BackendStarted, BackendDelta]


def test_task_cancel_mid_stream_closes_the_connection(server: OllamaServer) -> None:
    server.set_token_delay(5.0)

    async def go() -> bool:
        b = backend_for(server.url)
        first = asyncio.Event()

        async def consume() -> None:
            async for event in b.stream_chat("llama3.2", MESSAGES, ChatOptions()):
                if isinstance(event, BackendDelta):
                    first.set()

        task = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(first.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            rec = await asyncio.to_thread(server.wait_closed_early)
            assert rec.lines_sent == 1
            return task.cancelled()
        finally:
            await b.aclose()

    assert run(go())


# ---- pull ---------------------------------------------------------------------------------------


def test_embedding_models_are_marked_even_without_capabilities_in_tags() -> None:
    from halext_desktop.routing.backends.ollama_backend import OllamaBackend
    from tests.helpers.aio import run as arun
    from tests.servers.ollama_server import ModelSpec, OllamaServer

    models = [
        ModelSpec("llama3.2:latest"),
        ModelSpec("mxbai-embed-large:latest", family="bert"),
    ]
    with OllamaServer(models=models) as server:

        async def go() -> dict[str, bool]:
            backend = OllamaBackend("local", server.url, is_default=True)
            try:
                return {m.name: m.can_chat for m in await backend.list_models()}
            finally:
                await backend.aclose()

        assert arun(go()) == {"llama3.2:latest": True, "mxbai-embed-large:latest": False}
