"""The composition root shared by the CLI and the GUI (no Qt here).

It reads the settings, starts the database's owner thread (which opens the database:
``Storage``), builds one backend per configured route and the Router over them. Nothing here
touches the network or waits for SQLite: the window opens at once even when no server is
reachable and while the database opens; a command waits for it with ``wait_open``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from halext_desktop.routing.backends.base import Backend, CredentialStore
from halext_desktop.routing.backends.halext import HalextBackend
from halext_desktop.routing.backends.ollama_backend import OllamaBackend
from halext_desktop.routing.errors import ErrorKind, RouteError
from halext_desktop.routing.policy import Policy
from halext_desktop.routing.refs import ModelRef, ModelRefError
from halext_desktop.routing.route_check import RouteCheck, RouteInfo, check_route, route_models
from halext_desktop.routing.router import Router
from halext_desktop.routing.types import Health, ModelInfo, ModelListing
from halext_desktop.storage.chats import Conversations
from halext_desktop.storage.db import Database
from halext_desktop.storage.owner import CloseReport
from halext_desktop.storage.secrets import MemorySecretStore, SecretStore
from halext_desktop.storage.settings import Settings
from halext_desktop.storage.store import OpenReport, Storage, Usage
from halext_desktop.storage.turns import Turns

if TYPE_CHECKING:
    from halext_desktop.ui.services import Services

log = logging.getLogger(__name__)

CONNECT_HINT = (
    "Start Ollama (`ollama serve`) for local models, or sign in to halext with "
    "`halext-desktop login` (Settings → Connections in the app)."
)


@dataclass(frozen=True, slots=True)
class EnvCredentials:
    """HALEXT_USERNAME / HALEXT_PASSWORD: sign in for one process, write nothing."""

    username: str
    password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvCredentials | None:
        user, pw = env.get("HALEXT_USERNAME", ""), env.get("HALEXT_PASSWORD", "")
        return cls(user, pw) if user and pw else None


class Core:
    """Settings, storage, secrets, backends and the router, wired once.

    Implements ``ui.services.Services`` (the GUI's view of the app).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        db: Database | None = None,
        secrets: SecretStore | None = None,
        env: Mapping[str, str] | None = None,
        *,
        background_checks: bool = False,
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.settings = settings or Settings.load(env=self.env)
        self.db = db or Database()
        # Opens the database on its own thread; nothing here waits for it.
        self.storage = Storage(
            self.db,
            retention_days=self.settings.usage_retention_days,
            background_checks=background_checks,
        )
        self.secrets = secrets or SecretStore()
        self.conversations: Conversations = self.storage.conversations
        self.usage: Usage = self.storage.usage
        self.env_credentials = EnvCredentials.from_env(self.env)
        # With env credentials the token lives only in this process (nothing to the keyring).
        self._halext_secrets: CredentialStore = (
            MemorySecretStore() if self.env_credentials else self.secrets
        )
        self.router = Router(
            self.build_backends(),
            self.policy,
            self.usage,
            fallbacks=self.fallback_refs,
        )
        self.turns = Turns(
            self.router,
            self.conversations,
            self.storage.replies,
            writer=self.storage.session.id,
            max_reply_bytes=lambda: self.settings.max_reply_bytes,
        )

    def wait_open(self, timeout: float | None = 60) -> OpenReport:
        """Wait until the database is open (a command's start).

        Raises:
            DatabaseError: it could not be opened; the message says why and what to do.
        """
        return self.storage.wait_open(timeout)

    # ---- policy and settings ----------------------------------------------------------

    def policy(self) -> Policy:
        return Policy(disable_cloud=self.settings.disable_cloud, offline=self.settings.offline)

    def fallback_refs(self) -> list[ModelRef]:
        refs = []
        for text in self.settings.fallback_models:
            try:
                refs.append(ModelRef.parse(text))
            except ModelRefError:
                log.warning("ignoring bad fallback model %r", text)
        return refs

    def build_backends(self) -> dict[str, Backend]:
        """One backend per configured route. Constructing a backend does no I/O."""
        backends: dict[str, Backend] = {}
        url = self.settings.effective_halext_url()
        if url:
            creds = self.env_credentials
            halext = HalextBackend(
                url,
                self._halext_secrets,
                username=creds.username if creds else self.settings.halext_username,
                remember=self.settings.halext_remember,
                session_password=creds.password if creds else None,
            )
            backends[halext.route_id] = halext
        for i, host in enumerate(self.settings.effective_ollama_hosts()):
            ollama = OllamaBackend(host.name, host.url, is_default=(i == 0))
            backends[ollama.route_id] = ollama
        if self.settings.openai_endpoints:
            # Imported only when used: the openai package alone adds ~0.5 s to start-up.
            from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend
        for ep in self.settings.openai_endpoints:
            key = self.secrets.get(f"openai-key:{ep.name}")
            oa = OpenAICompatBackend(ep.name, ep.url, key)
            backends[oa.route_id] = oa
        return backends

    async def rebuild_backends(self) -> None:
        """Called on the loop thread after a route setting changed."""
        await self.router.set_backends(self.build_backends())

    def halext(self) -> HalextBackend | None:
        b = self.router.backend("halext")
        return b if isinstance(b, HalextBackend) else None

    # ---- Services ---------------------------------------------------------------------

    def signed_in_user(self) -> str | None:
        h = self.halext()
        return h.signed_in_user() if h else None

    async def sign_in(self, username: str, password: str, remember: bool) -> str:
        if self.settings.offline:
            raise RouteError(
                ErrorKind.BLOCKED,
                "Offline mode is on: halext is not contacted",
                "Turn off “Offline — local models only” in Settings → AI to sign in",
            )
        h = self.halext()
        if h is None:
            raise RouteError(ErrorKind.NOT_CONFIGURED, "No halext server URL is configured")
        user = await h.login(username, password, remember=remember)
        if self.settings.halext_username != username:
            self.settings.set("halext_username", username)
        if self.settings.halext_remember != remember:
            self.settings.set("halext_remember", remember)
        return user

    async def sign_out(self) -> None:
        h = self.halext()
        if h is not None:
            await h.logout()

    async def list_models(self) -> ModelListing:
        return await self.router.list_models()

    def database_path(self) -> Path:
        return self.db.path

    def routes(self) -> list[RouteInfo]:
        return [RouteInfo.of(b) for b in self.router.backends.values()]

    def _contactable(self, route_id: str) -> Backend:
        """The backend of ``route_id`` when policy allows contacting it; else RouteError."""
        backend = self.router.backend(route_id)
        if backend is None:
            raise RouteError(
                ErrorKind.NOT_CONFIGURED,
                f"No route {route_id} is configured",
                "Add it in Settings → Connections",
                route_id=route_id,
            )
        reason = self.policy().route_allowed(backend.kind)
        if reason:
            raise RouteError(ErrorKind.BLOCKED, f"{route_id} was not contacted: {reason}")
        return backend

    async def check_route(self, route_id: str) -> RouteCheck:
        return await check_route(self._contactable(route_id))

    async def route_models(self, route_id: str) -> list[ModelInfo]:
        return await route_models(self._contactable(route_id))

    async def health_all(self) -> list[Health]:
        return await self.router.health_all()

    async def test_ollama(self, url: str) -> Health:
        backend = OllamaBackend("test", url, is_default=False)
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    async def test_openai(self, name: str, url: str, api_key: str | None) -> Health:
        from halext_desktop.routing.backends.openai_compat import OpenAICompatBackend

        backend = OpenAICompatBackend(name, url, api_key)
        try:
            return await backend.health()
        finally:
            await backend.aclose()

    async def aclose(self) -> None:
        """Close every HTTP client. Fresh backends (no I/O) take their place, because
        clients are bound to the event loop that used them and the CLI and tests run
        several ``asyncio.run`` calls over one Core."""
        old = self.router.backends
        await self.router.set_backends(self.build_backends())
        for backend in old.values():
            await backend.aclose()

    async def interrupt_replies(self, timeout: float = 5.0) -> int:
        """Stop every reply in flight as ``interrupted`` and wait (up to ``timeout``) until
        each one's text and state are queued for the database; returns how many. For
        SIGTERM/SIGHUP and closing the window mid-reply."""
        import asyncio

        replies = self.turns.interrupt_all()
        if replies:
            await asyncio.gather(
                *(asyncio.to_thread(r.finished.wait, timeout) for r in replies),
                return_exceptions=True,
            )
        return len(replies)

    def close(self, timeout: float = 2.0) -> CloseReport:
        """Write what waits for the database (for up to ``timeout``); what still cannot be
        written is kept in the spool file for the next start. Safe to call twice."""
        return self.storage.close(timeout)

    # ---- helpers for front ends --------------------------------------------------------

    def resolve_default(self, listing: ModelListing | None) -> ModelRef | None:
        try:
            return self.resolve_model(None, listing)
        except (RouteError, ModelRefError):
            return None

    def resolve_model(self, text: str | None, listing: ModelListing | None = None) -> ModelRef:
        """The reference to use: explicit text, else the default setting, else the first
        allowed local model of ``listing``. Raises RouteError with a hint when none; when
        the routes could not be asked (Ollama down, signed out) the hint says that first."""
        if text:
            return ModelRef.parse(text)  # ModelRefError (a ValueError) says what is allowed
        if self.settings.default_model:
            return ModelRef.parse(self.settings.default_model)
        if listing is not None:
            pick = first_allowed(listing.models, self.router)
            if pick is not None:
                return pick.ref
            if listing.errors:
                causes = "; ".join(
                    f"{rid}: {err.one_line()}" for rid, err in listing.errors.items()
                )
                raise RouteError(
                    ErrorKind.NOT_CONFIGURED,
                    f"No model to answer: no route could list its models ({causes})",
                    "Fix that, or pass --model / set default_model "
                    "(`halext-desktop config set default_model ollama/<name>`)",
                )
        raise RouteError(
            ErrorKind.NOT_CONFIGURED,
            "No model chosen and no default model set",
            "Pass --model (see `halext-desktop models`) or set one with "
            "`halext-desktop config set default_model ollama/<name>`. " + CONNECT_HINT,
        )


def first_allowed(models: list[ModelInfo], router: Router) -> ModelInfo | None:
    """Local first, then self-hosted, then cloud — skipping what policy refuses."""
    order = {"local": 0, "self-hosted": 1, "cloud": 2}
    for info in sorted(models, key=lambda m: order.get(m.locality.value, 3)):
        if info.available and info.can_chat and router.refusal(info.ref) is None:
            return info
    return None


if TYPE_CHECKING:
    # mypy proves here that Core keeps the whole contract the widgets are written against.
    _core_is_services: type[Services] = Core
