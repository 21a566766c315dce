"""What the providers panel asks of a route: is it up, how many models, which ones, and —
for a signed-in halext admin — the server's AI client nodes. No Qt here.

The app's Core runs these on the loop thread for a route id (``Core.check_route``,
``Core.route_models``); the panel never holds a backend. Capabilities only one kind of
route has (halext's admin node list, Ollama's per-model ``/api/show``) are looked up by
backend class, so a route without them simply goes without.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from halext_desktop.routing.backends.base import Backend
from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.halext_admin import LIST_FALLBACK_NOTE, AdminNode, HalextAdmin
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.display import route_name
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.types import Health, ModelInfo

# The note shown when the node list hit the known 500 and /ai/models stood in for it.
ADMIN_LIST_BUG_NOTE = LIST_FALLBACK_NOTE.format(status=500)
# /api/show per model gives context length and capabilities; beyond this many models the
# list shows what /api/tags knows rather than fire a request per model.
MAX_DETAIL_LOOKUPS = 40


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """A configured route as the front ends may know it without any I/O.

    Attributes:
        route_id: ``halext``, ``ollama``, ``ollama@studio``, ``openai@groq``.
        kind: ``halext``, ``ollama`` or ``openai``.
        base_url: the server address the route talks to.
        name: what the route is called everywhere it is shown: the host's or endpoint's
            name in the settings (``local``, ``studio``, ``groq``), ``halext``.
    """

    route_id: str
    kind: str
    base_url: str
    name: str = ""

    @classmethod
    def of(cls, backend: Backend) -> RouteInfo:
        # Ollama hosts and endpoints carry the name they were configured under.
        name = getattr(backend, "name", None)
        if not isinstance(name, str) or not name:
            name = route_name(backend.route_id)
        return cls(backend.route_id, backend.kind, backend.base_url, name)


@dataclass(frozen=True, slots=True)
class AdminNodes:
    """The halext server's AI client nodes, and why they are incomplete or missing (the
    list endpoint's known 500: then the nodes come from ``/ai/models``)."""

    nodes: list[AdminNode] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RouteCheck:
    """What one [Test] learned about a route (made on the loop thread)."""

    route_id: str
    health: Health
    model_count: int | None = None
    models_note: str = ""  # why there is no count ("sign in to list models", the error)
    admin: AdminNodes | None = None  # halext, signed in as an admin


async def check_route(backend: Backend) -> RouteCheck:
    """Health, then the model count when health does not carry one, then (halext admin)
    the server's AI client nodes. Never raises for a route failure."""
    health = await backend.health()
    count = health.model_count
    note = ""
    if health.ok and count is None:
        try:
            count = len(await backend.list_models())
        except RouteError as err:
            note = (
                "sign in to list models"
                if err.kind in (ErrorKind.SIGNED_OUT, ErrorKind.AUTH_FAILED)
                else err.one_line()
            )
    admin = None
    if health.ok and isinstance(backend, HalextBackend) and health.signed_in_as:
        admin = await admin_nodes(backend)
    return RouteCheck(backend.route_id, health, count, note, admin)


async def whoami_is_admin(backend: HalextBackend) -> bool:
    """Whether the signed-in halext user is an admin (False when that cannot be learned:
    not signed in after all, expired, the server down)."""
    try:
        me = await backend.whoami()
    except RouteError:
        return False
    return isinstance(me, dict) and me.get("is_admin") is True


async def admin_nodes(backend: HalextBackend) -> AdminNodes | None:
    """The AI client nodes when the signed-in halext user is an admin, else None."""
    if not await whoami_is_admin(backend):
        return None
    try:
        listed = await HalextAdmin(backend).nodes()
    except RouteError as err:
        return AdminNodes([], err.one_line())
    return AdminNodes(listed.nodes, listed.note)


async def route_models(backend: Backend) -> list[ModelInfo]:
    """The route's models; Ollama ones completed with ``/api/show`` (context length,
    capabilities) when the list is small. Raises RouteError."""
    models = await backend.list_models()
    if not isinstance(backend, OllamaBackend) or not models or len(models) > MAX_DETAIL_LOOKUPS:
        return models
    ollama = backend

    async def complete(info: ModelInfo) -> ModelInfo:
        try:
            more = await ollama.model_details(info.ref.model)
        except RouteError:
            return info  # keep what the list said; one odd model must not hide the rest
        return replace(
            info,
            context_length=info.context_length or more.context_length,
            capabilities=info.capabilities or more.capabilities,
            family=info.family or more.family,
            quantization=info.quantization or more.quantization,
            parameter_size=info.parameter_size or more.parameter_size,
        )

    return list(await asyncio.gather(*(complete(m) for m in models)))
