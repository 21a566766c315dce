"""What the providers window learns about a route (routing.route_check), against the halext
and Ollama protocol test servers on 127.0.0.1. Plain pytest: no Qt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from halext_desktop.routing import route_check
from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.route_check import (
    ADMIN_LIST_BUG_NOTE,
    RouteCheck,
    RouteInfo,
    check_route,
    route_models,
)
from halext_desktop.routing.types import ModelInfo
from halext_desktop.storage.secrets import MemorySecretStore
from tests.helpers.aio import run
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

NODES = [
    {"id": 3, "name": "Studio", "models": ["qwen2.5:7b"], "latency_ms": 22},
    {"id": 4, "name": "Attic", "models": [], "status": "offline", "reachable": False},
]


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer() as server:
        yield server
    assert server.errors == [], server.errors


def halext_server(**kwargs: object) -> HalextServer:
    kwargs.setdefault("client_nodes", NODES)
    return HalextServer(**kwargs)  # type: ignore[arg-type]


def check_ollama(url: str) -> RouteCheck:
    async def scenario() -> RouteCheck:
        backend = OllamaBackend("local", url, is_default=True)
        try:
            return await check_route(backend)
        finally:
            await backend.aclose()

    return run(scenario())


def check_halext(server: HalextServer, user: str | None = None, password: str = "") -> RouteCheck:
    async def scenario() -> RouteCheck:
        backend = HalextBackend(server.url, MemorySecretStore())
        try:
            if user:
                await backend.login(user, password, remember=False)
            return await check_route(backend)
        finally:
            await backend.aclose()

    return run(scenario())


def models_of(url: str) -> list[ModelInfo]:
    async def scenario() -> list[ModelInfo]:
        backend = OllamaBackend("local", url, is_default=True)
        try:
            return await route_models(backend)
        finally:
            await backend.aclose()

    return run(scenario())


def test_route_info_names_a_backend_without_io(ollama: OllamaServer) -> None:
    backend = OllamaBackend("studio", ollama.url, is_default=False)
    assert RouteInfo.of(backend) == RouteInfo("ollama@studio", "ollama", ollama.url, "studio")
    assert ollama.requests == []


def test_an_ollama_route_that_is_up_counts_its_models(ollama: OllamaServer) -> None:
    result = check_ollama(ollama.url)
    assert result.route_id == "ollama"
    assert result.health.ok and result.health.version == ollama.version
    assert result.model_count == len(ollama.models)
    assert result.models_note == "" and result.admin is None


def test_a_route_that_is_down_is_a_result_not_an_error(ollama: OllamaServer) -> None:
    ollama.stop()
    result = check_ollama(ollama.url)
    assert not result.health.ok
    assert f"127.0.0.1:{ollama.port}" in result.health.detail
    assert result.model_count is None and result.admin is None


def test_signed_out_halext_is_up_but_says_sign_in_to_count() -> None:
    with halext_server() as server:
        result = check_halext(server)
    assert result.health.ok
    assert result.model_count is None
    assert result.models_note == "sign in to list models"
    assert result.admin is None
    assert not server.requests_to("/admin/ai-clients")


def test_a_halext_admin_gets_the_servers_nodes() -> None:
    with halext_server() as server:
        result = check_halext(server, "dev", "dev123")
    assert result.health.ok and result.health.signed_in_as == "dev"
    assert result.model_count is not None and result.model_count > 0
    assert result.admin is not None and result.admin.error is None
    assert [n.name for n in result.admin.nodes] == ["Studio", "Attic"]
    assert [n.status for n in result.admin.nodes] == ["online", "offline"]


def test_the_known_admin_list_500_falls_back_to_the_nodes_in_ai_models() -> None:
    seen = [{**NODES[0], "last_seen_at": "2026-11-25T20:22:17"}, NODES[1]]
    with halext_server(client_nodes=seen) as server:
        result = check_halext(server, "dev", "dev123")
    assert [r.status for r in server.requests_to("/admin/ai-clients")] == [500]
    assert result.health.ok
    assert result.admin is not None and result.admin.error == ADMIN_LIST_BUG_NOTE
    # Attic is offline: /ai/models does not list it, so neither can the fallback.
    (studio,) = result.admin.nodes
    assert (studio.id, studio.name, studio.models) == (3, "Studio", ("qwen2.5:7b",))
    assert (studio.base_url, studio.latency_ms, studio.status) == (
        "http://node3.lan:11434",
        22,
        "listed",
    )


def test_a_failing_fallback_is_one_line() -> None:
    seen = [{**NODES[0], "last_seen_at": "2026-11-25T20:22:17"}]
    with halext_server(client_nodes=seen) as server:
        # Both /ai/models calls fail: the model count, then the fallback.
        server.fail_next("/ai/models", 502, "<html>bad gateway</html>", "text/html", times=2)
        result = check_halext(server, "dev", "dev123")
    assert result.admin is not None and result.admin.nodes == []
    assert result.admin.error is not None and "502" in result.admin.error


def test_a_non_admin_is_not_asked_for_nodes() -> None:
    with halext_server(users={"dev": "dev123", "amy": "amy-pw"}, admins=("dev",)) as server:
        result = check_halext(server, "amy", "amy-pw")
    assert result.health.signed_in_as == "amy"
    assert result.admin is None
    assert server.requests_to("/users/me/")
    assert not server.requests_to("/admin/ai-clients")


def test_ollama_models_are_completed_from_api_show(ollama: OllamaServer) -> None:
    models = {m.name: m for m in models_of(ollama.url)}
    assert set(models) == {m.name for m in ollama.models}
    spec = ollama.find("qwen2.5:7b")
    assert spec is not None
    assert models["qwen2.5:7b"].context_length == spec.context_length
    assert models["qwen2.5:7b"].capabilities == spec.capabilities
    assert len(ollama.requests_to("/api/show")) == len(ollama.models)


def test_a_long_model_list_is_not_completed_model_by_model(
    ollama: OllamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route_check, "MAX_DETAIL_LOOKUPS", len(ollama.models) - 1)
    models = models_of(ollama.url)
    assert {m.name for m in models} == {m.name for m in ollama.models}
    assert ollama.requests_to("/api/show") == []
