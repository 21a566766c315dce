"""One contract, every backend: what the router relies on, checked against each backend's
protocol test server over real HTTP on 127.0.0.1.

Each backend kind gets a small factory (a context manager yielding a BackendCase) that starts
its server and knows how to script that server's faults. Add a kind by writing a factory and
listing it in CASES — the tests themselves do not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.halext import HalextBackend, token_secret_name
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
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
    ModelInfo,
)
from halext_desktop.storage.secrets import MemorySecretStore
from tests.helpers.aio import collect, run
from tests.servers.halext_server import HalextServer, reply_chunks
from tests.servers.halext_server import expected_reply as halext_expected
from tests.servers.ollama_server import OllamaServer

MESSAGES = [ChatMessage("system", "answer briefly"), ChatMessage("user", "name three colours")]


@dataclass
class BackendCase:
    """A running protocol server plus everything a contract test needs to drive it.

    Attributes:
        kind: the backend kind under test.
        make_backend: builds a fresh backend pointed at the server (call inside the coroutine
            you run: its HTTP pools belong to that event loop).
        model: a model id the server serves.
        missing_model: a model id the server does not know.
        expected_text: the exact reply text the server streams for ``MESSAGES`` to ``model``.
        fail_after: make the next stream fail after n content chunks (server-specific way).
        slow_stream: pause between streamed chunks (seconds; 0 turns it off).
        wait_closed_early: block until the server saw a client leave mid-stream.
        stop_server: take the server down (the port stays known, nothing listens).
    """

    kind: str
    make_backend: Callable[[], Backend]
    model: str
    missing_model: str
    expected_text: str
    fail_after: Callable[[int], None]
    slow_stream: Callable[[float], None]
    wait_closed_early: Callable[[], Any]
    stop_server: Callable[[], None]
    # halext never says "model not found": it answers 200 with another model (api doc §4).
    silent_fallback: bool = False


def _wire(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


@contextmanager
def ollama_case() -> Iterator[BackendCase]:
    with OllamaServer() as server:
        yield BackendCase(
            kind="ollama",
            make_backend=lambda: OllamaBackend("local", server.url, is_default=True),
            model="llama3.2:latest",
            missing_model="ghost:7b",
            expected_text=server.expected_reply("llama3.2:latest", _wire(MESSAGES)),
            fail_after=lambda n: server.error_after(n),
            slow_stream=server.set_token_delay,
            wait_closed_early=server.wait_closed_early,
            stop_server=server.stop,
        )
    assert server.errors == []


@contextmanager
def openai_case() -> Iterator[BackendCase]:
    # Ollama's /v1 is a faithful OpenAI-compatible server, including its quirk of ending a
    # failed stream without a finish chunk (the backend must call that a dropped stream).
    with OllamaServer() as server:
        yield BackendCase(
            kind="openai",
            make_backend=lambda: OpenAICompatBackend(
                "lab", server.url + "/v1", "sk-contract", max_retries=0
            ),
            model="qwen2.5:7b",
            missing_model="ghost",
            expected_text=server.expected_reply("qwen2.5:7b", _wire(MESSAGES)),
            fail_after=lambda n: server.error_after(n),
            slow_stream=server.set_token_delay,
            wait_closed_early=server.wait_closed_early,
            stop_server=server.stop,
        )
    assert server.errors == []


@contextmanager
def halext_case() -> Iterator[BackendCase]:
    with HalextServer() as server:
        store = MemorySecretStore()
        store.set(token_secret_name(server.url), server.issue_token("dev"))
        model = "ollama:llama3.1:8b"
        yield BackendCase(
            kind="halext",
            make_backend=lambda: HalextBackend(server.url, store, username="dev"),
            model=model,
            missing_model="ollama:ghost:7b",
            expected_text=halext_expected(model, MESSAGES[-1].content),
            # The server never reports a failure in-stream (it appends the mock text); a
            # broken connection is the failure a client can see.
            fail_after=lambda n: server.stream_script(
                reply_chunks(halext_expected(model, MESSAGES[-1].content)), drop_after=n
            ),
            slow_stream=server.set_chunk_delay,
            wait_closed_early=server.wait_closed_early,
            stop_server=server.stop,
            silent_fallback=True,
        )
    assert server.errors == []


CASES: dict[str, Callable[[], AbstractContextManager[BackendCase]]] = {
    "ollama": ollama_case,
    "openai": openai_case,
    "halext": halext_case,
}


@pytest.fixture(params=sorted(CASES))
def backend_case(request: pytest.FixtureRequest) -> Iterator[BackendCase]:
    with CASES[request.param]() as case:
        yield case


async def _events(backend: Backend, model: str) -> list[BackendEvent]:
    try:
        return await collect(backend.stream_chat(model, MESSAGES, ChatOptions()))
    finally:
        await backend.aclose()


async def _failure(backend: Backend, model: str) -> tuple[list[BackendEvent], RouteError]:
    seen: list[BackendEvent] = []
    try:
        async for event in backend.stream_chat(model, MESSAGES, ChatOptions()):
            seen.append(event)
    except RouteError as exc:
        return seen, exc
    finally:
        await backend.aclose()
    raise AssertionError(f"{backend.kind}: no RouteError; events: {seen}")


def _is_one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and "\r" not in text


# ---- the contract -------------------------------------------------------------------------------


def test_backend_satisfies_the_protocol(backend_case: BackendCase) -> None:
    backend = backend_case.make_backend()
    try:
        assert isinstance(backend, Backend) and backend.kind == backend_case.kind
        assert backend.route_id.split("@")[0] == backend.kind
    finally:
        run(backend.aclose())


def test_list_models_refs_round_trip(backend_case: BackendCase) -> None:
    async def go() -> tuple[list[ModelInfo], str]:
        backend = backend_case.make_backend()
        try:
            return await backend.list_models(), backend.route_id
        finally:
            await backend.aclose()

    models, route_id = run(go())
    assert models and all(isinstance(m, ModelInfo) for m in models)
    for info in models:
        assert ModelRef.parse(str(info.ref)) == info.ref
        assert info.ref.route_id == route_id and info.ref.kind == backend_case.kind
    assert backend_case.model in [m.ref.model for m in models]


def test_health_ok_has_a_detail(backend_case: BackendCase) -> None:
    async def go() -> Health:
        backend = backend_case.make_backend()
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    health = run(go())
    assert health.ok and _is_one_line(health.detail) and health.latency_ms is not None


def test_stream_is_started_once_exact_deltas_then_done_last(backend_case: BackendCase) -> None:
    events = run(_events(backend_case.make_backend(), backend_case.model))
    assert isinstance(events[0], BackendStarted) and events[0].answered_model
    assert sum(isinstance(e, BackendStarted) for e in events) == 1
    assert isinstance(events[-1], BackendDone)
    assert sum(isinstance(e, BackendDone) for e in events) == 1
    deltas = events[1:-1]
    assert deltas and all(isinstance(e, BackendDelta) and e.text for e in deltas)
    assert "".join(e.text for e in deltas) == backend_case.expected_text  # type: ignore[union-attr]


def test_unknown_model_is_model_not_found(backend_case: BackendCase) -> None:
    if backend_case.silent_fallback:
        # No error exists to raise: the backend must instead report what really answered.
        events = run(_events(backend_case.make_backend(), backend_case.missing_model))
        answered = {e.answered_model for e in events if isinstance(e, BackendDone)}
        assert answered and backend_case.missing_model not in answered
        return
    seen, err = run(_failure(backend_case.make_backend(), backend_case.missing_model))
    assert seen == [] and err.kind is ErrorKind.MODEL_NOT_FOUND
    assert backend_case.missing_model in err.message and _is_one_line(err.message)


def test_server_down_is_a_connection_error_in_one_line(backend_case: BackendCase) -> None:
    backend_case.stop_server()
    seen, err = run(_failure(backend_case.make_backend(), backend_case.model))
    assert seen == [] and err.kind is ErrorKind.CONNECTION
    assert _is_one_line(err.message) and _is_one_line(err.one_line())


def test_health_when_down_is_reported_not_raised(backend_case: BackendCase) -> None:
    backend_case.stop_server()

    async def go() -> Health:
        backend = backend_case.make_backend()
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    health = run(go())
    assert not health.ok and _is_one_line(health.detail)


def test_midstream_failure_is_stream_dropped_after_the_first_deltas(
    backend_case: BackendCase,
) -> None:
    backend_case.fail_after(2)
    seen, err = run(_failure(backend_case.make_backend(), backend_case.model))
    assert isinstance(seen[0], BackendStarted)
    deltas = [e for e in seen if isinstance(e, BackendDelta)]
    assert len(deltas) == 2 and backend_case.expected_text.startswith(
        "".join(d.text for d in deltas)
    )
    assert not any(isinstance(e, BackendDone) for e in seen)
    assert err.kind is ErrorKind.STREAM_DROPPED and _is_one_line(err.message)


def test_aclose_mid_stream_closes_the_connection(backend_case: BackendCase) -> None:
    backend_case.slow_stream(5.0)

    async def go() -> list[BackendEvent]:
        backend = backend_case.make_backend()
        seen: list[BackendEvent] = []
        try:
            stream = backend.stream_chat(backend_case.model, MESSAGES, ChatOptions())
            async for event in stream:
                seen.append(event)
                if isinstance(event, BackendDelta):
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            # While the backend is still open: closing it would close every connection anyway.
            await asyncio.to_thread(backend_case.wait_closed_early)
            return seen
        finally:
            await backend.aclose()

    seen = run(go())
    assert isinstance(seen[0], BackendStarted) and isinstance(seen[-1], BackendDelta)
    backend_case.slow_stream(0)
