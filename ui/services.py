"""What the widgets may ask of the application (implemented by app/core.py's ``Core``).

This Protocol is the whole contract between ``ui/`` and the core: a widget uses these
members and nothing else of the object it is given (no ``getattr`` for things a Core may
or may not have). A capability only some routes have is still an explicit member; where a
route lacks it, the member says so (a RouteError), never by being absent.

Widgets hold a ``Services`` and a ``Bridge``; they call the async methods through
``bridge.call(...)`` so nothing blocks the GUI thread. That includes every read of the
database: ``conversations`` and ``usage`` are coroutines run by the database owner's thread
(``storage.owner``); the GUI thread never runs SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from halext_desktop.routing.backends.halext_admin import (
        AdminNodeList,
        NodeAction,
        NodeInfo,
        NodeTest,
    )
    from halext_desktop.routing.backends.ollama_models import (
        LoadedModel,
        ModelCard,
        PullProgress,
    )
    from halext_desktop.routing.policy import Policy
    from halext_desktop.routing.refs import ModelRef
    from halext_desktop.routing.route_check import RouteCheck, RouteInfo
    from halext_desktop.routing.router import Router
    from halext_desktop.routing.types import Health, ModelInfo, ModelListing
    from halext_desktop.storage.chats import Conversations
    from halext_desktop.storage.settings import Settings
    from halext_desktop.storage.store import Storage, Usage
    from halext_desktop.storage.turns import Turns


class Secrets(Protocol):
    """The secret store as widgets use it (``storage.secrets``: keyring, or memory)."""

    @property
    def persistent(self) -> bool:
        """False when secrets last only for this session (no usable keyring)."""
        ...

    @property
    def note(self) -> str | None:
        """Why secrets are not persistent, for the user; None when they are."""
        ...

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class Services(Protocol):
    """The application as the widgets see it.

    Members are read-only properties so that a Core's plain attributes and a test fake's
    properties both satisfy them; widgets never replace them.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def secrets(self) -> Secrets: ...

    @property
    def conversations(self) -> Conversations:
        """Conversations and messages (coroutines: run them with ``bridge.call``)."""
        ...

    @property
    def usage(self) -> Usage:
        """The usage log's reports and deletions (coroutines)."""
        ...

    @property
    def storage(self) -> Storage:
        """The database's state (``state``, ``owner.add_listener``) and its repair
        (``restore_newest_backup``, ``start_fresh``)."""
        ...

    @property
    def turns(self) -> Turns: ...

    @property
    def router(self) -> Router:
        """For policy questions (``refusal``) and requests; to learn about the routes use
        ``routes``, ``check_route`` and ``route_models``, never the router's backends."""
        ...

    def policy(self) -> Policy:
        """The current cloud/offline policy (read from settings)."""
        ...

    def database_path(self) -> Path:
        """The SQLite file conversations and usage are kept in."""
        ...

    def routes(self) -> list[RouteInfo]:
        """The configured routes, in the router's order, without any I/O."""
        ...

    async def rebuild_backends(self) -> None:
        """Rebuild the routes after a connection setting changed (runs on the loop thread)."""
        ...

    def resolve_default(self, listing: ModelListing | None) -> ModelRef | None:
        """The global default for a new conversation: the setting, else the first allowed
        local model of ``listing``; None when there is none."""
        ...

    def signed_in_user(self) -> str | None:
        """The halext user whose unexpired token is held, without any I/O."""
        ...

    async def sign_in(self, username: str, password: str, remember: bool) -> str:
        """Log in to the configured halext URL; returns the username; raises RouteError."""
        ...

    async def sign_out(self) -> None: ...

    async def list_models(self) -> ModelListing:
        """Models of every allowed route (offline: Ollama hosts only)."""
        ...

    async def health_all(self) -> list[Health]:
        """One Health per configured route that policy allows contacting."""
        ...

    async def check_route(self, route_id: str) -> RouteCheck:
        """Health, model count and (halext admin) the server's AI client nodes of one
        route. Raises RouteError when the route is not configured (NOT_CONFIGURED) or policy
        forbids contacting it (BLOCKED); a route that is down is a RouteCheck, not an error."""
        ...

    async def route_models(self, route_id: str) -> list[ModelInfo]:
        """The models one route offers, with the details the route can add (Ollama's
        context length and capabilities). Raises RouteError as ``check_route`` does, and
        when the route cannot list them."""
        ...

    async def test_ollama(self, url: str) -> Health: ...

    async def test_openai(self, name: str, url: str, api_key: str | None) -> Health: ...

    # ---- model management on an Ollama host (raises RouteError as ``route_models`` does;
    # a route that is not an Ollama host is BAD_REQUEST) ------------------------------------

    async def model_card(self, route_id: str, model: str) -> ModelCard:
        """``/api/show`` of one installed model."""
        ...

    def pull_model(self, route_id: str, model: str) -> AsyncIterator[PullProgress]:
        """Download a model; one PullProgress per progress line, the last one ``done``.
        Nothing is sent until iterated; closing the iterator cancels the download (Ollama
        keeps what it got, and the next pull resumes). With cloud providers disabled, an
        Ollama cloud model (``…:cloud``) is refused (BLOCKED)."""
        ...

    async def delete_model(self, route_id: str, model: str) -> int | None:
        """Delete an installed model; returns its size on disk (what it frees, at most)."""
        ...

    async def loaded_models(self, route_id: str) -> list[LoadedModel]:
        """What the host has in memory now (``/api/ps``)."""
        ...

    async def unload_model(self, route_id: str, model: str) -> None:
        """Free a loaded model's memory now (``keep_alive: 0``)."""
        ...

    # ---- the halext server's AI client nodes (admins only) --------------------------------

    async def admin_nodes(self) -> AdminNodeList | None:
        """The nodes, when the signed-in halext user is an admin; None otherwise (no halext
        route, offline, signed out, or not an admin) — ordinary users never see nodes."""
        ...

    async def node_test(self, node_id: int) -> NodeTest:
        """Have the server check a node now. Raises RouteError (BLOCKED for non-admins)."""
        ...

    async def node_models(self, node_id: int) -> list[str]: ...

    async def node_info(self, node_id: int) -> NodeInfo: ...

    async def node_pull(self, node_id: int, model: str) -> NodeAction:
        """Pull on a node. The server gives no progress: this returns when the pull ended,
        after checking that the node has the model."""
        ...

    async def node_delete(self, node_id: int, model: str) -> NodeAction: ...
