"""End-to-end fixtures: the real Core (settings, SQLite, keyring store, backends, router)
pointed at the protocol test servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from halext_desktop.app.core import Core
from halext_desktop.storage.settings import Settings
from tests.servers.conftest import halext_server, ollama_server  # noqa: F401 (fixtures)
from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer

CoreFactory = Callable[..., Core]


@pytest.fixture
def make_core(
    halext_server: HalextServer,  # noqa: F811
    ollama_server: OllamaServer,  # noqa: F811
) -> Iterator[CoreFactory]:
    """Build Cores whose settings point at both servers; extra settings as keywords."""
    made: list[Core] = []

    def factory(**overrides: Any) -> Core:
        settings = Settings.load()
        settings.set("halext_url", halext_server.url)
        settings.set("ollama_hosts", [{"name": "local", "url": ollama_server.url}])
        for key, value in overrides.items():
            settings.set(key, value)
        core = Core(settings=settings)
        made.append(core)
        return core

    yield factory
    for core in made:
        core.close()
