"""What the widgets may ask of the application (implemented by app/core.py).

Widgets hold a ``Services`` and a ``Bridge``; they call the async methods through
``bridge.call(...)`` so nothing blocks the GUI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from halext_desktop.routing.policy import Policy
    from halext_desktop.routing.refs import ModelRef
    from halext_desktop.routing.router import Router
    from halext_desktop.routing.types import Health, ModelListing
    from halext_desktop.storage.conversations import ConversationStore
    from halext_desktop.storage.secrets import SecretStore
    from halext_desktop.storage.settings import Settings
    from halext_desktop.storage.turns import Turns
    from halext_desktop.storage.usage import UsageLog


class Services(Protocol):
    settings: Settings
    secrets: SecretStore
    conversations: ConversationStore
    usage: UsageLog
    turns: Turns
    router: Router

    def policy(self) -> Policy:
        """The current cloud/offline policy (read from settings)."""
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

    async def test_ollama(self, url: str) -> Health: ...

    async def test_openai(self, name: str, url: str, api_key: str | None) -> Health: ...
