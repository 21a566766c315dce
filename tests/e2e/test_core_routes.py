"""The route questions the providers window asks of the real Core (``routes``,
``check_route``, ``route_models``, ``database_path``), against the protocol test servers:
unknown routes and policy are refused before any request."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from halext_desktop.app.core import Core
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.route_check import RouteInfo
from halext_desktop.storage import paths
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

T = TypeVar("T")


def on_core(core: Core, coro: Coroutine[Any, Any, T]) -> T:
    async def go() -> T:
        try:
            return await coro
        finally:
            await core.aclose()

    return asyncio.run(go())


def test_routes_are_listed_in_order_without_any_request(
    make_core: Any, halext_server: HalextServer, ollama_server: OllamaServer
) -> None:
    core = make_core(openai_endpoints=[{"name": "lm", "url": f"{ollama_server.url}/v1"}])
    assert core.routes() == [
        RouteInfo("halext", "halext", halext_server.url, "halext"),
        RouteInfo("ollama", "ollama", ollama_server.url, "local"),
        RouteInfo("openai@lm", "openai", f"{ollama_server.url}/v1", "lm"),
    ]
    assert halext_server.requests == [] and ollama_server.requests == []
    assert core.database_path() == paths.db_path()


def test_check_and_models_of_a_route_by_id(make_core: Any, ollama_server: OllamaServer) -> None:
    core = make_core()
    result = on_core(core, core.check_route("ollama"))
    assert result.route_id == "ollama" and result.health.ok
    models = on_core(core, core.route_models("ollama"))
    assert {m.name for m in models} == {m.name for m in ollama_server.models}


def test_an_unknown_route_is_not_configured(make_core: Any) -> None:
    core = make_core()
    for coro in (core.check_route("ollama@nowhere"), core.route_models("ollama@nowhere")):
        with pytest.raises(RouteError) as info:
            on_core(core, coro)
        assert info.value.kind is ErrorKind.NOT_CONFIGURED
        assert "ollama@nowhere" in info.value.message


def test_offline_refuses_halext_before_any_request(
    make_core: Any, halext_server: HalextServer
) -> None:
    core = make_core(offline=True)
    for coro in (core.check_route("halext"), core.route_models("halext")):
        with pytest.raises(RouteError) as info:
            on_core(core, coro)
        assert info.value.kind is ErrorKind.BLOCKED
    assert halext_server.requests == []
