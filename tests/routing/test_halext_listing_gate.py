"""With cloud providers disabled, the halext route sends only ids that the server's current
``/ai/models`` lists as non-cloud. The server answers an id it cannot resolve (a deactivated
node, ``openwebui:`` without OpenWebUI, a typo) with its default model — OpenAI here — so
such an id is refused before the prompt leaves. Proven from the halext server's request log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from halext_desktop.routing.backends.halext import LISTING_TTL_S, HalextBackend, token_secret_name
from halext_desktop.routing.errors import ErrorKind
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.router import UNLISTED_REASON, Router
from halext_desktop.routing.types import (
    ChatMessage,
    ChatRequest,
    Delta,
    Failed,
    Finished,
    Locality,
    RouterEvent,
    UsageStatus,
)
from halext_desktop.routing.usage_sink import MemoryUsageSink
from tests.helpers.aio import run
from tests.servers.halext_server import HalextServer, expected_reply

PROMPT = "the quarterly numbers"


class DictStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.data.get(name)

    def set(self, name: str, value: str) -> None:
        self.data[name] = value

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[HalextServer]:
    nodes = [
        {"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22},
        {"id": 4, "name": "Attic", "models": ["llama3.1:8b"], "latency_ms": 9},
    ]
    with HalextServer(client_nodes=nodes) as s:
        yield s
    assert s.errors == []


class Harness:
    """One backend and router over one event loop, so the listing cache lives across
    requests as it does in the app."""

    def __init__(self, server: HalextServer, *, disable_cloud: bool = True) -> None:
        self.store = DictStore()
        self.store.set(token_secret_name(server.url), server.issue_token("dev"))
        self.clock = Clock()
        self.backend = HalextBackend(server.url, self.store, monotonic=self.clock)
        self.sink = MemoryUsageSink()
        self.policy = Policy(disable_cloud=disable_cloud)
        self.router = Router({"halext": self.backend}, lambda: self.policy, self.sink)

    async def ask(self, model: str) -> list[RouterEvent]:
        request = ChatRequest(
            ModelRef("halext", None, model), (ChatMessage("user", PROMPT),), use_fallbacks=False
        )
        return [e async for e in self.router.stream(request)]

    def ask_once(self, model: str) -> list[RouterEvent]:
        """One request on its own event loop; the backend's connections closed after."""

        async def go() -> list[RouterEvent]:
            try:
                return await self.ask(model)
            finally:
                await self.backend.aclose()

        return run(go())


def chats(server: HalextServer) -> list[Any]:
    return [r.json for r in server.requests_to("/ai/chat/stream")]


@pytest.mark.parametrize(
    "model",
    [
        "client:1:qwen2.5:7b",  # a node that does not exist (or was deleted)
        "client:3:qwen2.5:14b",  # a real node, a model it does not have
        "openwebui:llama3",  # OpenWebUI is not configured on this server
        "ollama:qwen2.5:7bb",  # a typo
        "mock:nope",
    ],
)
def test_unlisted_id_is_refused_before_the_prompt_is_sent(server: HalextServer, model: str) -> None:
    h = Harness(server)
    events = h.ask_once(model)
    (failed,) = events
    assert isinstance(failed, Failed) and failed.error.kind is ErrorKind.BLOCKED
    assert failed.not_sent == UNLISTED_REASON
    # The message says why: the server would pick its default, which may be cloud.
    assert f"does not list {model} now" in failed.error.message
    assert "default model, which may be a cloud model" in failed.error.message
    # The server was asked for its list, and nothing else: the prompt never left.
    assert [r.route for r in server.requests] == ["/ai/models"]
    assert not any(PROMPT in r.body_bytes.decode() for r in server.requests)
    (row,) = h.sink.rows
    assert row.status is UsageStatus.BLOCKED and row.requested_model == f"halext/{model}"
    assert (row.prompt_tokens, row.response_tokens, row.latency_ms) == (0, 0, 0)


def test_what_the_server_would_do_with_it_is_a_cloud_model(server: HalextServer) -> None:
    """The reason for the rule, shown on the server itself: with cloud allowed, the same
    unlisted id is answered by OpenAI (and the header check then names it)."""
    h = Harness(server, disable_cloud=False)
    events = h.ask_once("client:1:qwen2.5:7b")
    fin = events[-1]
    assert isinstance(fin, Finished) and fin.answered is not None
    assert fin.answered.model == "openai:gpt-4o-mini"
    assert chats(server)[0]["model"] == "client:1:qwen2.5:7b"
    # With cloud allowed nothing extra is asked before the chat.
    assert server.requests_to("/ai/models") == []


def test_listed_self_hosted_id_goes_and_the_listing_is_cached_briefly(
    server: HalextServer,
) -> None:
    h = Harness(server)

    async def scenario() -> list[list[RouterEvent]]:
        try:
            first = await h.ask("client:3:qwen2.5:7b")
            second = await h.ask("ollama:llama3.1:8b")  # listed too: the cache answers
            h.clock.now += LISTING_TTL_S + 1  # the listing is old now: asked again
            third = await h.ask("client:3:qwen2.5:7b")
            return [first, second, third]
        finally:
            await h.backend.aclose()

    results = run(scenario())
    for events, model in zip(
        results, ["client:3:qwen2.5:7b", "ollama:llama3.1:8b", "client:3:qwen2.5:7b"], strict=True
    ):
        fin = events[-1]
        assert isinstance(fin, Finished) and fin.text == expected_reply(model, PROMPT)
    assert [r.route for r in server.requests] == [
        "/ai/models",
        "/ai/chat/stream",
        "/ai/chat/stream",
        "/ai/models",
        "/ai/chat/stream",
    ]


def test_a_deactivated_node_is_refused_once_the_listing_is_refreshed(
    server: HalextServer,
) -> None:
    """The realistic trigger: an admin deactivates a node a conversation still uses."""
    h = Harness(server)

    async def scenario() -> tuple[list[RouterEvent], list[RouterEvent]]:
        try:
            before = await h.ask("client:4:llama3.1:8b")
            server.set_node(4, is_active=False)
            h.clock.now += LISTING_TTL_S + 1
            after = await h.ask("client:4:llama3.1:8b")
            return before, after
        finally:
            await h.backend.aclose()

    before, after = run(scenario())
    assert isinstance(before[-1], Finished)
    assert isinstance(after[-1], Failed) and after[-1].error.kind is ErrorKind.BLOCKED
    assert [b["model"] for b in chats(server)] == ["client:4:llama3.1:8b"]


def test_an_id_missing_from_a_fresh_cache_is_asked_again(server: HalextServer) -> None:
    """A node added a moment ago is found: a miss refreshes the listing even when young."""
    h = Harness(server)

    async def scenario() -> list[RouterEvent]:
        try:
            await h.ask("client:3:qwen2.5:7b")
            server.set_node(3, models=["qwen2.5:7b", "phi3:mini"])
            return await h.ask("client:3:phi3:mini")
        finally:
            await h.backend.aclose()

    events = run(scenario())
    assert isinstance(events[-1], Finished)
    assert [r.route for r in server.requests].count("/ai/models") == 2


def test_ids_listed_as_cloud_are_refused_and_the_header_check_stays(
    server: HalextServer,
) -> None:
    h = Harness(server)

    async def scenario() -> tuple[list[RouterEvent], list[RouterEvent]]:
        try:
            listed_cloud = await h.ask("openai:gpt-4o")
            # Second line of defence: a listed self-hosted id that the server nevertheless
            # answers with a cloud model is stopped and discarded.
            server.stream_script(["leaked ", "text"], model="gemini:gemini-2.5-flash")
            rerouted = await h.ask("client:3:qwen2.5:7b")
            return listed_cloud, rerouted
        finally:
            await h.backend.aclose()

    listed_cloud, rerouted = run(scenario())
    assert isinstance(listed_cloud[-1], Failed)
    assert listed_cloud[-1].error.kind is ErrorKind.BLOCKED
    assert isinstance(rerouted[-1], Failed) and rerouted[-1].error.kind is ErrorKind.BLOCKED
    assert not any(isinstance(e, Delta) for e in rerouted)
    assert [b["model"] for b in chats(server)] == ["client:3:qwen2.5:7b"]


def test_listed_locality_reads_the_source_not_only_the_prefix(server: HalextServer) -> None:
    h = Harness(server)

    async def scenario() -> dict[str, Locality | None]:
        try:
            return {
                m: await h.backend.listed_locality(m)
                for m in ("client:3:qwen2.5:7b", "ollama:qwen2.5:7b", "gemini:gemini-2.5-pro")
            }
        finally:
            await h.backend.aclose()

    assert run(scenario()) == {
        "client:3:qwen2.5:7b": Locality.SELF_HOSTED,
        "ollama:qwen2.5:7b": Locality.SELF_HOSTED,
        "gemini:gemini-2.5-pro": Locality.CLOUD,
    }


def test_signed_out_with_cloud_disabled_sends_nothing(server: HalextServer) -> None:
    h = Harness(server)
    h.store.data.clear()
    (failed,) = h.ask_once("client:3:qwen2.5:7b")
    assert isinstance(failed, Failed) and failed.error.kind is ErrorKind.SIGNED_OUT
    assert server.requests == []
    (row,) = h.sink.rows
    # An authentication failure is the route's, and no model saw anything.
    assert (row.model_identifier, row.status, row.prompt_tokens) == ("halext", UsageStatus.ERROR, 0)
