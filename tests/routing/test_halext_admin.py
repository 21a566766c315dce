"""The halext server's AI client nodes (routing.backends.halext_admin) against the halext
protocol test server: the list and its known 500 (with the /ai/models fallback), test, models,
info, pull and delete on a node — and one clear line for each failure. Plain pytest: no Qt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.halext_admin import (
    LIST_FALLBACK_NOTE,
    HalextAdmin,
    parse_node_model,
)
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.storage.secrets import MemorySecretStore
from tests.helpers.aio import run
from tests.servers.halext_server import HalextServer

T = TypeVar("T")
NODES: list[dict[str, Any]] = [
    {"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22},
    {"id": 4, "name": "Attic", "models": [], "status": "offline", "reachable": False},
]


@pytest.fixture
def server() -> Iterator[HalextServer]:
    with HalextServer(users={"dev": "dev123", "amy": "amy-pw"}, client_nodes=NODES) as s:
        yield s
    assert s.errors == [], s.errors


def as_user(
    server: HalextServer, action: Callable[[HalextAdmin], Awaitable[T]], user: str = "dev"
) -> T:
    password = {"dev": "dev123", "amy": "amy-pw"}[user]

    async def scenario() -> T:
        backend = HalextBackend(server.url, MemorySecretStore())
        try:
            await backend.login(user, password, remember=False)
            return await action(HalextAdmin(backend))
        finally:
            await backend.aclose()

    return run(scenario())


def failure(fn: Callable[[], object]) -> RouteError:
    with pytest.raises(RouteError) as info:
        fn()
    return info.value


def test_the_node_list(server: HalextServer) -> None:
    listed = as_user(server, lambda a: a.nodes())
    assert listed.note is None and not listed.from_models
    studio, attic = listed.nodes
    assert (studio.id, studio.name, studio.status, studio.models) == (
        3,
        "Studio",
        "online",
        ("qwen2.5:7b",),
    )
    assert studio.base_url == "http://node3.lan:11434" and studio.latency_ms == 22
    assert studio.ref_of("qwen2.5:7b") == "halext/client:3:qwen2.5:7b"
    assert (attic.status, attic.models) == ("offline", ())


def test_after_a_test_the_list_500s_and_ai_models_stands_in(server: HalextServer) -> None:
    result = as_user(server, lambda a: a.test(3))
    assert result.online and result.models == ("qwen2.5:7b",) and result.response_time_ms == 22
    listed = as_user(server, lambda a: a.nodes())
    assert [r.status for r in server.requests_to("/admin/ai-clients")] == [500]
    assert listed.from_models and listed.note == LIST_FALLBACK_NOTE.format(status=500)
    assert [(n.id, n.name, n.status, n.models) for n in listed.nodes] == [
        (3, "Studio", "listed", ("qwen2.5:7b",))
    ]


def test_an_ordinary_user_is_refused_in_one_line(server: HalextServer) -> None:
    err = failure(lambda: as_user(server, lambda a: a.nodes(), user="amy"))
    assert (err.kind, err.status) == (ErrorKind.BLOCKED, 403)
    assert err.message == "Only halext admins can manage AI client nodes (Admin access required)"


def test_testing_an_unreachable_node_is_a_result(server: HalextServer) -> None:
    result = as_user(server, lambda a: a.test(4))
    assert not result.online and result.status == "offline"
    assert result.message == "Connection refused - service not running"
    err = failure(lambda: as_user(server, lambda a: a.test(9)))
    assert err.kind is ErrorKind.SERVER and err.status == 500  # upstream: no 404 here


def test_models_and_info(server: HalextServer) -> None:
    assert as_user(server, lambda a: a.models(3)) == ["qwen2.5:7b"]
    info = as_user(server, lambda a: a.info(3))
    assert (info.version, info.models, info.node_type, info.url) == (
        "0.12.3",
        ("qwen2.5:7b",),
        "ollama",
        "http://node3.lan:11434",
    )
    down = failure(lambda: as_user(server, lambda a: a.info(4)))
    assert down.kind is ErrorKind.CONNECTION
    assert down.message == "halext could not reach node 4 (All connection attempts failed)"
    gone = failure(lambda: as_user(server, lambda a: a.models(9)))
    assert (gone.kind, gone.status) == (ErrorKind.NOT_CONFIGURED, 404)
    assert gone.message == "The halext server has no node 9 (Client not found)"


def test_a_pull_on_a_node_is_checked_afterwards(server: HalextServer) -> None:
    done = as_user(server, lambda a: a.pull(3, "tinyllama"))
    assert done.message == "Pulled tinyllama:latest on node 3"
    assert done.models == ("qwen2.5:7b", "tinyllama:latest")
    pull = server.requests_to("/admin/ai-clients/3/pull-model")[0]
    assert pull.json == {"model_name": "tinyllama"}
    # The follow-up test refreshed the server's cache: its model list is current.
    assert as_user(server, lambda a: a.models(3)) == ["qwen2.5:7b", "tinyllama:latest"]


def test_an_unknown_model_is_caught_although_halext_says_success(server: HalextServer) -> None:
    err = failure(lambda: as_user(server, lambda a: a.pull(3, "ghost:1b")))
    assert err.kind is ErrorKind.MODEL_NOT_FOUND
    assert err.message.startswith("halext reported success, but node 3 does not have 'ghost:1b'")
    reply = server.requests_to("/admin/ai-clients/3/pull-model")[0]
    assert reply.status == 200


def test_pull_and_delete_failures_are_one_line(server: HalextServer) -> None:
    bad = failure(lambda: as_user(server, lambda a: a.pull(3, "Bad/Name!")))
    assert (bad.kind, bad.status) == (ErrorKind.BAD_REQUEST, 400)
    assert "not a valid model name" in bad.message
    down = failure(lambda: as_user(server, lambda a: a.pull(4, "tinyllama")))
    assert down.kind is ErrorKind.CONNECTION and "could not reach node 4" in down.message
    missing = failure(lambda: as_user(server, lambda a: a.delete(3, "tinyllama")))
    assert missing.kind is ErrorKind.MODEL_NOT_FOUND
    assert missing.message == (
        "Node 3 has no model 'tinyllama' (its Ollama at "
        "http://node3.lan:11434/api/delete answered 404)"
    )
    blank = failure(lambda: as_user(server, lambda a: a.pull(3, " ")))
    assert blank.kind is ErrorKind.BAD_REQUEST
    assert not server.requests_to("/admin/ai-clients/3/pull-model", "POST")[1:]


def test_delete_on_a_node_refreshes_the_servers_view(server: HalextServer) -> None:
    done = as_user(server, lambda a: a.delete(3, "qwen2.5:7b"))
    assert done.message == "Deleted qwen2.5:7b from node 3" and done.models == ()
    assert server.node(3)["models"] == []
    assert as_user(server, lambda a: a.models(3)) == []


def test_a_slow_pull_waits_for_the_server(server: HalextServer) -> None:
    """The server answers a node pull only when it ended: the call waits, with no progress."""
    server.delay_first_byte(0.3, path="/admin/ai-clients/3/pull-model")
    done = as_user(server, lambda a: a.pull(3, "phi3:mini"))
    assert done.models is not None and "phi3:mini" in done.models


def test_node_references() -> None:
    assert parse_node_model("client:3:qwen2.5:7b") == (3, "qwen2.5:7b")
    for bad in ("client:x:m", "openai:gpt-4o", "client:3", "client:3:"):
        with pytest.raises(RouteError) as info:
            parse_node_model(bad)
        assert "halext/client:<node id>:<model>" in info.value.hint
