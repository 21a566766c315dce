"""Fixtures for the protocol test servers (each engineer appends theirs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    """A running OllamaServer with the default models; fails the test if a handler crashed."""
    with OllamaServer() as server:
        yield server
    assert server.errors == [], f"ollama test server errors: {server.errors}"


@pytest.fixture
def halext_server() -> Iterator[HalextServer]:
    """A running HalextServer with the defaults (dev/dev123 admin, cloud configured, two
    server Ollama models, client node 3); fails the test if a handler crashed."""
    with HalextServer() as server:
        yield server
    assert server.errors == [], f"halext test server errors: {server.errors}"
