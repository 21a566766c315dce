"""The backend protocol every route implements (halext, Ollama, OpenAI-compatible).

A backend talks to exactly one server. It translates every library exception into a
RouteError, has explicit timeouts on every call, and closes its HTTP stream when the
consumer stops iterating or the task is cancelled (``aclose()`` in ``finally``), so the
server stops generating.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from halext_desktop.routing.types import (
    BackendEvent,
    ChatMessage,
    ChatOptions,
    Health,
    Locality,
    ModelInfo,
)


@runtime_checkable
class Backend(Protocol):
    kind: str  # "halext" | "ollama" | "openai"
    route_id: str  # "halext", "ollama", "ollama@studio", "openai@groq"
    base_url: str

    async def list_models(self) -> list[ModelInfo]:
        """Models this route offers now. Raises RouteError when the server cannot be asked."""
        ...

    async def health(self) -> Health:
        """Never raises: a failing check is ``Health(ok=False, detail=...)``."""
        ...

    def stream_chat(
        self, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[BackendEvent]:
        """Yield BackendStarted once, then BackendDelta*, then BackendDone once.

        Raises RouteError (ErrorKind.STREAM_DROPPED once output has started) on failure.
        """
        ...

    def locality_of(self, model: str) -> Locality:
        """Where a request for ``model`` on this route would send the text (from the id
        and the address alone, no I/O)."""
        ...

    async def listed_locality(self, model: str) -> Locality | None:
        """Where the server itself says ``model`` goes, or None when it does not offer it.

        Asked by the router before a request with cloud providers disabled. A server that
        re-routes ids it cannot resolve (halext answers them with its default model, which
        may be a cloud one) must answer from its current model list; a route that sends
        ``model`` exactly where ``locality_of`` says answers that, without I/O. Raises
        RouteError when the server cannot be asked.
        """
        ...

    async def context_length(self, model: str) -> int | None:
        """How many tokens ``model`` takes in (prompt and reply), when the route can tell
        (Ollama: ``/api/show``, asked once per model); None when it cannot, or the server
        cannot be asked. Never raises."""
        ...

    def may_poll(self) -> bool:
        """Whether unattended checks (start-up, the status bar's timer) may contact this
        route without the user asking: halext only after the user signed in to it."""
        ...

    async def aclose(self) -> None: ...


class CredentialStore(Protocol):
    """What routing needs from storage's SecretStore (keyring-backed; memory in tests).

    Secret names used by routing:
        ``halext-token:<base_url>``                 the current JWT
        ``halext-password:<base_url>:<username>``   only when the user chose "remember me"
        ``openai-key:<endpoint name>``              API key of an OpenAI-compatible endpoint
    """

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...
