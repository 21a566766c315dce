"""Router logic with scripted in-process backends: event order, one usage row per attempt,
policy before I/O, fallback chain, cancel. Network behaviour is proven against the protocol
servers in test_router_e2e.py; this file pins the router's own decisions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import CancelToken, Router, same_model
from halext_desktop.routing.types import (
    BackendDelta,
    BackendDone,
    BackendEvent,
    BackendStarted,
    Cancelled,
    ChatMessage,
    ChatOptions,
    ChatRequest,
    Delta,
    Failed,
    Finished,
    Health,
    Locality,
    ModelInfo,
    RouterEvent,
    Started,
    UsageStatus,
)
from halext_desktop.routing.usage_sink import MemoryUsageSink


class ScriptedBackend:
    """Plays a script of backend events; records every call so tests can prove no I/O."""

    def __init__(
        self,
        kind: str,
        route_id: str,
        script: list[BackendEvent | RouteError],
        locality: Locality = Locality.LOCAL,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.kind = kind
        self.route_id = route_id
        self.base_url = "scripted://"
        self.script = script
        self.locality = locality
        self.calls: list[str] = []
        self.closed = False
        self.gate = gate
        # What the server itself lists (model -> locality); None: it re-routes nothing.
        self.listed: dict[str, Locality] | None = None
        self.pollable = True
        self.context: int | None = None  # what context_length answers

    async def list_models(self) -> list[ModelInfo]:
        self.calls.append("list")
        return [
            ModelInfo(
                ModelRef.parse(f"{self.route_id}/m"), "m", self.kind, self.kind, self.locality
            )
        ]

    async def health(self) -> Health:
        self.calls.append("health")
        return Health(self.route_id, True)

    async def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        self.calls.append(f"chat:{model}")
        try:
            for i, item in enumerate(self.script):
                if isinstance(item, RouteError):
                    raise item
                if self.gate is not None and i == 2:
                    await self.gate.wait()
                yield item
                await asyncio.sleep(0)
        finally:
            self.closed = True

    def locality_of(self, model: str) -> Locality:
        if self.kind == "halext" and model.startswith(("openai:", "gemini:")):
            return Locality.CLOUD
        return self.locality

    async def context_length(self, model: str) -> int | None:
        self.calls.append(f"context:{model}")
        return self.context

    async def listed_locality(self, model: str) -> Locality | None:
        self.calls.append(f"listed:{model}")
        if self.listed is None:
            return self.locality_of(model)
        return self.listed.get(model)

    def may_poll(self) -> bool:
        return self.pollable

    async def aclose(self) -> None:
        pass


def ok_script(model: str, text: list[str]) -> list[BackendEvent | RouteError]:
    return [
        BackendStarted(model),
        *[BackendDelta(t) for t in text],
        BackendDone(prompt_tokens=3, response_tokens=len(text), exact_tokens=True),
    ]


def run(router: Router, ref: str, cancel: CancelToken | None = None) -> list[RouterEvent]:
    async def go() -> list[RouterEvent]:
        req = ChatRequest(ModelRef.parse(ref), (ChatMessage("user", "hello there"),))
        return [e async for e in router.stream(req, cancel)]

    return asyncio.run(go())


def make_router(*backends: ScriptedBackend, policy: Policy | None = None, fallbacks=None):
    sink = MemoryUsageSink()
    router = Router(
        {b.route_id: b for b in backends},
        lambda: policy or Policy(),
        sink,
        fallbacks=(lambda: [ModelRef.parse(f) for f in fallbacks]) if fallbacks else list,
    )
    return router, sink


def test_success_event_order_and_one_exact_usage_row() -> None:
    b = ScriptedBackend("ollama", "ollama", ok_script("llama3.1:8b", ["Hel", "lo"]))
    router, sink = make_router(b)
    events = run(router, "ollama/llama3.1:8b")
    assert [type(e) for e in events] == [Started, Delta, Delta, Finished]
    fin = events[-1]
    assert isinstance(fin, Finished) and fin.text == "Hello"
    assert len(sink.rows) == 1
    row = sink.rows[0]
    assert row.status is UsageStatus.OK
    assert row.model_identifier == "ollama/llama3.1:8b"
    assert (row.prompt_tokens, row.response_tokens, row.total_tokens) == (3, 2, 5)
    assert row.tokens_exact and row.ttft_ms is not None and row.route == "ollama"
    assert row.endpoint == "/api/chat"


def test_cloud_refused_before_any_io_and_logged_blocked() -> None:
    b = ScriptedBackend("halext", "halext", ok_script("openai:gpt-4o-mini", ["x"]))
    router, sink = make_router(b, policy=Policy(disable_cloud=True))
    events = run(router, "halext/openai:gpt-4o-mini")
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert events[0].error.kind is ErrorKind.BLOCKED
    assert b.calls == []
    assert [r.status for r in sink.rows] == [UsageStatus.BLOCKED]


def test_offline_refuses_halext_without_io() -> None:
    b = ScriptedBackend("halext", "halext", ok_script("ollama:llama3", ["x"]), Locality.SELF_HOSTED)
    router, sink = make_router(b, policy=Policy(offline=True))
    events = run(router, "halext/ollama:llama3")
    assert isinstance(events[-1], Failed) and events[-1].error.kind is ErrorKind.BLOCKED
    assert b.calls == []
    listing = asyncio.run(router.list_models())
    assert "halext" in listing.skipped and b.calls == []


def test_halext_reply_revealing_cloud_model_is_discarded() -> None:
    # Asked a self-hosted model, but the header says the server answered with OpenAI.
    script = ok_script("openai:gpt-4o-mini", ["secret", " reply"])
    b = ScriptedBackend("halext", "halext", script, Locality.SELF_HOSTED)
    router, sink = make_router(b, policy=Policy(disable_cloud=True))
    events = run(router, "halext/ollama:llama3")
    assert not any(isinstance(e, Delta) for e in events)
    assert isinstance(events[-1], Failed) and events[-1].error.kind is ErrorKind.BLOCKED
    assert events[-1].partial_text == ""
    assert b.closed
    assert [r.status for r in sink.rows] == [UsageStatus.BLOCKED]


def test_server_substitution_is_reported_in_a_note() -> None:
    b = ScriptedBackend(
        "halext", "halext", ok_script("mock:llama3.1", ["hi"]), Locality.SELF_HOSTED
    )
    router, _ = make_router(b)
    events = run(router, "halext/ollama:nope")
    started = events[0]
    assert isinstance(started, Started)
    assert started.answered == ModelRef.parse("halext/mock:llama3.1")
    assert any("mock:llama3.1" in n and "ollama:nope" in n for n in started.notes)


def test_dropped_stream_keeps_partial_and_writes_error_row() -> None:
    script = ok_script("m", ["part", "ial"])[:3] + [
        RouteError(ErrorKind.STREAM_DROPPED, "connection lost")
    ]
    b = ScriptedBackend("ollama", "ollama", script)
    router, sink = make_router(b)
    events = run(router, "ollama/m")
    fail = events[-1]
    assert isinstance(fail, Failed) and fail.partial_text == "partial"
    assert [r.status for r in sink.rows] == [UsageStatus.ERROR]
    assert sink.rows[0].error == "connection lost"


def test_fallback_answers_when_primary_fails_before_first_token() -> None:
    primary = ScriptedBackend(
        "ollama", "ollama@studio", [RouteError(ErrorKind.CONNECTION, "refused at studio")]
    )
    backup = ScriptedBackend("ollama", "ollama", ok_script("llama3.1:8b", ["ok"]))
    router, sink = make_router(primary, backup, fallbacks=["ollama/llama3.1:8b"])
    events = run(router, "ollama@studio/qwen")
    started = next(e for e in events if isinstance(e, Started))
    assert started.answered.route_id == "ollama"
    assert any("Fallback" in n and "refused at studio" in n for n in started.notes)
    assert isinstance(events[-1], Finished)
    assert [r.status for r in sink.rows] == [UsageStatus.ERROR, UsageStatus.OK]


def test_fallback_skips_routes_policy_refuses() -> None:
    primary = ScriptedBackend("ollama", "ollama", [RouteError(ErrorKind.CONNECTION, "down")])
    cloud = ScriptedBackend("halext", "halext", ok_script("openai:gpt-4o", ["x"]))
    router, sink = make_router(
        primary, cloud, policy=Policy(disable_cloud=True), fallbacks=["halext/openai:gpt-4o"]
    )
    events = run(router, "ollama/m")
    assert isinstance(events[-1], Failed) and events[-1].error.kind is ErrorKind.CONNECTION
    assert cloud.calls == []


def test_no_fallback_after_output_started() -> None:
    script = ok_script("m", ["a"])[:2] + [RouteError(ErrorKind.STREAM_DROPPED, "gone")]
    primary = ScriptedBackend("ollama", "ollama", script)
    backup = ScriptedBackend("ollama", "ollama@b", ok_script("m", ["b"]))
    router, _ = make_router(primary, backup, fallbacks=["ollama@b/m"])
    events = run(router, "ollama/m")
    assert isinstance(events[-1], Failed) and backup.calls == []


def test_cancel_mid_stream_closes_backend_and_writes_cancelled_row() -> None:
    gate = asyncio.Event  # created inside the loop below

    async def go() -> tuple[list[RouterEvent], ScriptedBackend, MemoryUsageSink]:
        g = gate()
        b = ScriptedBackend("ollama", "ollama", ok_script("m", ["one ", "two ", "three"]), gate=g)
        router, sink = make_router(b)
        token = CancelToken()
        events: list[RouterEvent] = []
        req = ChatRequest(ModelRef.parse("ollama/m"), (ChatMessage("user", "x"),))
        async for e in router.stream(req, token):
            events.append(e)
            if isinstance(e, Delta):
                token.cancel()  # the backend is blocked on the gate: only cancel can end it
        return events, b, sink

    events, b, sink = asyncio.run(go())
    assert isinstance(events[-1], Cancelled)
    assert events[-1].partial_text == "one "
    assert b.closed
    assert [r.status for r in sink.rows] == [UsageStatus.CANCELLED]


def test_stop_from_another_thread_interrupts_the_read_in_progress() -> None:
    """The backend waits for its next chunk (the server stalls): Stop, pressed on another
    thread, cancels that read (so the backend's finally closes the stream), the reply ends
    as Cancelled with what arrived, and the consuming task goes on uncancelled."""

    async def go() -> tuple[list[RouterEvent], ScriptedBackend, MemoryUsageSink, int]:
        g = asyncio.Event()  # never set: only Stop can end the read
        b = ScriptedBackend("ollama", "ollama", ok_script("m", ["one ", "two ", "three"]), gate=g)
        router, sink = make_router(b)
        token = CancelToken()
        events: list[RouterEvent] = []
        req = ChatRequest(ModelRef.parse("ollama/m"), (ChatMessage("user", "x"),))
        loop = asyncio.get_running_loop()
        stopper = None
        async for e in router.stream(req, token):
            events.append(e)
            if isinstance(e, Delta) and stopper is None:
                stopper = loop.run_in_executor(None, token.cancel)
        assert stopper is not None
        await stopper
        await asyncio.sleep(0)  # the task is not left cancelling
        task = asyncio.current_task()
        assert task is not None
        return events, b, sink, task.cancelling()

    events, b, sink, cancelling = asyncio.run(go())
    assert isinstance(events[-1], Cancelled) and events[-1].partial_text == "one "
    assert b.closed and cancelling == 0
    assert [r.status for r in sink.rows] == [UsageStatus.CANCELLED]


def test_streaming_makes_no_task_per_chunk() -> None:
    """The router awaits the backend's stream itself: a 500-chunk reply creates no task per
    chunk (it used to create two and wait on both, three loop turns a chunk)."""
    text = [f"w{i} " for i in range(500)]

    async def go() -> tuple[list[RouterEvent], int]:
        loop = asyncio.get_running_loop()
        created = 0
        default = loop.get_task_factory()

        def counting(lp: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Future[Any]:
            nonlocal created
            created += 1
            if default is not None:
                return default(lp, coro, **kw)
            return asyncio.Task(coro, loop=lp, **kw)

        loop.set_task_factory(counting)  # type: ignore[arg-type]
        router, _ = make_router(ScriptedBackend("ollama", "ollama", ok_script("m", text)))
        req = ChatRequest(ModelRef.parse("ollama/m"), (ChatMessage("user", "x"),))
        try:
            events = [e async for e in router.stream(req)]
        finally:
            loop.set_task_factory(default)
        return events, created

    events, created = asyncio.run(go())
    assert isinstance(events[-1], Finished) and events[-1].text == "".join(text)
    assert created <= 2


def test_context_length_comes_from_the_route_and_never_from_a_refused_one() -> None:
    local = ScriptedBackend("ollama", "ollama", ok_script("m", ["x"]))
    local.context = 4096
    cloud = ScriptedBackend("halext", "halext", ok_script("m", ["x"]), locality=Locality.CLOUD)
    cloud.context = 128000
    router, _ = make_router(local, cloud, policy=Policy(disable_cloud=True))

    async def go() -> tuple[int | None, ...]:
        return (
            await router.context_length(ModelRef.parse("ollama/m")),
            await router.context_length(ModelRef.parse("halext/openai:gpt-4o")),
            await router.context_length(ModelRef.parse("ollama@nowhere/m")),
        )

    assert asyncio.run(go()) == (4096, None, None)
    assert local.calls == ["context:m"] and cloud.calls == []


def test_unknown_route_fails_clearly() -> None:
    router, sink = make_router()
    events = run(router, "ollama@nowhere/m")
    assert isinstance(events[-1], Failed)
    assert events[-1].error.kind is ErrorKind.NOT_CONFIGURED
    assert "nowhere" in events[-1].error.message
    assert len(sink.rows) == 1


@pytest.mark.parametrize(
    ("asked", "answered", "same"),
    [
        ("llama3.2", "llama3.2:latest", True),
        ("ollama:llama3", "ollama:llama3:latest", True),
        ("ollama-local:x", "ollama:x", True),
        ("ollama:x", "mock:llama3.1", False),
        ("client:3:qwen2.5:7b", "client:3:qwen2.5:7b", True),
    ],
)
def test_same_model(asked: str, answered: str, same: bool) -> None:
    assert same_model(asked, answered) is same


# ---- issue 8: what happened, exactly ------------------------------------------------------------


def test_refused_request_says_it_was_not_sent_and_costs_no_tokens() -> None:
    b = ScriptedBackend("halext", "halext", ok_script("openai:gpt-4o-mini", ["x"]))
    router, sink = make_router(b, policy=Policy(disable_cloud=True))
    (failed,) = run(router, "halext/openai:gpt-4o-mini")
    assert isinstance(failed, Failed) and failed.not_sent == "cloud providers are disabled"
    (row,) = sink.rows
    assert (row.prompt_tokens, row.response_tokens, row.latency_ms) == (0, 0, 0)
    offline_router, offline_sink = make_router(b, policy=Policy(offline=True))
    (failed,) = run(offline_router, "halext/openai:gpt-4o-mini")
    assert isinstance(failed, Failed) and failed.not_sent == "offline mode"
    assert offline_sink.rows[0].total_tokens == 0


def test_unlisted_id_is_refused_with_cloud_off_and_sent_with_cloud_on() -> None:
    b = ScriptedBackend("halext", "halext", ok_script("client:1:m", ["x"]), Locality.SELF_HOSTED)
    b.listed = {"client:3:m": Locality.SELF_HOSTED}
    router, sink = make_router(b, policy=Policy(disable_cloud=True))
    (failed,) = run(router, "halext/client:1:m")
    assert isinstance(failed, Failed) and failed.error.kind is ErrorKind.BLOCKED
    assert b.calls == ["listed:client:1:m"]  # asked, never sent
    assert sink.rows[0].status is UsageStatus.BLOCKED and sink.rows[0].total_tokens == 0
    open_router, _ = make_router(b, policy=Policy())
    assert isinstance(run(open_router, "halext/client:1:m")[-1], Finished)
    assert b.calls[-1] == "chat:client:1:m"  # cloud allowed: no listing asked first


def test_unlisted_fallback_is_skipped_and_a_listing_failure_falls_back() -> None:
    halext = ScriptedBackend(
        "halext", "halext", ok_script("client:9:m", ["x"]), Locality.SELF_HOSTED
    )
    halext.listed = {}
    local = ScriptedBackend("ollama", "ollama", ok_script("m", ["ok"]))
    router, _ = make_router(
        halext, local, policy=Policy(disable_cloud=True), fallbacks=["halext/client:9:m"]
    )
    local.script = [RouteError(ErrorKind.CONNECTION, "down")]
    events = run(router, "ollama/m")
    # The primary failed; the fallback is unlisted: refused, never sent; the real failure wins.
    assert isinstance(events[-1], Failed) and events[-1].error.kind is ErrorKind.CONNECTION
    assert "chat:client:9:m" not in halext.calls


def test_placeholder_reply_fails_with_its_own_status() -> None:
    b = ScriptedBackend(
        "halext", "halext", ok_script("mock:llama3.1", ["I am a mock"]), Locality.SELF_HOSTED
    )
    router, sink = make_router(b)
    events = run(router, "halext/ollama:nope")
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error.kind is ErrorKind.PLACEHOLDER
    assert failed.partial_text == "I am a mock" and failed.not_sent is None
    (row,) = sink.rows
    assert row.status is UsageStatus.PLACEHOLDER
    assert (row.model_identifier, row.requested_model) == (
        "halext/mock:llama3.1",
        "halext/ollama:nope",
    )
    # Ollama has no placeholder: a model called "mock:..." there is just a model.
    local = ScriptedBackend("ollama", "ollama", ok_script("mock:latest", ["hi"]))
    router, _ = make_router(local)
    assert isinstance(run(router, "ollama/mock:latest")[-1], Finished)


def test_a_route_that_refuses_credentials_is_logged_as_the_routes_error() -> None:
    b = ScriptedBackend(
        "halext",
        "halext",
        [RouteError(ErrorKind.SIGNED_OUT, "Signed out of halext (session expired)", status=401)],
        Locality.SELF_HOSTED,
    )
    router, sink = make_router(b)
    run(router, "halext/ollama:llama3")
    (row,) = sink.rows
    assert (row.model_identifier, row.requested_model) == ("halext", "halext/ollama:llama3")
    assert (row.status, row.prompt_tokens) == (UsageStatus.ERROR, 0)


def test_background_health_skips_routes_that_may_not_be_polled() -> None:
    halext = ScriptedBackend("halext", "halext", [], Locality.SELF_HOSTED)
    halext.pollable = False
    local = ScriptedBackend("ollama", "ollama", [])
    router, _ = make_router(halext, local)
    healths = asyncio.run(router.health_all())
    assert [h.route_id for h in healths] == ["ollama"] and halext.calls == []
