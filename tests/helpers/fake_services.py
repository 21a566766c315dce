"""A stand-in for app.core.Core that keeps the whole ``ui.services.Services`` contract.

The parts a test cares about are real (Settings, the database behind its owner thread, a
Router over test-server backends, the SecretStore over the in-memory keyring) and passed
in; the rest are real too (a database in the test's home, opened by its owner thread). The
network actions (sign in, Test) answer from canned values and record their calls, so a
widget test needs no server; a test may hold them on ``gate`` to see the "busy" state.
Every FakeServices is closed after its test (``close_all``, called by tests/conftest.py).

mypy checks below that the class satisfies Services; ``tests/ui/test_services.py`` checks
the same at run time against the Protocol's members, for Core too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from halext_desktop.app.core import ollama_models_of, pull_under_policy
from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.halext_admin import (
    AdminNodeList,
    HalextAdmin,
    NodeAction,
    NodeInfo,
    NodeTest,
)
from halext_desktop.routing.backends.ollama_models import (
    LoadedModel,
    ModelCard,
    OllamaModels,
    PullProgress,
)
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef
from halext_desktop.routing.route_check import (
    RouteCheck,
    RouteInfo,
    check_route,
    route_models,
    whoami_is_admin,
)
from halext_desktop.routing.router import Router
from halext_desktop.routing.types import Health, ModelInfo, ModelListing
from halext_desktop.routing.usage_sink import MemoryUsageSink
from halext_desktop.storage.db import Database
from halext_desktop.storage.secrets import MemorySecretStore
from halext_desktop.storage.settings import Settings
from halext_desktop.storage.store import Storage, Usage
from halext_desktop.storage.turns import Turns
from halext_desktop.storage.usage import UsageLog

if TYPE_CHECKING:
    from halext_desktop.ui.services import Secrets, Services

DEFAULT_OLLAMA_HEALTH = Health("test", True, 4, "0.12.3", 7, "Ollama 0.12.3 · 7 models · 4 ms")

_OPEN: list[FakeServices] = []


def close_all() -> None:
    """Close every FakeServices made since the last call (their database owner threads)."""
    while _OPEN:
        _OPEN.pop().close()


class FakeServices:
    """Every Services member; real storage and routing parts, canned network answers.

    Args:
        settings: the settings the widgets read and write.
        secrets: where keys go (default: a session-only MemorySecretStore).
        router: the router (default: one with no routes).
        db: the database (default: the one in the test's home).

    Attributes:
        calls: ``(name, *args)`` of every network action, in order.
        gate: when set by a test, sign_in and test_ollama wait for it.
        sign_in_error: raised by sign_in instead of succeeding.
        ollama_health: what test_ollama answers.
        user: the signed-in user.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        secrets: Secrets | None = None,
        router: Router | None = None,
        db: Database | None = None,
    ) -> None:
        self.db = db if db is not None else Database()
        self.settings = settings
        self.secrets: Secrets = secrets if secrets is not None else MemorySecretStore()
        self.storage = Storage(self.db)
        self.conversations = self.storage.conversations
        self.usage = self.storage.usage
        self.router = router if router is not None else Router({}, self.policy, MemoryUsageSink())
        self.turns = Turns(
            self.router, self.conversations, self.storage.replies, writer=self.storage.session.id
        )
        _OPEN.append(self)
        self.user: str | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.gate: asyncio.Event | None = None
        self.sign_in_error: BaseException | None = None
        self.ollama_health = DEFAULT_OLLAMA_HEALTH

    def close(self) -> None:
        self.storage.close()

    def use_usage_log(self, log: UsageLog) -> None:
        """Read the usage reports through ``log`` (a test's UsageLog subclass) instead."""
        self.storage.usage = self.usage = Usage(self.storage.owner, self.storage.replies, log)

    # ---- without I/O --------------------------------------------------------------------

    def policy(self) -> Policy:
        return Policy(disable_cloud=self.settings.disable_cloud, offline=self.settings.offline)

    def database_path(self) -> Path:
        return self.db.path

    def routes(self) -> list[RouteInfo]:
        return [RouteInfo.of(b) for b in self.router.backends.values()]

    def resolve_default(self, listing: ModelListing | None) -> ModelRef | None:
        if self.settings.default_model:
            return ModelRef.parse(self.settings.default_model)
        for info in listing.models if listing else []:
            if info.available and self.router.refusal(info.ref) is None:
                return info.ref
        return None

    def signed_in_user(self) -> str | None:
        return self.user

    # ---- async (the loop thread) --------------------------------------------------------

    async def _hold(self) -> None:
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), timeout=5)

    async def rebuild_backends(self) -> None:
        self.calls.append(("rebuild_backends",))

    async def sign_in(self, username: str, password: str, remember: bool) -> str:
        self.calls.append(("sign_in", username, password, remember))
        await self._hold()
        if self.sign_in_error is not None:
            raise self.sign_in_error
        self.user = username
        return username

    async def sign_out(self) -> None:
        self.calls.append(("sign_out",))
        self.user = None

    async def list_models(self) -> ModelListing:
        return await self.router.list_models()

    async def health_all(self) -> list[Health]:
        return await self.router.health_all()

    async def check_route(self, route_id: str) -> RouteCheck:
        return await check_route(self._backend(route_id))

    async def route_models(self, route_id: str) -> list[ModelInfo]:
        return await route_models(self._backend(route_id))

    async def test_ollama(self, url: str) -> Health:
        self.calls.append(("test_ollama", url))
        await self._hold()
        return self.ollama_health

    async def test_openai(self, name: str, url: str, api_key: str | None) -> Health:
        self.calls.append(("test_openai", name, url, api_key))
        return Health(name, False, detail="HTTP 401 from api.example.com — check the API key")

    # ---- model management: the real routing code over the router's backends --------------

    def _models(self, route_id: str) -> OllamaModels:
        return ollama_models_of(self._backend(route_id), route_id)

    async def model_card(self, route_id: str, model: str) -> ModelCard:
        return await self._models(route_id).show(model)

    def pull_model(self, route_id: str, model: str) -> AsyncIterator[PullProgress]:
        self.calls.append(("pull_model", route_id, model))
        return pull_under_policy(self._models, self.policy, route_id, model)

    async def delete_model(self, route_id: str, model: str) -> int | None:
        self.calls.append(("delete_model", route_id, model))
        return await self._models(route_id).delete(model)

    async def loaded_models(self, route_id: str) -> list[LoadedModel]:
        return await self._models(route_id).loaded()

    async def unload_model(self, route_id: str, model: str) -> None:
        self.calls.append(("unload_model", route_id, model))
        await self._models(route_id).unload(model)

    def _admin(self) -> HalextAdmin:
        backend = self._backend("halext")
        assert isinstance(backend, HalextBackend)
        return HalextAdmin(backend)

    async def admin_nodes(self) -> AdminNodeList | None:
        backend = self.router.backend("halext")
        if not isinstance(backend, HalextBackend) or self.policy().offline:
            return None
        if not backend.signed_in_user() or not await whoami_is_admin(backend):
            return None
        return await HalextAdmin(backend).nodes()

    async def node_test(self, node_id: int) -> NodeTest:
        return await self._admin().test(node_id)

    async def node_models(self, node_id: int) -> list[str]:
        return await self._admin().models(node_id)

    async def node_info(self, node_id: int) -> NodeInfo:
        return await self._admin().info(node_id)

    async def node_pull(self, node_id: int, model: str) -> NodeAction:
        self.calls.append(("node_pull", node_id, model))
        return await self._admin().pull(node_id, model)

    async def node_delete(self, node_id: int, model: str) -> NodeAction:
        self.calls.append(("node_delete", node_id, model))
        return await self._admin().delete(node_id, model)

    def _backend(self, route_id: str) -> Backend:
        backend = self.router.backend(route_id)
        if backend is None:
            raise RouteError(ErrorKind.NOT_CONFIGURED, f"No route {route_id} is configured")
        return backend


if TYPE_CHECKING:
    _fake_is_services: type[Services] = FakeServices
